"""The participant's and the host's journey, end to end, on the real platform with a test clock.

The four services run as processes on real Kafka, PostgreSQL and the mail sink, all reading one test
clock (tests/support.py `TestClock`), which the tests move through an edition's life: sign-ups before
the deadline, the automatic match run at the deadline, the day before the visits (reminders, the
hosts' visitor lists), the visits' end (feedback requests), feedback given. Every e-mail is read from
the mail sink; its kind is the `X-Estafette-Kind` header. The tests share the clock, so each works in
its own later stretch of time.
"""

from __future__ import annotations

import email
import email.policy
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import icalendar
import pytest

from tests.support import HTTP_PORTS, Infra, ServiceProcess, TestClock, eventually, services

pytestmark = pytest.mark.e2e

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
URLS = {name: f"http://127.0.0.1:{port}" for name, port in HTTP_PORTS.items()}
ENV = {
    "MATCHING_REMATCH_DEBOUNCE_SECONDS": "0.3",
    "MATCHING_REMATCH_POLL_SECONDS": "0.2",
    "NOTIFICATIONS_SEND_POLL_SECONDS": "0.2",
    "NOTIFICATIONS_MATCHING_PUBLIC_URL": URLS["matching"],
    "NOTIFICATIONS_REGISTRATION_PUBLIC_URL": URLS["registration"],
    "REGISTRATION_PUBLIC_URL": URLS["registration"],
    "REGISTRATION_MATCHING_PUBLIC_URL": URLS["matching"],
    "ESTAFETTE_SCHEDULER_POLL_SECONDS": "0.2",
}
SIGNUP_LINK = re.compile(r"https?://[^\s\"'<>]+/links/signup/[A-Za-z0-9._-]+")
FEEDBACK_LINK = re.compile(r"https?://[^\s\"'<>]+/links/feedback/[A-Za-z0-9._-]+")
START = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def clock() -> TestClock:
    return TestClock(START)


@pytest.fixture(scope="module")
def platform(infra: Infra, clock: TestClock) -> Iterator[dict[str, ServiceProcess]]:
    with services(infra, "registration", "matching", "notifications", "reporting", extra_env={**ENV, **clock.env}) as svc:
        yield svc


@pytest.fixture(scope="module")
def organiser(infra: Infra) -> dict[str, str]:
    return {"Authorization": f"Bearer {infra.key('organiser', 'twente')}"}


