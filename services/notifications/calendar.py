"""Calendar entries (`.ics`, RFC 5545 / iTIP RFC 5546) for the journey's e-mails, built with icalendar.

One entry per visit: the participant's (UID `<signup_id>.<offer_id>@estafette`) and the host's (UID
`host.<offer_id>@estafette`). Its SEQUENCE is the offer's `sequence`, so a changed offer's entry
(same UID, higher SEQUENCE) replaces the one a calendar already holds, and a METHOD:CANCEL entry with
STATUS:CANCELLED removes it. DTSTART/DTEND are local times in the region's time zone (`TZID`, with a
VTIMEZONE for the visit's year), never floating and never converted to UTC.

The input is the `calendar` dict the notifications logic stores with a message (see rendering.py):
{uid, sequence, method, status, summary, date, starts_at, ends_at, timezone, location, url,
description}. `starts_at`/`ends_at` ("HH:MM") are normally resolved already (`visit_times`); when
they are missing, `part_of_day` (if present) gives the usual times: morning 09:00–12:00, afternoon
13:00–17:00, whole day 09:00–17:00. `calendar_entry` builds that dict from an offer dict.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event

PRODID = "-//Estafette//Estafette notifications//EN"
Method = Literal["REQUEST", "CANCEL"]
#: The usual times of a part of the day, when an offer gives none.
DEFAULT_TIMES: dict[str, tuple[time, time]] = {
    "morning": (time(9, 0), time(12, 0)),
    "afternoon": (time(13, 0), time(17, 0)),
    "whole_day": (time(9, 0), time(17, 0)),
}


def participant_uid(signup_id: str, offer_id: str) -> str:
    """The participant's entry for one visit: the same in every e-mail about it."""
    return f"{signup_id}.{offer_id}@estafette"


def host_uid(offer_id: str) -> str:
    """The host contact's entry for one offer."""
    return f"host.{offer_id}@estafette"


def parse_time(value: str | time | None) -> time | None:
    """'09:30' (or '09:30:00', or a time) → time(9, 30); None or '' → None."""
    if value is None or value == "":
        return None
    return value if isinstance(value, time) else time.fromisoformat(str(value))


def hhmm(value: time) -> str:
    return f"{value.hour:02d}:{value.minute:02d}"


def visit_times(
    part_of_day: str | None, starts_at: str | time | None = None, ends_at: str | time | None = None
) -> tuple[time, time]:
    """When a visit starts and ends (local): its own times, else the usual times of its part of the day
    (an unknown or missing part of the day counts as a whole day). A start without an end ends at the
    part of the day's usual end, or an hour later when that is not after the start; likewise an end
    without a start."""
    default_start, default_end = DEFAULT_TIMES.get(part_of_day or "whole_day", DEFAULT_TIMES["whole_day"])
    start, end = parse_time(starts_at), parse_time(ends_at)
    if start is None and end is None:
        return default_start, default_end
    if end is None:
        assert start is not None
        end = default_end if default_end > start else _shift(start, 1)
    elif start is None:
        start = default_start if default_start < end else _shift(end, -1)
    return start, end


def _shift(moment: time, hours: int) -> time:
    shifted = datetime.combine(date(2000, 1, 1), moment) + timedelta(hours=hours)
    if shifted.date() != date(2000, 1, 1):  # never past midnight
        return time(23, 59) if hours > 0 else time(0, 0)
    return shifted.time()


def calendar_entry(
    offer: Mapping[str, Any], *, uid: str, timezone: str, cancelled: bool = False, description: str = ""
) -> dict[str, Any]:
    """The `calendar` dict of a message about `offer` (the offer dict of the message data): times
    resolved, LOCATION the address (online: the join link), URL the join link of an online offer.
    Leave `description` empty to let the renderer write one in the recipient's language."""
    start, end = visit_times(offer.get("part_of_day"), offer.get("starts_at"), offer.get("ends_at"))
    online = offer.get("attendance") == "online"
    join_url = offer.get("join_url") or None
    return {
        "uid": uid,
        "sequence": int(offer.get("sequence") or 0),
        "method": "CANCEL" if cancelled else "REQUEST",
        "status": "CANCELLED" if cancelled else "CONFIRMED",
        "summary": offer["title"],
        "date": str(offer["date"]),
        "starts_at": hhmm(start),
        "ends_at": hhmm(end),
        "timezone": timezone,
        "location": (join_url or "online") if online else (offer.get("location") or ""),
        "url": join_url if online else None,
        "description": description,
    }


