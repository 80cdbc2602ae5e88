"""Small server-rendered pages for people who follow a link (no JavaScript, any screen width).

A service renders the texts in the person's language (its own gettext catalog) and hands them here:
a title, paragraphs, details, and at most one button, which POSTs to `action`. A page may also have
sections (a heading, paragraphs, details and links) and forms (`Form`: labelled fields — select,
radio group, text, text area, checkbox — and one submit button each). A GET never acts, so a mail
scanner that opens a link changes nothing. The page has no external assets, no JavaScript, forbids
being framed, and fits a 375 px wide screen; every field has a label, a radio group a legend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from fastapi.responses import HTMLResponse
from jinja2 import Environment, StrictUndefined

_TEMPLATE = Environment(autoescape=True, undefined=StrictUndefined).from_string("""<!doctype html>
<html lang="{{ page.language }}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{{ page.title }} · Estafette</title>
<style>
body{margin:0;background:#f4f5f7;font:16px/1.5 Arial,Helvetica,sans-serif;color:#1d2330}
main{max-width:36rem;margin:2rem auto;background:#fff;border-radius:6px;padding:1.5rem 1.75rem}
@media (max-width:40rem){main{margin:0;border-radius:0;padding:1rem}}
h2{font-size:1.1rem;margin:1.5rem 0 .5rem}
dd{overflow-wrap:anywhere}
a{color:#1f57a8}
label,legend{display:block;font-weight:bold;margin:.75rem 0 .25rem}
fieldset{border:0;padding:0;margin:0}
fieldset label{font-weight:normal;margin:.25rem 0}
select,input[type=text],textarea{font:inherit;width:100%;max-width:100%;box-sizing:border-box;padding:.4rem;border:1px solid #6b7280;border-radius:4px}
textarea{min-height:6rem}
.hint{color:#6b7280;font-size:.9rem;margin:.1rem 0}
.alert{border-left:4px solid #b42318;padding:.25rem .75rem;background:#fef3f2}
button.secondary{background:#fff;color:#b42318;border:2px solid #b42318}
header{font-weight:bold;color:#1f57a8;margin-bottom:.5rem}
h1{font-size:1.4rem;margin:.25rem 0 1rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}dt{color:#6b7280}dd{margin:0;font-weight:bold}
button{font:inherit;font-weight:bold;padding:.7rem 1.4rem;border:0;border-radius:4px;background:#1f57a8;color:#fff;cursor:pointer}
.note{color:#6b7280;font-size:.9rem}
</style>
</head>
<body>
<main>
<header>Estafette</header>
<h1>{{ page.title }}</h1>
{% for paragraph in page.paragraphs %}<p>{{ paragraph }}</p>
{% endfor %}
{% if page.alert %}<p class="alert" role="alert">{{ page.alert }}</p>{% endif %}
{% if page.details %}<dl>{% for label, value in page.details %}<dt>{{ label }}</dt><dd>{{ value }}</dd>{% endfor %}</dl>{% endif %}
{% for section in page.sections %}<section>
<h2>{{ section.heading }}</h2>
{% for paragraph in section.paragraphs %}<p>{{ paragraph }}</p>
{% endfor %}
{% if section.details %}<dl>{% for label, value in section.details %}<dt>{{ label }}</dt><dd>{{ value }}</dd>{% endfor %}</dl>{% endif %}
{% if section.links %}<ul>{% for label, href in section.links %}<li><a href="{{ href }}">{{ label }}</a></li>{% endfor %}</ul>{% endif %}
</section>
{% endfor %}
{% if page.action and page.button %}<form method="post" action="{{ page.action }}"><p><button type="submit">{{ page.button }}</button></p></form>{% endif %}
{% for form in page.forms %}{% set n = loop.index %}<form method="post" action="{{ form.action }}">
{% if form.heading %}<h2>{{ form.heading }}</h2>{% endif %}
{% if form.text %}<p>{{ form.text }}</p>{% endif %}
{% for f in form.fields %}{% set id = "f" ~ n ~ "-" ~ f.name %}
{% if f.kind == "radio" %}<fieldset><legend>{{ f.label }}</legend>
{% for o in f.options %}<label><input type="radio" name="{{ f.name }}" value="{{ o.value }}"{% if o.selected %} checked{% endif %}{% if f.required %} required{% endif %}> {{ o.label }}</label>
{% endfor %}</fieldset>
{% elif f.kind == "checkbox" %}<label for="{{ id }}"><input type="checkbox" id="{{ id }}" name="{{ f.name }}" value="{{ f.value or 'yes' }}"{% if f.checked %} checked{% endif %}> {{ f.label }}</label>
{% elif f.kind == "select" %}<label for="{{ id }}">{{ f.label }}</label>
<select id="{{ id }}" name="{{ f.name }}"{% if f.required %} required{% endif %}>
{% for o in f.options %}<option value="{{ o.value }}"{% if o.selected %} selected{% endif %}>{{ o.label }}</option>
{% endfor %}</select>
{% elif f.kind == "textarea" %}<label for="{{ id }}">{{ f.label }}</label>
<textarea id="{{ id }}" name="{{ f.name }}"{% if f.max_length %} maxlength="{{ f.max_length }}"{% endif %}{% if f.required %} required{% endif %}>{{ f.value }}</textarea>
{% else %}<label for="{{ id }}">{{ f.label }}</label>
<input type="text" id="{{ id }}" name="{{ f.name }}" value="{{ f.value }}"{% if f.max_length %} maxlength="{{ f.max_length }}"{% endif %}{% if f.required %} required{% endif %}>
{% endif %}{% if f.hint %}<p class="hint">{{ f.hint }}</p>{% endif %}
{% endfor %}<p><button type="submit"{% if form.secondary %} class="secondary"{% endif %}>{{ form.button }}</button></p>
</form>
{% endfor %}
{% if page.note %}<p class="note">{{ page.note }}</p>{% endif %}
</main>
</body>
</html>
""")


@dataclass(frozen=True)
class Option:
    """One choice of a select box or a radio group."""

    value: str
    label: str
    selected: bool = False


@dataclass(frozen=True)
class Field:
    """One labelled form field. `kind`: `text` (one line), `textarea`, `select` and `radio` (with
    `options`), `checkbox` (sends `value`, default "yes", when ticked)."""

    name: str
    label: str
    kind: Literal["text", "textarea", "select", "radio", "checkbox"] = "text"
    options: list[Option] = field(default_factory=list)
    value: str = ""
    checked: bool = False
    required: bool = False
    max_length: int | None = None
    #: A short help text under the field.
    hint: str | None = None


@dataclass(frozen=True)
class Form:
    """A form that POSTs its fields to `action` (a relative URL) with one submit button; `secondary`
    gives the button a less prominent look (e.g. withdraw)."""

    action: str
    button: str
    fields: list[Field] = field(default_factory=list)
    heading: str | None = None
    text: str | None = None
    secondary: bool = False


@dataclass(frozen=True)
class Section:
    """A part of a page under its own heading: paragraphs, details and links (label, address)."""

    heading: str
    paragraphs: list[str] = field(default_factory=list)
    details: list[tuple[str, str]] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Page:
    language: str
    title: str
    paragraphs: list[str] = field(default_factory=list)
    details: list[tuple[str, str]] = field(default_factory=list)
    #: Where the one button POSTs (a relative URL), and its label; no button when None.
    action: str | None = None
    button: str | None = None
    note: str | None = None
    #: Sections after the details, forms after the one button (both optional).
    sections: list[Section] = field(default_factory=list)
    forms: list[Form] = field(default_factory=list)
    #: A message the reader must notice first (e.g. what was wrong with a form), shown as an alert.
    alert: str | None = None


def page_response(page: Page, status_code: int = 200) -> HTMLResponse:
    headers = {
        "Content-Language": page.language,
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",  # the link's token must not leak to other sites
        "X-Frame-Options": "DENY",
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
    }
    return HTMLResponse(_TEMPLATE.render(page=page), status_code=status_code, headers=headers)
