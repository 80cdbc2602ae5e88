"""The relay's feeds and the dashboard feed (services/reporting/feeds.py, live.py): JSON Feed 1.1 and Atom
(parsed back by feedparser: well-formed, the required elements, newest first, the approved knowledge
items and never a rejected one, text escaped), the dashboard feed's body (no count below the threshold,
no suppressed count recoverable from the totals) and its ETag (a hash of the body: stable, moves with
any figure; 304 on If-None-Match), and the live loop (a wake-up publishes the changed records and moves
the generation, which every open stream hears)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime

import feedparser
import httpx

from estafette.runtime.clock import Clock
from services.reporting import feeds
from services.reporting.api import build_api
from services.reporting.dashboard import Dashboard, format_date
from services.reporting.live import REST_MAX, REST_MIN, LiveDashboard, rest_seconds
from services.reporting.public import DayCell, public_figures
from services.reporting.relay import RelayView, relay_view
from tests.unit.fakes import FakeUnitOfWork
from tests.unit.reporting import builders as b
from tests.unit.reporting.fakes import FakeRepository, handle
from tests.unit.reporting.test_relay_view import A, B, C, TZ, ed, item, legs_with, local, nov, plan

BASE = "https://estafette.example/"
PAGES = Dashboard()


def identity(text: str) -> str:
    return text


def view(now: datetime | None = None) -> RelayView:
    """Leg 1 done (carrying an approved item), leg 2 handed over early on Nov 5, leg 3 holding; one rejected
    item; sign-ups on Nov 1 (7) and Nov 2 (2) in A's edition, 12 on Nov 4 in B's."""
    legs = legs_with(
        leg_1={"starts_on": nov(1), "handed_over_at": datetime(2027, 11, 3, 22, 59, tzinfo=UTC), "handed_over_to": B,
               "to_leg_id": "leg-2", "knowledge_items": ("fb-ok",)},
        leg_2={"starts_on": nov(4), "handed_over_at": datetime(2027, 11, 5, 15, tzinfo=UTC), "handed_over_to": C,
               "to_leg_id": "leg-3", "early": True},
        leg_3={"starts_on": nov(5), "activity": "Tom & Jerry's <b>open</b> day"},
    )
    items = [item("fb-ok", A, text="Hybrid meetings need a host & a <plan>"),
             item("fb-no", A, "rejected")]
    cells = [DayCell(A, ed(A), nov(1), signups=7), DayCell(A, ed(A), nov(2), signups=2),
             DayCell(B, ed(B), nov(4), signups=12)]
    editions = [b.figures(ed(A), A, signups=9, not_required=9), b.figures(ed(B), B, signups=12, not_required=12),
                b.figures(ed(C), C)]
    return relay_view(legs, items, public_figures(editions, cells, {}, 5), now or local(nov(5), 18), TZ)


# --- JSON Feed 1.1 ------------------------------------------------------------------------------------
def test_the_json_feed_has_one_item_per_day_so_far_newest_first_with_the_route_and_todays_holder():
    feed = feeds.json_feed(view(), BASE, "en", identity, date.isoformat)
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert feed["title"] and feed["home_page_url"] == f"{BASE}relay?lang=en"
    assert feed["feed_url"] == f"{BASE}relay/feed.json?lang=en"
    days = [i["_relay"]["day"] for i in feed["items"]]
    assert days == [f"2027-11-0{n}" for n in (5, 4, 3, 2, 1)]  # up to today (Nov 5), newest first
    ids = [i["id"] for i in feed["items"]]
    assert len(set(ids)) == len(ids) and all(isinstance(i, str) and i.startswith("tag:") for i in ids)
    for i in feed["items"]:
        assert i["content_text"] and datetime.fromisoformat(i["date_published"]).tzinfo is not None
        assert i["url"].startswith(f"{BASE}relay?lang=en#")
    relay = feed["_relay"]
    assert (relay["today"], relay["holder"], relay["threshold"]) == ("2027-11-05", C, 5)
    assert [(leg["leg"], leg["state"], leg["early"]) for leg in relay["route"]] == [
        ("leg-1", "done", False), ("leg-2", "done", True), ("leg-3", "holding", False)]
    assert relay["route"][0]["knowledge_items"] == ["fb-ok"]
    json.dumps(feed)  # serialisable as it is


def test_the_json_feed_shows_small_counts_as_below_the_threshold_and_protecting_counts_as_withheld():
    items = {i["_relay"]["day"]: i["_relay"] for i in feeds.json_feed(view(), BASE, "en", identity, date.isoformat)["items"]}
    assert items["2027-11-02"]["signups"] == "< 5"
    assert items["2027-11-01"]["signups"] == "withheld"  # 9 - 7 would give the small day away
    assert items["2027-11-04"]["signups"] == 12 and items["2027-11-03"]["signups"] == 0
    assert (items["2027-11-05"]["region"], items["2027-11-05"]["leg"]) == (C, "leg-3")  # the early hand-over's day
    for day in items.values():
        for name in ("signups", "assigned", "feedback"):
            assert day[name] in ("< 5", "withheld") or day[name] == 0 or day[name] >= 5


def test_the_json_feed_carries_the_approved_knowledge_item_with_its_leg_and_never_the_rejected_one():
    feed = feeds.json_feed(view(), BASE, "en", identity, date.isoformat)
    items = {i["_relay"]["day"]: i for i in feed["items"]}
    leg_1_day = items["2027-11-02"]
    assert [k["id"] for k in leg_1_day["_relay"]["knowledge_items"]] == ["fb-ok"]
    assert leg_1_day["_relay"]["knowledge_items"][0]["text"] == "Hybrid meetings need a host & a <plan>"
    assert "Hybrid meetings need a host" in leg_1_day["content_text"]
    assert items["2027-11-05"]["_relay"]["knowledge_items"] == []
    assert "fb-no" not in json.dumps(feed)


def test_before_the_relay_the_feeds_have_no_items_and_say_nobody_holds_the_baton():
    early = relay_view(plan(), [], public_figures([], [], {}, 5), local(date(2027, 10, 1)), TZ)
    feed = feeds.json_feed(early, BASE, "nl", identity, date.isoformat)
    assert feed["items"] == [] and feed["_relay"]["holder"] is None
    parsed = feedparser.parse(feeds.atom_feed(early, BASE, "nl", identity, date.isoformat))
    assert not parsed.bozo and parsed.entries == [] and parsed.feed.id and parsed.feed.updated


# --- Atom ---------------------------------------------------------------------------------------------
def parse_atom(lang: str = "en", relay: RelayView | None = None) -> feedparser.FeedParserDict:
    body = feeds.atom_feed(relay or view(), BASE, lang, lambda text: PAGES.catalogs.gettext(lang, text),
                           lambda d: format_date(d, lang))
    assert body.startswith(b"<?xml")
    parsed = feedparser.parse(body)
    assert parsed.bozo is False or parsed.bozo == 0, parsed.get("bozo_exception")
    return parsed


def test_the_atom_feed_is_well_formed_with_the_required_feed_elements():
    parsed = parse_atom()
    assert parsed.version == "atom10"
    assert parsed.feed.id == f"{feeds.FEED_ID}:en"
    assert parsed.feed.title and parsed.feed.updated and parsed.feed.updated_parsed
    assert parsed.feed.author == "Slimmer Werken Estafette"
    links = {link.rel: link.href for link in parsed.feed.links}
    assert links == {"alternate": f"{BASE}relay?lang=en", "self": f"{BASE}relay/feed.atom?lang=en"}
    # the feed's updated is its newest entry's
    assert parsed.feed.updated_parsed == max(e.updated_parsed for e in parsed.entries)


def test_the_atom_entries_are_the_days_so_far_newest_first_with_id_title_updated_link_and_text_content():
    parsed = parse_atom()
    assert [e.id for e in parsed.entries] == [f"{feeds.FEED_ID}:2027-11-0{n}" for n in (5, 4, 3, 2, 1)]
    for e in parsed.entries:
        assert e.title and e.updated and e.updated_parsed and e.link.startswith(f"{BASE}relay?lang=en#")
        assert e.content[0].type == "text/plain" and e.content[0].value
    by_id = {e.id.rsplit(":", 1)[1]: e for e in parsed.entries}
    assert "Hybrid meetings need a host & a <plan>" in by_id["2027-11-02"].content[0].value  # escaped, read back as is
    assert "Tom & Jerry's <b>open</b> day" in by_id["2027-11-05"].content[0].value
    assert not any("fb-no" in e.content[0].value for e in parsed.entries)
    assert "< 5" in by_id["2027-11-02"].content[0].value


def test_the_atom_feed_is_translated_and_each_language_is_a_feed_of_its_own():
    de, nl = parse_atom("de"), parse_atom("nl")
    assert de.feed.id != nl.feed.id
    assert de.feed.language == "de" and nl.feed.language == "nl"
    assert de.feed.title != parse_atom("en").feed.title  # "The relay" translated
    assert "Anmeldungen" in de.entries[0].content[0].value or "Anmeldung" in de.entries[0].content[0].value


# --- the dashboard feed's body ----------------------------------------------------------------------
def dashboard_figures(extra_day: int = 0):  # noqa: ANN201
    """Two regions: A's edition has 9 sign-ups (7 on Nov 1, 2 on Nov 2), B's 12 (+ extra_day on Nov 5)."""
    cells = [DayCell(A, ed(A), nov(1), signups=7), DayCell(A, ed(A), nov(2), signups=2),
             DayCell(B, ed(B), nov(4), signups=12, assigned=6)]
    if extra_day:
        cells.append(DayCell(B, ed(B), nov(5), signups=extra_day))
    editions = [b.figures(ed(A), A, signups=9, not_required=9),
                b.figures(ed(B), B, signups=12 + extra_day, not_required=12 + extra_day, assigned=6, first_choice=6)]
    return public_figures(editions, cells, {}, 5)


def numbers(body: object) -> list[tuple[str, object]]:
    """Every (field, value) of the counts of people anywhere in the body."""
    found: list[tuple[str, object]] = []
    if isinstance(body, dict):
        for key, value in body.items():
            if key in ("signups", "assigned", "feedback"):
                found.append((key, value))
            found += numbers(value)
    elif isinstance(body, list):
        for value in body:
            found += numbers(value)
    return found


def test_the_dashboard_body_never_carries_a_count_below_the_threshold():
    body = feeds.dashboard_body(dashboard_figures())
    assert body["threshold"] == 5
    assert set(body) == {"threshold", "national", "regions", "editions", "records"}
    counts = numbers(body)
    assert counts and all(v is None or v == 0 or v >= 5 for _, v in counts), counts
    records = {(r["edition"], r["day"]): r for r in body["records"]}
    assert all("updated_at" not in r for r in body["records"])
    small = records[(ed(A), "2027-11-02")]
    assert small["signups"] is None and "signups" in small["suppressed"] and small["threshold"] == 5
    assert records[(ed(B), "2027-11-04")]["signups"] == 12


def test_no_suppressed_count_of_the_dashboard_body_can_be_recovered_from_the_totals():
    body = feeds.dashboard_body(dashboard_figures())
    editions = {e["edition"]: e for e in body["editions"]}
    regions = {r["region"]: r for r in body["regions"]}
    groups: list[tuple[object, list[object]]] = []  # (total, parts): a total is the sum of its parts
    for name in ("signups", "assigned", "feedback"):
        for e in editions.values():
            groups.append((e[name], [r[name] for r in body["records"] if r["edition"] == e["edition"]]))
        for region, r in regions.items():
            groups.append((r[name], [e[name] for e in editions.values() if e["region"] == region]))
        groups.append((body["national"][name], [r[name] for r in regions.values()]))
    for total, parts in groups:
        if total is not None:  # a published total less its published parts gives a single suppressed part
            assert [p for p in parts if p is None] != [None], (total, parts)
    # and the attacker's best try on the small day fails: the edition's total minus the other day
    a = editions[ed(A)]["signups"]
    other = next(r["signups"] for r in body["records"] if (r["edition"], r["day"]) == (ed(A), "2027-11-01"))
    assert a is None or other is None


# --- the ETag -------------------------------------------------------------------------------------------
def test_the_etag_is_a_strong_hash_of_the_body_stable_and_moved_by_any_figure():
    first = feeds.encode(feeds.dashboard_body(dashboard_figures()))
    again = feeds.encode(feeds.dashboard_body(dashboard_figures()))
    changed = feeds.encode(feeds.dashboard_body(dashboard_figures(extra_day=6)))
    tag = feeds.etag(first)
    assert tag.startswith('"') and tag.endswith('"') and not tag.startswith("W/") and len(tag) > 10
    assert feeds.etag(again) == tag and feeds.etag(changed) != tag
    assert feeds.encode({"b": 1, "a": 2}) == feeds.encode({"a": 2, "b": 1})  # key order does not move it


async def test_the_dashboard_feed_endpoint_answers_304_for_its_etag_and_200_with_a_new_one_after_a_change():
    repo = FakeRepository()
    uow = FakeUnitOfWork(repo)
    await handle(uow, b.opened(ed(B), B), b.opened(ed(A), A))
    repo.figures[ed(B)] = b.figures(ed(B), B, signups=12, not_required=12)
    repo.cells = [DayCell(B, ed(B), nov(4), signups=12)]
    transport = httpx.ASGITransport(app=build_api(uow, TZ, None, threshold=5))
    async with httpx.AsyncClient(transport=transport, base_url="http://reporting") as client:
        first = await client.get("/feeds/dashboard")
        assert first.status_code == 200 and first.headers["content-type"].startswith("application/json")
        tag = first.headers["etag"]
        assert tag == feeds.etag(first.content)
        assert {e["edition"]: e["signups"] for e in first.json()["editions"]}[ed(B)] == 12
        not_modified = await client.get("/feeds/dashboard", headers={"If-None-Match": tag})
        assert (not_modified.status_code, not_modified.content, not_modified.headers["etag"]) == (304, b"", tag)
        listed = await client.get("/feeds/dashboard", headers={"If-None-Match": f'"other", {tag}'})
        assert listed.status_code == 304
        assert (await client.get("/feeds/dashboard", headers={"If-None-Match": '"other"'})).status_code == 200

        repo.figures[ed(B)] = b.figures(ed(B), B, signups=13, not_required=13)
        repo.cells = [DayCell(B, ed(B), nov(4), signups=13)]
        moved = await client.get("/feeds/dashboard", headers={"If-None-Match": tag})
        assert moved.status_code == 200 and moved.headers["etag"] != tag
        assert {e["edition"]: e["signups"] for e in moved.json()["editions"]}[ed(B)] == 13


# --- live updates -----------------------------------------------------------------------------------------
async def test_a_wake_up_publishes_the_changed_records_and_moves_the_generation_that_open_streams_hear():
    repo = FakeRepository()
    uow = FakeUnitOfWork(repo)
    await handle(uow, b.opened(ed(B), B))
    repo.figures[ed(B)] = b.figures(ed(B), B, signups=12, not_required=12)
    repo.cells = [DayCell(B, ed(B), nov(4), signups=12)]
    live = LiveDashboard(uow, Clock(fixed_now=datetime(2027, 11, 5, 12, tzinfo=UTC)), TZ, 5,
                         refresh_seconds=3600, watch_seconds=0.01)
    stopping = asyncio.Event()
    loops = [asyncio.create_task(live.refresh(stopping)), asyncio.create_task(live.watch(stopping))]
    try:
        async def until(check):  # noqa: ANN001, ANN202
            while not check():
                await asyncio.sleep(0.01)

        await asyncio.wait_for(until(lambda: live.generation == 1), 10)  # the first refresh at start
        first = [r for r in uow.raw if r[0] == "estafette.dashboard.v1"]
        assert [(key, kind) for _, key, kind, _ in first] == [(f"{B}:{ed(B)}:2027-11-04", "DashboardRecord")]
        assert json.loads(first[0][3])["signups"] == 12

        stream = live.changes()
        assert await anext(stream) == 1  # the generation at connect
        heard = asyncio.create_task(anext(stream))
        await asyncio.sleep(0.05)
        assert not heard.done()  # nothing changed: nothing heard

        # a new day of 6 sign-ups is committed: woken, the refresh publishes only the new record (not after
        # refresh_seconds, an hour)
        repo.figures[ed(B)] = b.figures(ed(B), B, signups=18, not_required=18)
        repo.cells = [DayCell(B, ed(B), nov(4), signups=12), DayCell(B, ed(B), nov(5), signups=6)]
        live.wake()
        assert await asyncio.wait_for(heard, 10) == 2
        records = [r for r in uow.raw if r[0] == "estafette.dashboard.v1"]
        assert [key for _, key, _, _ in records[len(first):]] == [f"{B}:{ed(B)}:2027-11-05"]

        # woken again without any change: nothing published, the generation stays
        live.wake()
        await asyncio.sleep(0.3)
        assert len([r for r in uow.raw if r[0] == "estafette.dashboard.v1"]) == len(records)
        assert live.generation == 2
    finally:
        stopping.set()
        await asyncio.wait_for(asyncio.gather(*loops), 10)


async def test_a_small_count_never_reaches_the_dashboard_topic():
    repo = FakeRepository()
    uow = FakeUnitOfWork(repo)
    await handle(uow, b.opened(ed(A), A))
    repo.figures[ed(A)] = b.figures(ed(A), A, signups=9, not_required=9)
    repo.cells = [DayCell(A, ed(A), nov(1), signups=7), DayCell(A, ed(A), nov(2), signups=2)]
    live = LiveDashboard(uow, Clock(fixed_now=datetime(2027, 11, 5, 12, tzinfo=UTC)), TZ, 5, refresh_seconds=3600)
    stopping = asyncio.Event()
    task = asyncio.create_task(live.refresh(stopping))
    try:
        async def published() -> list[dict]:
            while not uow.raw:
                await asyncio.sleep(0.01)
            return [json.loads(r[3]) for r in uow.raw]

        records = await asyncio.wait_for(published(), 10)
    finally:
        stopping.set()
        await asyncio.wait_for(task, 10)
    assert {r["day"]: (r["signups"], r["suppressed"]) for r in records} == {
        "2027-11-01": (None, ["signups"]), "2027-11-02": (None, ["signups"])}
    assert all(datetime.fromisoformat(r["updated_at"]) == datetime(2027, 11, 5, 12, tzinfo=UTC) for r in records)


async def test_without_a_wake_up_only_a_failed_refresh_is_tried_again_soon(monkeypatch):
    calls: list[str] = []

    async def refresh(*_args: object) -> int:
        calls.append("refresh")
        if len(calls) == 1:
            raise ConnectionRefusedError("the database is away")
        return 0

    monkeypatch.setattr("services.reporting.service.refresh_dashboard_feed", refresh)
    live = LiveDashboard(FakeUnitOfWork(FakeRepository()), Clock(fixed_now=datetime(2027, 11, 5, 12, tzinfo=UTC)), TZ, 5,
                         refresh_seconds=3600, retry_seconds=0.01)
    stopping = asyncio.Event()
    task = asyncio.create_task(live.refresh(stopping))
    try:
        async def until(count: int) -> None:
            while len(calls) < count:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(until(2), 10)  # the failed one, then retry_seconds later the next
        await asyncio.sleep(0.7)  # > the 0.5 s between refreshes: no third refresh without a wake-up
        assert len(calls) == 2
        live.wake()
        await asyncio.wait_for(until(3), 10)
    finally:
        stopping.set()
        await asyncio.wait_for(task, 10)


def test_the_rest_between_refreshes_is_four_times_a_refresh_within_a_quarter_second_and_a_second():
    # a cheap refresh (small figures): a change still waits at least REST_MIN for a burst to gather
    assert rest_seconds(0.001, 0.002) == REST_MIN == 0.25
    # four times the larger of CPU and wall time: busy at most a fifth of the time
    assert rest_seconds(0.05, 0.1) == 0.4
    assert rest_seconds(0.2, 0.1) == 0.8
    # a costly refresh (a national dataset, a loaded database): live pages still hear within a second
    assert rest_seconds(0.26, 0.9) == REST_MAX == 1.0