def method_of(entry: Mapping[str, Any]) -> Method:
    """REQUEST, or CANCEL for a cancellation (its method, or its status CANCELLED)."""
    method = str(entry.get("method") or "").upper()
    if method == "CANCEL" or str(entry.get("status") or "").upper() == "CANCELLED":
        return "CANCEL"
    if method not in ("", "REQUEST"):
        raise ValueError(f"calendar method {method!r} is not REQUEST or CANCEL")
    return "REQUEST"


def content_type(entry: Mapping[str, Any]) -> str:
    """The attachment's MIME type: `text/calendar; method=REQUEST; charset=utf-8` (or method=CANCEL)."""
    return f"text/calendar; method={method_of(entry)}; charset=utf-8"


def to_ics(entry: Mapping[str, Any], *, now: datetime | None = None) -> bytes:
    """The entry as an iCalendar file. Raises KeyError / ValueError for an entry without uid, date or
    timezone, or with a time zone that does not exist (retrying won't help)."""
    zone = ZoneInfo(str(entry["timezone"]))  # ZoneInfoNotFoundError is a KeyError
    day = date.fromisoformat(str(entry["date"]))
    start, end = visit_times(entry.get("part_of_day"), entry.get("starts_at"), entry.get("ends_at"))
    if not end > start:
        raise ValueError(f"the calendar entry ends ({end}) before it starts ({start})")
    method = method_of(entry)
    uid = str(entry["uid"])
    if not uid.strip():
        raise ValueError("the calendar entry has no uid")
    stamp = now or datetime.now(UTC)

    event = Event.new(
        uid=uid,
        sequence=int(entry.get("sequence") or 0),
        stamp=stamp.astimezone(UTC),
        start=datetime.combine(day, start, tzinfo=zone),
        end=datetime.combine(day, end, tzinfo=zone),
        summary=str(entry.get("summary") or ""),
        status="CANCELLED" if method == "CANCEL" else "CONFIRMED",
    )
    if entry.get("location"):
        event.add("location", str(entry["location"]))
    if entry.get("description"):
        event.add("description", str(entry["description"]))
    if entry.get("url"):
        event.add("url", str(entry["url"]))
    if entry.get("organizer"):
        event.add("organizer", f"mailto:{entry['organizer']}")
    event.add("transp", "OPAQUE")

    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", method)
    calendar.add_component(event)
    # The VTIMEZONE goes before the event, as add_component would put it, but already serialised: its
    # ~25 lines cost more to fold and encode than the rest of the file (the sender's hot path, issue 13).
    head, event_lines = calendar.to_ical().split(b"BEGIN:VEVENT\r\n", 1)
    return b"".join((head, _vtimezone_ics(zone.key, day.year), b"BEGIN:VEVENT\r\n", event_lines))


@lru_cache(maxsize=64)
def _vtimezone_ics(zone: str, year: int) -> bytes:
    return _vtimezone(zone, year).to_ical()


@lru_cache(maxsize=64)
def _vtimezone(zone: str, year: int) -> Any:
    """The VTIMEZONE of `zone` for `year` and the next (a few observances, not decades of them), built
    once per zone and year: icalendar builds it from the zone's rules, which costs more than the rest of
    the file. Shared read-only by every calendar that adds it."""
    scratch = Calendar()
    scratch.add_component(Event.new(
        uid="vtimezone", start=datetime(year, 6, 1, 12, tzinfo=ZoneInfo(zone)),
        end=datetime(year, 6, 1, 13, tzinfo=ZoneInfo(zone)), stamp=datetime(year, 1, 1, tzinfo=UTC),
    ))
    scratch.add_missing_timezones(date(year, 1, 1), date(year + 2, 1, 1))
    (found,) = scratch.walk("VTIMEZONE")
    return found
