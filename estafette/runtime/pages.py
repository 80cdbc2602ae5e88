"""Small server-rendered pages for people who follow a link (no JavaScript, any screen width).

A service renders the texts in the person's language (its own gettext catalog) and hands them here:
a title, paragraphs, and at most one button, which POSTs to `action`. A GET never acts, so a mail
scanner that opens a link changes nothing. The page has no external assets and forbids being framed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
{% if page.details %}<dl>{% for label, value in page.details %}<dt>{{ label }}</dt><dd>{{ value }}</dd>{% endfor %}</dl>{% endif %}
{% if page.action and page.button %}<form method="post" action="{{ page.action }}"><p><button type="submit">{{ page.button }}</button></p></form>{% endif %}
{% if page.note %}<p class="note">{{ page.note }}</p>{% endif %}
</main>
</body>
</html>
""")


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


def page_response(page: Page, status_code: int = 200) -> HTMLResponse:
    headers = {
        "Content-Language": page.language,
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",  # the link's token must not leak to other sites
        "X-Frame-Options": "DENY",
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
    }
    return HTMLResponse(_TEMPLATE.render(page=page), status_code=status_code, headers=headers)
