"""Issue 10, "What it must show", end to end: the national relay on the real platform with a test clock.

Registration (the write side) and reporting (the read side) run as processes on real Kafka and
PostgreSQL, both reading one test clock. The national coordinator (a `national` key) plans three legs
over three regions of the test's own; participants of region A sign up during leg 1 and two of them
give feedback they agree to share (`share_publicly`); A's organiser approves one knowledge item (with
the names taken out) and rejects the other. Moving the clock, the baton starts at leg 1's first day and
moves at its end (carrying the approved item); region B's organiser hands over early, so leg 3 starts
at once; leg 2's own hand-over and leg 3's own start then change nothing; leg 3 ends. Each leg is
started and handed over exactly once: the relay topic and registration's outbox hold each event once.

Then the public relay page and both feeds (from reporting) show the route in order, who holds the
baton, the early hand-over, the day's activities and figures and the approved knowledge item — never
the rejected one (nor the participant's own words of the approved one); the Atom feed parses back with
feedparser (bozo false) with its required elements.

The relay plan is national (one per platform): the legs are planned after every leg registration has
already (other tests of the session), at positions after those of any leg reporting knows, so that the
test's legs are the last of the route."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import feedparser
import httpx
import pytest

from estafette.runtime.auth import Links
from schemas.topics import RELAY
from tests.integration.test_registration import records
from tests.support import LINK_SECRET, Infra, ServiceProcess, TestClock, eventually, region, services

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
RUN = uuid.uuid4().hex[:6]
A, B, C = REGIONS = [f"rj{RUN}-{x}" for x in ("a", "b", "c")]
LEGS = [f"leg-rj-{RUN}-{n}" for n in (1, 2, 3)]
EDITIONS = {r: f"rj-{RUN}-{r[-1]}" for r in REGIONS}
OFFER = f"rj-{RUN}-bakery"
SHARED = ("Anna Jansen learned to bake sourdough bread", "Call Bob on 0612345678 about rye")
APPROVED_TEXT = "Someone learned to bake sourdough bread"
REJECTION = "Contains a phone number"
STEPS = ("relay_leg_start", "relay_handover")


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def at(day: date, hour: int = 0, minute: int = 1) -> datetime:
    """A local time in the regions' time zone (Europe/Amsterdam, as the relay's public pages)."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=AMSTERDAM)


@pytest.fixture(scope="module")
def clock() -> TestClock:
    return TestClock(at(date(2027, 10, 1), 12))


@pytest.fixture(scope="module")
def platform(infra: Infra, clock: TestClock) -> Iterator[dict[str, ServiceProcess]]:
    infra.add_regions(*(region(r, partitions=1) for r in REGIONS))
    infra.reset_relay()  # the country has one relay: other tests' legs are forgotten first
    env = {**clock.env, "ESTAFETTE_SCHEDULER_POLL_SECONDS": "0.2"}
    with services(infra, "registration", "reporting", extra_env=env) as svc:
        yield svc


