"""The relay's feeds (JSON Feed 1.1 and Atom, one entry per day of the relay so far) and the dashboard
feed's JSON body with its ETag. Pure builders (feedgen renders the Atom XML)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from feedgen.feed import FeedGenerator

from services.reporting.public import Figure, PublicFigures
from services.reporting.relay import RelayDay, RelayView

FEED_ID = "tag:estafette.invalid,2027:relay"


def _figure(f: Figure, threshold: int) -> int | str:
    """A count as published in a feed: the number, else "< threshold" or "withheld"."""
    if f.value is not None:
        return f.value
    return f"< {threshold}" if f.shown == "small" else "withheld"


def _entry_id(d: RelayDay) -> str:
    return f"{FEED_ID}:{d.day.isoformat()}"


def day_text(d: RelayDay, threshold: int, _: Callable[[str], str], format_day: Callable[[date], str]) -> str:
    parts = [f"{format_day(d.day)} · {d.leg.leg.region}" + (f": {d.leg.leg.activity}" if d.leg.leg.activity else "")]
    parts.append(f"{_('Sign-ups')}: {_figure(d.signups, threshold)} · {_('Visits')}: {_figure(d.assigned, threshold)}"
                 f" · {_('Feedback')}: {_figure(d.feedback, threshold)}")
    parts += [f"“{item.text}”" for item in d.leg.items if item.text]
    return "\n".join(parts)


def json_feed(view: RelayView, base_url: str, lang: str, _: Callable[[str], str], format_day: Callable[[date], str]) -> dict[str, Any]:
    """JSON Feed 1.1 (https://jsonfeed.org/version/1.1): one item per day of the relay so far (newest
    first); `_relay` (an extension) holds the route and today's holder."""
    items = []
    for d in view.days_so_far:
        items.append({
            "id": _entry_id(d),
            "url": f"{base_url}relay?lang={lang}#{d.day.isoformat()}",
            "title": f"{format_day(d.day)}: {d.leg.leg.region}",
            "content_text": day_text(d, view.threshold, _, format_day),
            "date_published": d.updated.isoformat(),
            "date_modified": d.updated.isoformat(),
            "language": lang,
            "_relay": {
                "day": d.day.isoformat(), "leg": d.leg.leg.leg_id, "region": d.leg.leg.region,
                "edition": d.leg.leg.edition_id, "activity": d.leg.leg.activity,
                "signups": _figure(d.signups, view.threshold), "assigned": _figure(d.assigned, view.threshold),
                "feedback": _figure(d.feedback, view.threshold), "average_rating": d.average_rating,
                "knowledge_items": [
                    {"id": i.feedback_id, "text": i.text, "language": i.language, "offer_title": i.offer_title,
                     "host_org": i.host_org} for i in d.leg.items
                ],
            },
        })
    return {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Week van de Uitwisseling · " + _("The relay"),
        "home_page_url": f"{base_url}relay?lang={lang}",
        "feed_url": f"{base_url}relay/feed.json?lang={lang}",
        "language": lang,
        "authors": [{"name": "Slimmer Werken Estafette"}],
        "items": items,
        "_relay": {
            "today": view.today.isoformat(),
            "holder": view.holder.leg.region if view.holder else None,
            "threshold": view.threshold,
            "route": [
                {"leg": l.leg.leg_id, "region": l.leg.region, "edition": l.leg.edition_id, "position": l.leg.position,
                 "first_day": l.first and l.first.isoformat(), "last_day": l.last and l.last.isoformat(),
                 "activity": l.leg.activity, "state": l.state, "early": l.leg.early,
                 "knowledge_items": [i.feedback_id for i in l.items]}
                for l in view.legs
            ],
        },
    }


def atom_feed(view: RelayView, base_url: str, lang: str, _: Callable[[str], str], format_day: Callable[[date], str]) -> bytes:
    """Atom 1.0 (RFC 4287) by feedgen: feed id, title, updated, author, links; per day an entry with id,
    title, updated, content."""
    fg = FeedGenerator()
    fg.id(f"{FEED_ID}:{lang}")
    fg.title("Week van de Uitwisseling · " + _("The relay"))
    fg.author({"name": "Slimmer Werken Estafette"})
    fg.link(href=f"{base_url}relay?lang={lang}", rel="alternate")
    fg.link(href=f"{base_url}relay/feed.atom?lang={lang}", rel="self")
    fg.language(lang)
    fg.updated(view.updated)
    for d in reversed(view.days_so_far):  # feedgen prepends: the newest ends up first
        entry = fg.add_entry()
        entry.id(_entry_id(d))
        entry.title(f"{format_day(d.day)}: {d.leg.leg.region}")
        entry.updated(d.updated)
        entry.link(href=f"{base_url}relay?lang={lang}#{d.day.isoformat()}")
        entry.content(day_text(d, view.threshold, _, format_day), type="text")
    return fg.atom_str(pretty=True)


def dashboard_body(figures: PublicFigures) -> dict[str, Any]:
    """`GET /feeds/dashboard`: the records (as on the topic, without `updated_at`) and the published totals
    per edition, region and nation; a suppressed count is null and named in `suppressed`."""

    def counts(level: str, *node: object) -> dict[str, Any]:
        out: dict[str, Any] = {}
        suppressed = []
        for name in ("signups", "assigned", "feedback"):
            f = figures.get(name, level, *node)
            out[name] = f.value
            if f.value is None:
                suppressed.append(name)
        out["average_rating"] = figures.average(level, *node)
        out["suppressed"] = suppressed
        return out

    records = []
    for r in figures.records(datetime(1970, 1, 1)):
        r.pop("updated_at")
        r["day"] = r["day"].isoformat() if isinstance(r["day"], date) else r["day"]
        records.append(r)
    return {
        "threshold": figures.threshold,
        "national": counts("national"),
        "regions": [{"region": r, **counts("region", r)} for r in figures.regions()],
        "editions": [{"region": e.region, "edition": e.edition_id, **counts("edition", e.edition_id)}
                     for e in figures.editions],
        "records": records,
    }


def etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
