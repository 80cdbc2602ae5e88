"""E-mail texts from Jinja2 templates: `templates/<language>/<kind>.txt.j2` and `.html.j2`.

The text template sets the subject (`{% set subject = ... %}`); the HTML template is autoescaped, so
names and offer titles can never inject markup.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from services.notifications import i18n

TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


class Renderer:
    def __init__(self, directory: Path = TEMPLATES, timezone: tzinfo = ZoneInfo("Europe/Amsterdam")) -> None:
        self._timezone = timezone  # moments are shown in the recipients' local time
        self._env = Environment(
            loader=FileSystemLoader(directory),
            autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )

    def render(self, kind: str, language: str, name: str, data: dict[str, Any]) -> Rendered:
        """Raises ValueError (or a Jinja error) when `data` cannot make a message: retrying won't help."""
        context = {"name": name, "language": language, **_view(kind, language, data, self._timezone)}
        text = self._env.get_template(f"{language}/{kind}.txt.j2").make_module(context)
        subject = " ".join(str(text.subject).split())  # one header line, whatever the title holds
        html = self._env.get_template(f"{language}/{kind}.html.j2").render(context, subject=subject)
        return Rendered(subject, str(text), html)


def _view(kind: str, language: str, data: dict[str, Any], timezone: tzinfo) -> dict[str, Any]:
    """The template variables of one kind of message, formatted for `language`."""
    if kind == "assigned":
        return {"offer": _offer_view(data["offer"], language), "rank": data["rank"]}
    if kind == "seat_offered":
        expires = datetime.fromisoformat(data["expires_at"]).astimezone(timezone)
        return {"offer": _offer_view(data["offer"], language), "rank": data["rank"],
                "expires": i18n.long_datetime(expires, language),
                "accept_url": data["accept_url"], "decline_url": data["decline_url"]}
    if kind == "waitlisted":
        return {"position": data["position"]}
    if kind == "unmatched":
        return {"reason": i18n.unmatched_reason(data["reason_code"], language)}
    if kind == "generic":
        return _generic_view(data)
    raise ValueError(f"unknown notification kind {kind!r}")


def _offer_view(offer: dict[str, Any], language: str) -> dict[str, Any]:
    when = i18n.long_date(date.fromisoformat(offer["date"]), language)
    return {**offer, "when": when, "format_label": i18n.offer_format(offer["format"], language)}


def _generic_view(context: dict[str, Any]) -> dict[str, Any]:
    """NotificationRequested context: `message` (required; blank lines split paragraphs), optional
    `subject` and `link` (http or https)."""
    paragraphs = [p.strip() for p in str(context.get("message") or "").split("\n\n") if p.strip()]
    if not paragraphs:
        raise ValueError("the request's context has no 'message'")
    link = str(context.get("link") or "")
    if link and not link.startswith(("https://", "http://")):
        raise ValueError("the request's 'link' is not an http(s) URL")
    return {"requested_subject": str(context.get("subject") or ""), "paragraphs": paragraphs, "link": link}