@pytest.fixture(scope="module")
def registration(platform: dict[str, ServiceProcess]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=platform["registration"].url, timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def reporting(platform: dict[str, ServiceProcess]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=platform["reporting"].url, timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def keys(infra: Infra) -> dict[str, dict[str, str]]:
    return {"national": bearer(infra.key("national")), "admin": bearer(infra.key("admin")),
            **{r: bearer(infra.key("organiser", r)) for r in REGIONS}}


# --- what the platform did ---------------------------------------------------------------------------
def relay_events() -> list[tuple[str, str, str | None, bool | None, list[str] | None]]:
    """The test's legs' events on the national relay topic, in order: (type, leg, to_leg, early, items)."""
    found = [json.loads(v) for k, v in records(Infra(), RELAY.name) if k in LEGS and v]
    return [(e["event_type"], e["leg_id"], e.get("to_leg_id"), e.get("early"), e.get("knowledge_items"))
            for e in found]


def events_once(count: int) -> list[tuple] | None:
    found = relay_events()
    return found if len(found) >= count else None


async def _query(sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(Infra.dsn("registration"))
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


def query(sql: str, *args: Any) -> list[asyncpg.Record]:
    return asyncio.run(_query(sql, *args))


def steps_done() -> dict[tuple[str, str], bool]:
    """Registration's scheduled relay steps of the test's legs: done or not."""
    rows = query("SELECT kind, key, done_at FROM registration.scheduled_steps WHERE kind = ANY($1) AND key = ANY($2)",
                 list(STEPS), LEGS)
    return {(r["kind"], r["key"]): r["done_at"] is not None for r in rows}


def outbox_events() -> list[tuple[str, str]]:
    """What registration's outbox holds for the test's legs (every event it ever published for them)."""
    rows = query("SELECT key, event_type FROM registration.outbox WHERE topic = $1 AND key = ANY($2) ORDER BY id",
                 RELAY.name, LEGS)
    return [(r["event_type"], r["key"]) for r in rows]


def route_block(html: str) -> str:
    found = re.search(r'<ol class="route">(.*?)</ol>', html, re.S)
    assert found, html
    return found.group(1)


def leg_item(route: str, region_id: str) -> str:
    found = re.search(r"<li[^>]*>\s*<strong>" + re.escape(region_id) + r"</strong>.*?</li>", route, re.S)
    assert found, (region_id, route)
    return found.group(0)


# --- the journey -------------------------------------------------------------------------------------
def test_the_relay_from_plan_to_public_page_and_feeds(infra, registration, reporting, keys, clock):
    plan = registration.get("/relay/legs").json()
    start = max([date(2027, 12, 1), *(date.fromisoformat(x["last_day"]) + timedelta(days=30) for x in plan)])
    # After any leg reporting knows (other tests may have produced legs that registration did not plan).
    known = reporting.get("/relay/feed.json").json()["_relay"]["route"]
    position = max([0, *(x["position"] for x in plan), *(x["position"] or 0 for x in known)]) + 100
    days = [(start + timedelta(days=3 * i), start + timedelta(days=3 * i + 2)) for i in range(3)]
    clock.move_to(at(start - timedelta(days=20), 12))

    # Each region has an edition over the relay's days; region A's has an offer to give feedback on.
    for r in REGIONS:
        resp = registration.post("/editions", headers=keys["admin"], json={
            "id": EDITIONS[r], "region": r, "name": f"Relay week {r}", "languages": ["nl", "en"],
            "signup_deadline": at(start + timedelta(days=20), 23, 0).isoformat(), "starts_on": str(start),
            "ends_on": str(start + timedelta(days=20))})
        assert resp.status_code == 201, resp.text
    resp = registration.post(f"/editions/{EDITIONS[A]}/offers", headers=keys["admin"], json={
        "id": OFFER, "host_org": "bakker-bart", "title": "Bakery", "date": str(days[0][0]), "capacity": 10,
        "location": "Markt 1"})
    assert resp.status_code == 201, resp.text

    # The plan: three legs over three regions, by the national coordinator (an organiser may not).
    for n, (leg, r, (first, last)) in enumerate(zip(LEGS, REGIONS, days, strict=True)):
        body = {"region": r, "edition": EDITIONS[r], "first_day": str(first), "last_day": str(last),
                "activity": f"Open office days in {r}", "position": position + n + 1, "allow_gap": n == 0}
        assert registration.put(f"/relay/legs/{leg}", json=body, headers=keys[r]).status_code == 403
        resp = registration.put(f"/relay/legs/{leg}", json=body, headers=keys["national"])
        assert resp.status_code == 200, resp.text
    assert eventually(lambda: events_once(3), timeout=60) == [("RelayLegPlanned", leg, None, None, None) for leg in LEGS]

    # Leg 1's first day begins: it starts.
    clock.move_to(at(days[0][0], 0, 1))
    assert eventually(lambda: events_once(4), timeout=60)[3] == ("RelayLegStarted", LEGS[0], None, None, None)

    # During leg 1: six participants of region A sign up; two give feedback they agree to share, one
    # does not share; A's organiser approves the first (names taken out) and rejects the second.
    clock.move_to(at(days[0][0], 10, 0))
    signups = []
    for n in range(6):
        resp = registration.post(f"/editions/{EDITIONS[A]}/signups", json={
            "org": "gemeente", "name": f"Person {n}", "email": f"p{n}-{RUN}@example.org", "choices": [OFFER],
            "language": "en", "consent": True})
        assert resp.status_code == 201, resp.text
        signups.append(resp.json()["signup_id"])
    links = Links(LINK_SECRET, clock)
    for signup_id, (learned, share) in zip(signups, [(SHARED[0], True), (SHARED[1], True), ("Private notes", False)]):
        token = links.make("feedback", signup_id, EDITIONS[A], ref=OFFER)
        form = {"rating": "5", "learned": learned, **({"share_publicly": "on"} if share else {})}
        resp = registration.post(f"/links/feedback/{token}", data=form)
        assert resp.status_code == 200, resp.text
    items = f"/editions/{EDITIONS[A]}/knowledge-items"
    pending = registration.get(items, headers=keys[A]).json()
    assert sorted(x["learned"] for x in pending) == sorted(SHARED), pending
    approved_id = next(x["feedback_id"] for x in pending if x["learned"] == SHARED[0])
    rejected_id = next(x["feedback_id"] for x in pending if x["learned"] == SHARED[1])
    resp = registration.post(f"{items}/{approved_id}/approve", json={"text": APPROVED_TEXT}, headers=keys[A])
    assert (resp.status_code, resp.json()["status"]) == (200, "approved"), resp.text
    resp = registration.post(f"{items}/{rejected_id}/reject", json={"reason": REJECTION}, headers=keys[A])
    assert (resp.status_code, resp.json()["status"]) == (200, "rejected"), resp.text

    # Leg 1's last day ends: the baton goes to leg 2, carrying the approved item (not the rejected one).
    clock.move_to(at(days[1][0], 0, 1))
    assert eventually(lambda: events_once(6), timeout=60)[4:] == [
        ("RelayLegHandedOver", LEGS[0], LEGS[1], False, [approved_id]), ("RelayLegStarted", LEGS[1], None, None, None)]

    # On leg 2's second day, region B hands over early (A's organiser may not): leg 3 starts now.
    clock.move_to(at(days[1][0] + timedelta(days=1), 15, 0))
    assert registration.post(f"/relay/legs/{LEGS[1]}/handover", headers=keys[A]).status_code == 403
    resp = registration.post(f"/relay/legs/{LEGS[1]}/handover", headers=keys[B])
    assert (resp.status_code, resp.json()["early"]) == (200, True), resp.text
    assert eventually(lambda: events_once(8), timeout=60)[6:] == [
        ("RelayLegHandedOver", LEGS[1], LEGS[2], True, []), ("RelayLegStarted", LEGS[2], None, None, None)]

    # --- the public page and both feeds while leg 3 holds the baton (today: leg 2's second day) ---
    today = days[1][0] + timedelta(days=1)
    route = check_the_public_relay_while_leg_3_holds(reporting, today, days, approved_id, rejected_id)

    # Leg 2's scheduled hand-over and leg 3's scheduled start pass by (nothing happens); leg 3 ends.
    clock.move_to(at(days[2][1] + timedelta(days=1), 0, 1))
    # (every step of the test's legs has run: leg 2's hand-over and leg 3's start found nothing to do)
    eventually(lambda: (done := steps_done()).get(("relay_handover", LEGS[2])) and all(done.values()), timeout=60)
    final = eventually(lambda: events_once(9), timeout=60)
    assert final[8] == ("RelayLegHandedOver", LEGS[2], None, False, [])

    # Exactly once: each leg planned, started and handed over once — on the topic and in the outbox.
    expected = [(kind, leg) for kind in ("RelayLegPlanned", "RelayLegStarted", "RelayLegHandedOver") for leg in LEGS]
    assert sorted(outbox_events()) == sorted(expected)
    assert sorted((e[0], e[1]) for e in relay_events()) == sorted(expected)
    assert [x["status"] for x in registration.get("/relay/legs").json() if x["id"] in LEGS] == ["handed_over"] * 3

    # Reporting follows: every leg of the test's relay done; the feeds' days now run to leg 3's last day.
    def over() -> dict | None:
        feed = reporting.get("/relay/feed.json", params={"lang": "en"}).json()
        route = [x for x in feed["_relay"]["route"] if x["leg"] in LEGS]
        return feed if [x["state"] for x in route] == ["done"] * 3 else None

    feed = eventually(over, timeout=60)
    mine = {i["_relay"]["day"]: i["_relay"]["leg"] for i in feed["items"] if i["_relay"]["leg"] in LEGS}
    planned = {str(days[0][0] + timedelta(days=n)): LEGS[0] for n in range(3)} | {str(days[1][0]): LEGS[1]} | {
        str(today + timedelta(days=n)): LEGS[2] for n in range((days[2][1] - today).days + 1)}
    leg_3 = [x for x in feed["_relay"]["route"] if x["leg"] == LEGS[2]][0]

    # Legs 1 and 3 were handed over on time, at the end of their last day: the route shows them ending
    # on that day, and the relay's days are the planned ones. (Last, as these fail at the time of writing:
    # reporting takes the hand-over event's date as the leg's last day, and a scheduled hand-over at
    # midnight falls on the next day: leg 1 reads "Dec 1 - Dec 4", leg 3 gets a day after its plan.)
    assert (route[0]["first_day"], route[0]["last_day"]) == (str(days[0][0]), str(days[0][1])), route[0]
    assert leg_3["last_day"] == str(days[2][1]), leg_3
    assert mine == planned


def check_the_public_relay_while_leg_3_holds(
    reporting: httpx.Client, today: date, days: list[tuple[date, date]], approved_id: str, rejected_id: str,
) -> list[dict[str, Any]]:
    """The public relay's checks; returns the test's legs of the JSON feed's route."""
    # The page (no JavaScript), once reporting has consumed the hand-overs and the knowledge items.
    def page() -> str | None:
        html = reporting.get("/relay", params={"lang": "en"}).text
        return html if f"<strong>{C}</strong> holds the baton" in html and APPROVED_TEXT in html else None

    html = eventually(page, timeout=60)
    assert "<script" not in html
    route = route_block(html)
    assert route.index(f"<strong>{A}</strong>") < route.index(f"<strong>{B}</strong>") < route.index(f"<strong>{C}</strong>")
    assert 'class="done"' in leg_item(route, A) and "(early)" not in leg_item(route, A)
    assert 'class="done"' in leg_item(route, B) and "(early)" in leg_item(route, B)
    assert 'class="holding"' in leg_item(route, C) and 'aria-current="step"' in leg_item(route, C)
    for r in REGIONS:
        assert f"Open office days in {r}" in html  # each leg's activity, on its days
    assert APPROVED_TEXT in html and "Bakery" in html
    for never in (*SHARED, REJECTION, "Private notes", rejected_id, "Person 0", f"p0-{RUN}@example.org"):
        assert never not in html, never

    # JSON Feed: the route and the holder, one item per day so far (none ahead), the day's figures.
    feed = reporting.get("/relay/feed.json", params={"lang": "en"})
    assert feed.status_code == 200 and feed.headers["content-type"].startswith("application/feed+json")
    body = feed.json()
    assert body["version"] == "https://jsonfeed.org/version/1.1"
    assert (body["_relay"]["today"], body["_relay"]["holder"]) == (str(today), C)
    route_legs = [x for x in body["_relay"]["route"] if x["leg"] in LEGS]
    assert [(x["leg"], x["region"], x["state"], x["early"]) for x in route_legs] == [
        (LEGS[0], A, "done", False), (LEGS[1], B, "done", True), (LEGS[2], C, "holding", False)]
    assert route_legs[0]["first_day"] == str(days[0][0])
    assert (route_legs[1]["first_day"], route_legs[1]["last_day"]) == (str(days[1][0]), str(today))  # early
    assert (route_legs[2]["first_day"], route_legs[2]["last_day"]) == (str(today), str(days[2][1]))
    assert route_legs[0]["knowledge_items"] == [approved_id]
    assert [x["knowledge_items"] for x in route_legs[1:]] == [[], []]
    mine = {i["_relay"]["day"]: i for i in body["items"] if i["_relay"]["leg"] in LEGS}
    # the relay's days so far: leg 1's three, leg 2's first; today (the early hand-over's day) is leg 3's
    expected = {str(days[0][0] + timedelta(days=n)): LEGS[0] for n in range(3)} | {str(days[1][0]): LEGS[1],
                                                                                str(today): LEGS[2]}
    assert {d: i["_relay"]["leg"] for d, i in mine.items()} == expected
    first = mine[str(days[0][0])]["_relay"]
    assert (first["region"], first["edition"], first["activity"]) == (A, EDITIONS[A], f"Open office days in {A}")
    # six sign-ups that day (shown, unless withheld to protect a small count elsewhere); two ratings: "< 5"
    assert first["signups"] in (6, "withheld"), first
    assert first["feedback"] == "< 5" and first["average_rating"] is None
    assert [k["id"] for k in first["knowledge_items"]] == [approved_id]
    assert first["knowledge_items"][0]["text"] == APPROVED_TEXT
    assert APPROVED_TEXT in mine[str(days[0][0])]["content_text"]
    text = feed.text
    for never in (*SHARED, REJECTION, rejected_id):
        assert never not in text, never

    # Atom: well-formed and valid as feedparser reads it, with its required elements, the same days.
    atom = reporting.get("/relay/feed.atom", params={"lang": "en"})
    assert atom.status_code == 200 and atom.headers["content-type"].startswith("application/atom+xml")
    parsed = feedparser.parse(atom.content)
    assert parsed.bozo is False or parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    assert parsed.feed.id and parsed.feed.title and parsed.feed.updated and parsed.feed.updated_parsed
    assert parsed.feed.author
    assert parsed.entries and all(e.id and e.title and e.updated and e.updated_parsed for e in parsed.entries)
    entries = {e.id: e for e in parsed.entries}
    for day, item in mine.items():
        entry = entries[item["id"]]
        assert entry.title == item["title"] and day in entry.link
    leg_1_day = entries[mine[str(days[0][0])]["id"]]
    assert APPROVED_TEXT in leg_1_day.content[0].value and f"Open office days in {A}" in leg_1_day.content[0].value
    assert str(days[2][0]) not in " ".join(entries)  # no entry for a day ahead
    for never in (*SHARED, REJECTION, rejected_id):
        assert never.encode() not in atom.content, never
    for lang in ("nl", "de"):  # the other languages parse too
        other = feedparser.parse(reporting.get("/relay/feed.atom", params={"lang": lang}).content)
        assert not other.bozo and other.feed.id != parsed.feed.id and len(other.entries) == len(parsed.entries)
    return route_legs
