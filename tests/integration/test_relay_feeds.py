"""The relay's public page and feeds, and the dashboard feed, on the real broker and database (issue 10,
the read side): relay events (a plan of three legs over three regions, starts, an early hand-over) and
knowledge items (approved, and one rejected) are produced; with a test clock inside the relay, the page
and both feeds show the route, who holds the baton, the day's activities and the approved items (never
the rejected one); the Atom feed parses back with feedparser (bozo false); the DASHBOARD topic never
carries a count below the threshold."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, date, datetime, timedelta

import feedparser
import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from schemas import (
    EditionOpened, Event, FeedbackSubmitted, KnowledgeItemApproved, KnowledgeItemRejected, RelayLegHandedOver,
    RelayLegPlanned, RelayLegStarted, SignupSubmitted,
)
from schemas.topics import DASHBOARD
from tests.support import Infra, TestClock, eventually, region, services

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

RUN = uuid.uuid4().hex[:6]
A, B, C = f"twente-{RUN}", f"salland-{RUN}", f"drenthe-{RUN}"
DAY1 = date(2027, 11, 1)


def ed(r: str) -> str:
    return f"wvdu-2027-{r}"


def env(r: str, at: datetime | None = None) -> dict[str, object]:
    return {"event_id": uuid.uuid4(), "occurred_at": at or datetime.now(UTC), "correlation_id": uuid.uuid4(),
            "region": r, "edition": ed(r)}


def relay_events() -> list[Event]:
    out: list[Event] = []
    for i, r in enumerate((A, B, C)):
        out.append(EditionOpened(**env(r), name=f"Week {r}", signup_deadline=datetime(2027, 10, 1, tzinfo=UTC),
                                 starts_on=DAY1, ends_on=DAY1 + timedelta(days=9)))
        out.append(RelayLegPlanned(**env(r), leg_id=f"leg-{RUN}-{i + 1}", position=i + 1,
                                   first_day=DAY1 + timedelta(days=3 * i), last_day=DAY1 + timedelta(days=3 * i + 2),
                                   activity=f"Activity {i + 1} in {r}"))
    approved_at = datetime(2027, 11, 2, 12, tzinfo=UTC)
    out += [
        KnowledgeItemApproved(**env(A), feedback_id=f"fb-{RUN}-ok", offer_id="o1", text="Hybrid meetings need a host",
                              approved_at=approved_at, offer_title="Visit", host_org="Gemeente"),
        KnowledgeItemRejected(**env(A), feedback_id=f"fb-{RUN}-no", reason="names a colleague"),
        RelayLegStarted(**env(A), leg_id=f"leg-{RUN}-1", starts_on=DAY1),
        # leg 1 hands over at its end; leg 2 hands over early (on its second day)
        RelayLegHandedOver(**env(A, datetime(2027, 11, 3, 22, tzinfo=UTC)), leg_id=f"leg-{RUN}-1", to_region=B,
                           to_leg_id=f"leg-{RUN}-2", knowledge_items=[f"fb-{RUN}-ok"]),
        RelayLegStarted(**env(B), leg_id=f"leg-{RUN}-2", starts_on=DAY1 + timedelta(days=3)),
        RelayLegHandedOver(**env(B, datetime(2027, 11, 5, 15, tzinfo=UTC)), leg_id=f"leg-{RUN}-2", to_region=C,
                           to_leg_id=f"leg-{RUN}-3", early=True),
        RelayLegStarted(**env(C), leg_id=f"leg-{RUN}-3", starts_on=DAY1 + timedelta(days=5)),
    ]
    # sign-ups on day 1 in A: 7 (shown), on day 2: 2 (suppressed; day 1 or the totals must be withheld too)
    for n, day in [(7, DAY1), (2, DAY1 + timedelta(days=1))]:
        for _ in range(n):
            out.append(SignupSubmitted(**env(A), signup_id=f"s-{uuid.uuid4().hex[:10]}", org="Org", choices=["o1"],
                                       signed_up_at=datetime(day.year, day.month, day.day, 10, tzinfo=UTC)))
    out.append(FeedbackSubmitted(**env(A), feedback_id=f"fb-{RUN}-ok", signup_id="s-x", offer_id="o1", rating=5,
                                 submitted_at=approved_at))
    return out


async def dashboard_records(infra: Infra, keys_prefix: str) -> dict[str, list[dict]]:
    consumer = AIOKafkaConsumer(DASHBOARD.name, **infra.kafka.client_kwargs(), auto_offset_reset="earliest",
                                group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        out: dict[str, dict] = {}
        batches = await consumer.getmany(timeout_ms=3000)
        for records in batches.values():
            for r in records:
                if r.key and r.key.decode().startswith(keys_prefix) and r.value:
                    out.setdefault(r.key.decode(), []).append(json.loads(r.value))
        return out
    finally:
        await consumer.stop()


def test_relay_page_feeds_and_dashboard_feed(infra: Infra):
    infra.add_regions(region(A), region(B), region(C))
    clock = TestClock(datetime(2027, 11, 5, 18, tzinfo=UTC))  # leg 3 holds the baton (leg 2 handed over early)
    with services(infra, "reporting", extra_env=clock.env) as running:
        url = running["reporting"].url
        # The country has one relay: once reporting has read other tests' legs (a marker leg of ours
        # shows), forget them, then play this test's relay.
        marker = f"leg-{RUN}-marker"
        infra.produce([RelayLegPlanned(**env(A), leg_id=marker, position=99, first_day=DAY1, last_day=DAY1)])
        eventually(lambda: marker in httpx.get(f"{url}/relay/feed.json").text, timeout=60)
        infra.reset_relay()
        infra.produce(relay_events())

        def page() -> str | None:
            # The legs, the hand-overs and the knowledge items come on topics of their own, read in any
            # order: the page is complete once it has the item and the last hand-over.
            text = httpx.get(f"{url}/relay", params={"lang": "en"}).text
            return text if "Hybrid meetings need a host" in text and f"<strong>{C}</strong> holds the baton" in text else None

        html = eventually(page, timeout=60)
        assert "Activity 3 in" in html and "Activity 1 in" in html and "(early)" in html
        assert "names a colleague" not in html and f"fb-{RUN}-no" not in html

        def json_feed() -> dict | None:
            f = httpx.get(f"{url}/relay/feed.json?lang=en").json()
            return f if any("Hybrid meetings" in i["content_text"] for i in f["items"]) else None

        feed = eventually(json_feed, timeout=30)
        assert feed["version"] == "https://jsonfeed.org/version/1.1"
        assert feed["_relay"]["holder"] == C
        assert [leg["region"] for leg in feed["_relay"]["route"]] == [A, B, C]
        assert [leg["state"] for leg in feed["_relay"]["route"]] == ["done", "done", "holding"]
        days = {i["_relay"]["day"]: i for i in feed["items"]}
        # day 2 (2 sign-ups) is "< 5"; day 1 (7) is withheld, or the edition's total (9) would give day 2 away
        assert days["2027-11-02"]["_relay"]["signups"] == "< 5"
        assert days["2027-11-01"]["_relay"]["signups"] == "withheld"
        assert days["2027-11-06"]["_relay"]["region"] == C if "2027-11-06" in days else True
        assert "2027-11-07" not in days  # ahead of the clock
        assert not any("names a colleague" in json.dumps(i) for i in feed["items"])

        atom = httpx.get(f"{url}/relay/feed.atom?lang=de")
        parsed = feedparser.parse(atom.content)
        assert parsed.bozo is False or parsed.bozo == 0, parsed.get("bozo_exception")
        assert parsed.feed.id and parsed.feed.title and parsed.feed.updated and parsed.feed.author
        assert all(e.id and e.title and e.updated for e in parsed.entries)
        assert any("Hybrid meetings need a host" in e.content[0].value for e in parsed.entries)

        body = httpx.get(f"{url}/feeds/dashboard")
        assert body.status_code == 200 and body.headers["ETag"]
        assert httpx.get(f"{url}/feeds/dashboard", headers={"If-None-Match": body.headers["ETag"]}).status_code == 304
        threshold = body.json()["threshold"]
        # the topic: every record of these regions; no count below the threshold, ever
        records = eventually(lambda: asyncio.run(dashboard_records(infra, A + ':')) or None, timeout=30)
        for versions in records.values():
            for r in versions:
                for name in ("signups", "assigned", "feedback"):
                    assert r[name] is None or r[name] == 0 or r[name] >= threshold, r
        day2 = records[f"{A}:{ed(A)}:2027-11-02"][-1]
        assert day2["signups"] is None and "signups" in day2["suppressed"]
        totals = {e["edition"]: e for e in body.json()["editions"]}
        day1 = records[f"{A}:{ed(A)}:2027-11-01"][-1]["signups"]
        # the attack: the edition's total minus the other day must not give the suppressed day
        assert totals[ed(A)]["signups"] is None or day1 is None
