"""The calendar entries (.ics) of the journey's e-mails parse back, with icalendar, to the visit's date,
local time in the region's time zone, place, UID and SEQUENCE; cancellations cancel."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from services.notifications import calendar as ics
from services.notifications.rendering import Renderer

STAMP = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)
AMSTERDAM = ZoneInfo("Europe/Amsterdam")


def offer(**changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "offer_id": "o-1", "title": "Een dag in de bakkerij; met proeven, en meer", "host_org": "bakkerij-van-dam",
        "date": "2026-09-15", "format": "visit", "attendance": "on_site", "part_of_day": "morning",
        "starts_at": "09:30", "ends_at": "12:15", "location": "Marktstraat 1, Enschede", "join_url": None,
        "what_to_bring": "Stevige schoenen", "themes": [], "sequence": 0,
    }
    return {**fields, **changes}


def entry(cancelled: bool = False, **changes: Any) -> dict[str, Any]:
    return ics.calendar_entry(
        offer(**changes), uid=ics.participant_uid("s-1", "o-1"), timezone="Europe/Amsterdam", cancelled=cancelled
    )


def parse(raw: bytes) -> tuple[Calendar, Any]:
    calendar = Calendar.from_ical(raw)
    (event,) = calendar.events
    return calendar, event


def test_an_entry_parses_back_to_the_visit_in_local_time() -> None:
    calendar, event = parse(ics.to_ics(entry(sequence=3), now=STAMP))

    assert str(calendar["VERSION"]) == "2.0" and "Estafette" in str(calendar["PRODID"])
    assert str(calendar["METHOD"]) == "REQUEST"
    assert event.start == datetime(2026, 9, 15, 9, 30, tzinfo=AMSTERDAM)
    assert event.end == datetime(2026, 9, 15, 12, 15, tzinfo=AMSTERDAM)
    assert event.start.date() == date(2026, 9, 15) and event.start.time() == time(9, 30)
    assert event["DTSTART"].params["TZID"] == "Europe/Amsterdam" == event["DTEND"].params["TZID"]
    assert event.start.utcoffset() == timedelta(hours=2)  # summer time: 07:30 UTC, not 09:30 UTC
    assert str(event["UID"]) == "s-1.o-1@estafette"
    assert int(event["SEQUENCE"]) == 3
    assert str(event["SUMMARY"]) == "Een dag in de bakkerij; met proeven, en meer"  # escaped and back
    assert str(event["LOCATION"]) == "Marktstraat 1, Enschede"
    assert str(event["STATUS"]) == "CONFIRMED"
    assert event["DTSTAMP"].dt == STAMP
    assert "URL" not in event  # on site: no join link


def test_the_time_zone_is_described_in_the_file() -> None:
    calendar, event = parse(ics.to_ics(entry(date="2027-01-12"), now=STAMP))

    assert [tz.tz_name for tz in calendar.timezones] == ["Europe/Amsterdam"]
    assert calendar.get_missing_tzids() == set()
    assert event.start.utcoffset() == timedelta(hours=1)  # winter time


def test_another_regions_time_zone() -> None:
    raw = ics.to_ics({**entry(), "timezone": "Europe/London"}, now=STAMP)
    _, event = parse(raw)
    assert event["DTSTART"].params["TZID"] == "Europe/London"
    assert event.start == datetime(2026, 9, 15, 9, 30, tzinfo=ZoneInfo("Europe/London"))


def test_a_changed_offer_keeps_the_uid_with_a_higher_sequence() -> None:
    _, before = parse(ics.to_ics(entry(sequence=0), now=STAMP))
    _, after = parse(ics.to_ics(entry(sequence=1, starts_at="10:00"), now=STAMP))

    assert str(before["UID"]) == str(after["UID"])
    assert int(after["SEQUENCE"]) == int(before["SEQUENCE"]) + 1
    assert after.start.time() == time(10, 0)


def test_a_cancellation_has_method_cancel_and_status_cancelled() -> None:
    cancel = entry(cancelled=True, sequence=2)
    calendar, event = parse(ics.to_ics(cancel, now=STAMP))

    assert cancel["method"] == "CANCEL" and cancel["status"] == "CANCELLED"
    assert str(calendar["METHOD"]) == "CANCEL"
    assert str(event["STATUS"]) == "CANCELLED"
    assert str(event["UID"]) == "s-1.o-1@estafette" and int(event["SEQUENCE"]) == 2
    assert ics.content_type(cancel) == "text/calendar; method=CANCEL; charset=utf-8"
    assert ics.content_type(entry()) == "text/calendar; method=REQUEST; charset=utf-8"


@pytest.mark.parametrize(
    ("part_of_day", "start", "end"),
    [("whole_day", time(9), time(17)), ("morning", time(9), time(12)), ("afternoon", time(13), time(17))],
)
def test_without_times_the_part_of_the_day_gives_the_usual_times(part_of_day: str, start: time, end: time) -> None:
    _, event = parse(ics.to_ics(entry(part_of_day=part_of_day, starts_at=None, ends_at=None), now=STAMP))

    assert (event.start.time(), event.end.time()) == (start, end)
    assert event.start.tzinfo == AMSTERDAM and event.start.date() == date(2026, 9, 15)


def test_visit_times() -> None:
    assert ics.visit_times(None) == (time(9), time(17))  # an offer of contract v2.0: a whole day
    assert ics.visit_times("morning", "08:00", "11:30") == (time(8), time(11, 30))
    assert ics.visit_times("morning", "10:00") == (time(10), time(12))  # start only: the usual end
    assert ics.visit_times("morning", "12:30") == (time(12, 30), time(13, 30))  # ... unless it has passed
    assert ics.visit_times("afternoon", None, "15:00") == (time(13), time(15))
    assert ics.visit_times("afternoon", None, "12:00") == (time(11), time(12))
    assert ics.visit_times("whole_day", time(9, 15), "16:45:00") == (time(9, 15), time(16, 45))


def test_the_entry_of_an_online_offer_points_to_its_join_link() -> None:
    online = entry(attendance="online", location="", join_url="https://meet.example.org/x?a=1&b=2", sequence=4)
    _, event = parse(ics.to_ics(online, now=STAMP))

    assert online["url"] == online["location"] == "https://meet.example.org/x?a=1&b=2"
    assert str(event["URL"]) == "https://meet.example.org/x?a=1&b=2"
    assert str(event["LOCATION"]) == "https://meet.example.org/x?a=1&b=2"


def test_the_hosts_entry_has_its_own_uid() -> None:
    host = ics.calendar_entry(offer(), uid=ics.host_uid("o-1"), timezone="Europe/Amsterdam")
    _, event = parse(ics.to_ics(host, now=STAMP))
    assert str(event["UID"]) == "host.o-1@estafette"


@pytest.mark.parametrize(
    "broken",
    [{"timezone": "Mars/Olympus_Mons"}, {"starts_at": "12:00", "ends_at": "11:00"}, {"date": "15-09-2026"},
     {"uid": " "}, {"method": "PUBLISH", "status": "CONFIRMED"}],
)
def test_an_entry_that_cannot_be_a_calendar_entry_is_refused(broken: dict[str, Any]) -> None:
    with pytest.raises((KeyError, ValueError)):
        ics.to_ics({**entry(), **broken}, now=STAMP)


# --- the renderer attaches the entry -------------------------------------------------------------------
@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


@pytest.mark.parametrize(
    ("language", "host", "bring"), [("nl", "Bij", "Meenemen"), ("de", "Gastgeber", "Mitbringen"), ("en", "Host", "What to bring")]
)
def test_the_rendered_message_carries_the_invite(renderer: Renderer, language: str, host: str, bring: str) -> None:
    data = {"offer": offer(), "rank": 1, "calendar": entry(sequence=1), "manage_url": "https://r.example.org/links/signup/t"}
    (invite,) = renderer.render("assigned", language, "Anna", data).attachments

    assert invite.filename == "invite.ics"
    assert invite.content_type == "text/calendar; method=REQUEST; charset=utf-8"
    _, event = parse(invite.content)
    assert str(event["UID"]) == "s-1.o-1@estafette" and int(event["SEQUENCE"]) == 1
    assert event.start == datetime(2026, 9, 15, 9, 30, tzinfo=AMSTERDAM)
    description = str(event["DESCRIPTION"])  # written in the recipient's language
    assert f"{host}: bakkerij-van-dam" in description and f"{bring}: Stevige schoenen" in description
    assert "https://r.example.org/links/signup/t" in description


def test_a_description_of_its_own_is_kept(renderer: Renderer) -> None:
    data = {"offer": offer(), "rank": 1, "calendar": {**entry(), "description": "Bring coffee"}}
    (invite,) = renderer.render("assigned", "nl", "Anna", data).attachments
    assert str(parse(invite.content)[1]["DESCRIPTION"]) == "Bring coffee"


def test_a_cancellation_is_attached_as_cancel(renderer: Renderer) -> None:
    data = {"offer": offer(), "reason": "Ziek", "calendar": entry(cancelled=True)}
    (invite,) = renderer.render("offer_cancelled", "de", "Anna", data).attachments

    assert invite.content_type == "text/calendar; method=CANCEL; charset=utf-8"
    calendar, event = parse(invite.content)
    assert str(calendar["METHOD"]) == "CANCEL" and str(event["STATUS"]) == "CANCELLED"


def test_no_calendar_no_attachment(renderer: Renderer) -> None:
    assert renderer.render("assigned", "en", "Anna", {"offer": offer(), "rank": 1}).attachments == ()
    cancelled = {"edition": {"name": "Week"}, "reason": "", "calendar": None}
    assert renderer.render("edition_cancelled", "en", "Anna", cancelled).attachments == ()