# --- reading the mail sink ---------------------------------------------------------------------------
def mails(infra: Infra, address: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{infra.mail_api}/api/messages", params={"to": address})
    r.raise_for_status()
    return r.json()


def kinds(infra: Infra, address: str) -> Counter[str]:
    return Counter(m["headers"].get("X-Estafette-Kind", "?") for m in mails(infra, address))


def mail_of(infra: Infra, address: str, kind: str, timeout: float = 60) -> dict[str, Any]:
    """The one e-mail of `kind` to `address` (waits for it; fails if there are two)."""

    def arrived() -> list[dict[str, Any]]:
        return [m for m in mails(infra, address) if m["headers"].get("X-Estafette-Kind") == kind]

    found = eventually(arrived, timeout=timeout)
    assert len(found) == 1, (address, kind, [m["subject"] for m in found])
    return found[0]


def calendar_of(infra: Infra, message: dict[str, Any]) -> icalendar.Calendar:
    """The `.ics` attached to `message`, parsed by the icalendar library."""
    raw = httpx.get(f"{infra.mail_api}/api/messages/{message['id']}/raw").content
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    for part in parsed.iter_attachments():
        if part.get_content_type() == "text/calendar":
            return icalendar.Calendar.from_ical(part.get_payload(decode=True))
    raise AssertionError(f"no calendar attached to {message['subject']!r}")


def event_of(cal: icalendar.Calendar) -> icalendar.Event:
    events = [c for c in cal.walk("VEVENT")]
    assert len(events) == 1, cal.to_ical()
    return events[0]


def link_in(message: dict[str, Any], pattern: re.Pattern[str]) -> str:
    found = pattern.search(message.get("text") or "") or pattern.search(message.get("html") or "")
    assert found, (message["subject"], message.get("text"))
    return found.group(0)


# --- the organiser's portal ----------------------------------------------------------------------------
def post(url: str, headers: dict[str, str], body: dict[str, Any], expect: int = 201) -> dict[str, Any]:
    r = httpx.post(url, headers=headers, json=body, timeout=30)
    assert r.status_code == expect, (url, r.status_code, r.text)
    return r.json() if r.content else {}


def open_edition(organiser: dict[str, str], edition: str, deadline: datetime, first: date, last: date,
                 **extra: Any) -> None:
    post(f"{URLS['registration']}/editions", organiser, {
        "id": edition, "region": "twente", "name": f"Week van de Uitwisseling {edition}",
        "signup_deadline": deadline.isoformat(), "starts_on": first.isoformat(), "ends_on": last.isoformat(),
        "languages": ["nl", "de", "en"], "themes": ["digitalisation", "care"], **extra})


def publish_offer(organiser: dict[str, str], edition: str, offer: str, **fields: Any) -> None:
    post(f"{URLS['registration']}/editions/{edition}/offers", organiser, {"id": offer, **fields})


def sign_up(edition: str, name: str, address: str, language: str, choices: list[str], org: str = "gemeente-hengelo",
            goal: str = "") -> str:
    body = {"org": org, "name": name, "email": address, "language": language, "choices": choices,
            "learning_goal": goal, "consent": True}
    return post(f"{URLS['registration']}/editions/{edition}/signups", {}, body)["signup_id"]


def runs(organiser: dict[str, str], edition: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{URLS['matching']}/editions/{edition}/match-runs", headers=organiser)
    assert r.status_code == 200, r.text
    body = r.json()
    return body["runs"] if isinstance(body, dict) else body


def known_to_matching(organiser: dict[str, str], edition: str, participants: int) -> None:
    def arrived() -> bool:
        r = httpx.get(f"{URLS['matching']}/editions/{edition}", headers=organiser)
        return r.status_code == 200 and r.json()["participants"] == participants

    eventually(arrived, timeout=60)


def local(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=AMSTERDAM)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


# --- the whole life of an edition ----------------------------------------------------------------------
def test_an_edition_from_signup_to_feedback(infra: Infra, clock: TestClock, platform: dict[str, ServiceProcess],
                                            organiser: dict[str, str]) -> None:
    edition = unique("journey")
    deadline = datetime(2027, 4, 1, 0, 0, tzinfo=UTC)
    visit = date(2027, 4, 13)
    open_edition(organiser, edition, deadline, date(2027, 4, 12), date(2027, 4, 16), match_at_deadline=True)
    bakery, webinar = f"{edition}-bakery", f"{edition}-webinar"
    host = {"bakery": f"host-bakery-{edition}@example.org", "webinar": f"host-webinar-{edition}@example.org"}
    publish_offer(organiser, edition, bakery, host_org="bakker-bart", title="Een ochtend in de bakkerij",
                  date=visit.isoformat(), capacity=1, themes=["care"], attendance="on_site", part_of_day="morning",
                  starts_at="09:30", ends_at="12:00", location="Marktstraat 1, Enschede", what_to_bring="Dichte schoenen",
                  host_contact={"name": "Bart Bakker", "email": host["bakery"], "language": "de"})
    publish_offer(organiser, edition, webinar, host_org="digi-lab", title="Webinar digitaal werken",
                  date=(visit + timedelta(days=1)).isoformat(), capacity=1, themes=["digitalisation"],
                  attendance="online", part_of_day="afternoon", join_url="https://meet.example.org/estafette",
                  host_contact={"name": "Dana Digital", "email": host["webinar"], "language": "en"})
    people = {  # who: (language, choices)
        "anna": ("nl", [bakery, webinar]),
        "bernd": ("de", [webinar, bakery]),
        "chloe": ("en", [bakery]),
    }
    address = {p: f"{p}-{edition}@example.org" for p in people}
    signup = {p: sign_up(edition, p.title(), address[p], lang, picks, goal=f"{p} wil leren plannen")
              for p, (lang, picks) in people.items()}

    # Sign-up confirmations, each with a working link to "my sign-up".
    for p in people:
        confirmation = mail_of(infra, address[p], "signup_confirmed")
        assert confirmation["headers"]["Content-Language"] == people[p][0]
        page = httpx.get(link_in(confirmation, SIGNUP_LINK))
        assert page.status_code == 200 and f"Week van de Uitwisseling {edition}" in page.text, page.text[:500]
    known_to_matching(organiser, edition, 3)
    assert runs(organiser, edition) == []  # nothing is matched before the deadline

    # The deadline passes: matching runs by itself, once.
    clock.move_to(deadline + timedelta(minutes=5))
    done = eventually(lambda: [r for r in runs(organiser, edition) if r["status"] == "done"], timeout=60)
    assert len(done) == 1 and done[0]["assigned"] == 2, done
    assigned = mail_of(infra, address["anna"], "assigned")
    entry = event_of(calendar_of(infra, assigned))
    assert entry.decoded("dtstart") == local(visit, time(9, 30)) and entry.decoded("dtend") == local(visit, time(12, 0))
    assert str(entry["location"]) == "Marktstraat 1, Enschede"
    assert str(entry["uid"]) == f"{signup['anna']}.{bakery}@estafette" and int(entry.get("sequence", 0)) == 0
    webinar_entry = event_of(calendar_of(infra, mail_of(infra, address["bernd"], "assigned")))
    assert webinar_entry.decoded("dtstart").date() == visit + timedelta(days=1)
    mail_of(infra, address["chloe"], "waitlisted")

    # A graceful restart of notifications in the middle of the journey changes nothing below.
    platform["notifications"].stop()
    platform["notifications"].start()

    # The day before the bakery visit: Anna's reminder (with the entry) and Bart's visitor list, in German.
    clock.move_to(local(visit - timedelta(days=1), time(9, 5)))
    reminder = mail_of(infra, address["anna"], "reminder")
    assert "Dichte schoenen" in reminder["text"]
    assert event_of(calendar_of(infra, reminder)).decoded("dtstart") == local(visit, time(9, 30))
    visitors = mail_of(infra, host["bakery"], "visitor_list")
    assert visitors["headers"]["Content-Language"] == "de"
    assert "Anna" in visitors["text"] and "gemeente-hengelo" in visitors["text"] and "anna wil leren plannen" in visitors["text"]
    calendar_of(infra, visitors)

    # After the visit: Anna's feedback request; she gives feedback through its link.
    clock.move_to(local(visit, time(12, 30)))
    request = mail_of(infra, address["anna"], "feedback_request")
    feedback_url = link_in(request, FEEDBACK_LINK)
    assert httpx.get(feedback_url).status_code == 200
    given = httpx.post(feedback_url, data={"rating": "5", "learned": "Deeg rijst beter in de warmte.", "share_publicly": "on"})
    assert given.status_code == 200, given.text
    assert httpx.post(feedback_url, data={"rating": "1", "learned": "twice"}).status_code in (200, 409)

    # Then the webinar day: Bernd's reminder came the day before, his feedback request after it.
    clock.move_to(local(visit + timedelta(days=1), time(18, 0)))
    mail_of(infra, address["bernd"], "reminder")
    mail_of(infra, address["bernd"], "feedback_request")
    mail_of(infra, host["webinar"], "visitor_list")

    # The figures in reporting.
    def report() -> dict[str, Any] | None:
        r = httpx.get(f"{URLS['reporting']}/reports/editions/{edition}", headers=organiser)
        body = r.json() if r.status_code == 200 else {}
        return body if body.get("feedback", {}).get("count") == 1 else None

    figures = eventually(report, timeout=60)
    assert figures["signups"] == 3 and figures["assigned"] == 2, figures

    # Exactly one e-mail of each kind per person and host (checked after everything above arrived).
    assert kinds(infra, address["anna"]) == Counter(["signup_confirmed", "assigned", "reminder", "feedback_request"])
    assert kinds(infra, address["bernd"]) == Counter(["signup_confirmed", "assigned", "reminder", "feedback_request"])
    assert kinds(infra, address["chloe"]) == Counter(["signup_confirmed", "waitlisted"])
    assert kinds(infra, host["bakery"]) == Counter(["visitor_list"])
    assert kinds(infra, host["webinar"]) == Counter(["visitor_list"])


def test_cancelling_an_edition_after_the_match_tells_everyone_once(
    infra: Infra, clock: TestClock, platform: dict[str, ServiceProcess], organiser: dict[str, str]
) -> None:
    edition = unique("cancel")
    deadline = datetime(2027, 5, 1, tzinfo=UTC)
    visit = date(2027, 5, 12)
    open_edition(organiser, edition, deadline, date(2027, 5, 10), date(2027, 5, 14))
    offer = f"{edition}-garage"
    host = f"host-{edition}@example.org"
    publish_offer(organiser, edition, offer, host_org="garage-gerrit", title="Garage", date=visit.isoformat(),
                  capacity=1, host_contact={"name": "Gerrit", "email": host, "language": "nl"})
    people = {"dirk": "nl", "eva": "de", "finn": "en"}
    address = {p: f"{p}-{edition}@example.org" for p in people}
    signup = {p: sign_up(edition, p.title(), address[p], lang, [offer]) for p, lang in people.items()}
    known_to_matching(organiser, edition, 3)
    post(f"{URLS['matching']}/editions/{edition}/match-runs", organiser, {}, expect=202)
    eventually(lambda: [r for r in runs(organiser, edition) if r["status"] == "done"], timeout=60)
    for p in people:  # one placed, two waiting: each told
        eventually(lambda p=p: kinds(infra, address[p]).keys() & {"assigned", "waitlisted"}, timeout=60)

    post(f"{URLS['registration']}/editions/{edition}/cancel", organiser, {"reason": "De organisatie stopt ermee."}, expect=204)
    post(f"{URLS['registration']}/editions/{edition}/cancel", organiser, {"reason": "nog een keer"}, expect=204)
    for p, lang in people.items():
        cancelled = mail_of(infra, address[p], "edition_cancelled")
        assert cancelled["headers"]["Content-Language"] == lang
        assert "De organisatie stopt ermee." in cancelled["text"]
    mail_of(infra, host, "host_edition_cancelled")

    # No later run or re-match: a withdrawal frees the seat, but nothing is matched again.
    assert httpx.post(f"{URLS['matching']}/editions/{edition}/match-runs", headers=organiser).status_code == 409
    placed = next(p for p in people if kinds(infra, address[p])["assigned"])
    r = httpx.delete(f"{URLS['registration']}/editions/{edition}/signups/{signup[placed]}", headers=organiser)
    assert r.status_code in (204, 409), r.text
    clock.move_to(deadline + timedelta(days=2))
    marker = unique("marker")  # a later edition's run, after which matching has seen the withdrawal
    open_edition(organiser, marker, deadline + timedelta(days=30), date(2027, 6, 10), date(2027, 6, 11))
    eventually(lambda: httpx.get(f"{URLS['matching']}/editions/{marker}", headers=organiser).status_code == 200, timeout=60)
    assert len(runs(organiser, edition)) == 1
    for p in people:
        assert kinds(infra, address[p])["edition_cancelled"] == 1


def test_changing_an_offers_time_after_the_match_sends_one_updated_entry(
    infra: Infra, clock: TestClock, platform: dict[str, ServiceProcess], organiser: dict[str, str]
) -> None:
    edition = unique("change")
    deadline = datetime(2027, 7, 1, tzinfo=UTC)
    visit = date(2027, 7, 13)
    open_edition(organiser, edition, deadline, date(2027, 7, 12), date(2027, 7, 16))
    offer = f"{edition}-lab"
    publish_offer(organiser, edition, offer, host_org="lab-lotte", title="Lab", date=visit.isoformat(), capacity=2,
                  part_of_day="morning", starts_at="09:00", ends_at="11:00", location="Lablaan 2, Enschede")
    people = {"gijs": "nl", "hanna": "de"}
    address = {p: f"{p}-{edition}@example.org" for p in people}
    signup = {p: sign_up(edition, p.title(), address[p], lang, [offer]) for p, lang in people.items()}
    known_to_matching(organiser, edition, 2)
    post(f"{URLS['matching']}/editions/{edition}/match-runs", organiser, {}, expect=202)
    before = {p: event_of(calendar_of(infra, mail_of(infra, address[p], "assigned"))) for p in people}

    r = httpx.patch(f"{URLS['registration']}/editions/{edition}/offers/{offer}", headers=organiser,
                    json={"starts_at": "13:30", "ends_at": "15:30", "part_of_day": "afternoon"})
    assert r.status_code == 200, r.text
    for p in people:
        changed = mail_of(infra, address[p], "offer_changed")
        entry = event_of(calendar_of(infra, changed))
        assert str(entry["uid"]) == str(before[p]["uid"]) == f"{signup[p]}.{offer}@estafette"
        assert int(entry["sequence"]) > int(before[p].get("sequence", 0))
        assert entry.decoded("dtstart") == local(visit, time(13, 30))
    assert all(kinds(infra, address[p])["offer_changed"] == 1 for p in people)


def test_a_participant_changes_a_choice_and_gives_feedback_in_a_browser(
    infra: Infra, clock: TestClock, platform: dict[str, ServiceProcess], organiser: dict[str, str]
) -> None:
    """Debian's headless Chromium: "my sign-up" opened from the confirmation e-mail in the mail sink, a
    choice changed there, and later feedback given through the feedback request's link."""
    from tests.e2e.cdp import Browser, chromium_path

    edition = unique("browser")
    deadline = datetime(2027, 9, 1, tzinfo=UTC)
    visit = date(2027, 9, 14)
    open_edition(organiser, edition, deadline, date(2027, 9, 13), date(2027, 9, 17))
    first, second = f"{edition}-museum", f"{edition}-harbour"
    publish_offer(organiser, edition, first, host_org="museum-mies", title="Een dag in het museum", date=visit.isoformat(),
                  capacity=2)
    publish_offer(organiser, edition, second, host_org="haven-henk", title="Een dag in de haven", date=visit.isoformat(),
                  capacity=2, part_of_day="morning")
    address = f"iris-{edition}@example.org"
    signup_id = sign_up(edition, "Iris", address, "nl", [first])
    manage_url = link_in(mail_of(infra, address, "signup_confirmed"), SIGNUP_LINK)

    with Browser(chromium_path()) as browser:
        tab = browser.tab()
        page = tab.open(manage_url)
        assert page.status == 200 and "Een dag in het museum" in page.text, page.text
        # The first rank's select: choose the harbour instead of the museum, and save.
        chosen = tab.evaluate(
            "(() => { const s = document.querySelector('form[action$=\"/choices\"] select[name=choice_1]');"
            f" s.value = {second!r}; return s.value; }})()")
        assert chosen == second
        saved = tab.press('form[action$="/choices"] button')
        assert saved.status == 200, saved.text
        assert "Een dag in de haven" in tab.open(manage_url).text

        def choices_in_matching() -> bool:
            # The changed choice reaches matching some time after the page answered: a preview places
            # Iris at the harbour only once matching has it (its participant count is 1 either way).
            r = httpx.post(f"{URLS['matching']}/editions/{edition}/match-preview", headers=organiser)
            return r.status_code == 200 and [a["offer_id"] for a in r.json()["assignments"]] == [second]

        eventually(choices_in_matching, timeout=60)
        clock.move_to(deadline + timedelta(hours=1))
        post(f"{URLS['matching']}/editions/{edition}/match-runs", organiser, {}, expect=202)
        assigned = mail_of(infra, address, "assigned")
        assert "Een dag in de haven" in assigned["subject"] + assigned["text"], assigned["subject"]

        clock.move_to(local(visit, time(18, 0)))
        feedback_url = link_in(mail_of(infra, address, "feedback_request"), FEEDBACK_LINK)
        form = tab.open(feedback_url)
        assert form.status == 200 and "<textarea" in form.html, form.html
        tab.evaluate(
            "(() => { document.querySelector('input[name=rating][value=\"4\"]').checked = true;"
            " document.querySelector('textarea[name=learned]').value = 'Hoe een haven plant.';"
            " document.querySelector('input[name=share_publicly]').checked = true; })()")
        thanks = tab.press("form button")
        assert thanks.status == 200 and "<textarea" not in thanks.html, thanks.html

    def feedback_counted() -> dict[str, Any] | None:
        r = httpx.get(f"{URLS['reporting']}/reports/editions/{edition}", headers=organiser)
        body = r.json() if r.status_code == 200 else {}
        return body if body.get("feedback", {}).get("count") == 1 else None

    eventually(feedback_counted, timeout=60)
    assert signup_id
