"""Issue 10, the relay's write side on the real platform (registration as a process, real PostgreSQL and
Kafka, a test clock): the national coordinator plans three legs over three regions (an impossible order
is refused); organisers moderate their region's shareable feedback (KnowledgeItemApproved / Rejected on
the region's feedback topic; non-shareable feedback cannot be approved); the baton starts at each leg's
first day and moves at each leg's end exactly once, carrying the approved knowledge items; a region
hands over early; editions on impossible dates are refused.

The relay plan is national (one per platform): the test plans its legs after every leg already planned
(earlier runs against a kept database), in regions of its own."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from estafette.runtime.auth import Links
from schemas.topics import FEEDBACK, RELAY
from tests.integration.test_registration import records
from tests.support import LINK_SECRET, Infra, TestClock, eventually, region, services

pytestmark = pytest.mark.integration

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
RUN = uuid.uuid4().hex[:6]
REGIONS = [f"rl{RUN}-{x}" for x in ("a", "b", "c")]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def at(day: date, hour: int = 0, minute: int = 1) -> datetime:
    """A local time in the regions' time zone (Europe/Amsterdam)."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=AMSTERDAM)


@pytest.fixture(scope="module")
def clock() -> TestClock:
    return TestClock(datetime.now(UTC))


@pytest.fixture(scope="module")
def http(infra: Infra, clock: TestClock) -> Iterator[httpx.Client]:
    infra.add_regions(*(region(r, partitions=1) for r in REGIONS))
    infra.reset_relay()  # the country has one relay: other tests' legs are forgotten first
    # The default limits (the test harness allows far-future editions elsewhere).
    env = {**clock.env, "ESTAFETTE_SCHEDULER_POLL_SECONDS": "0.2", "REGISTRATION_MAX_YEARS_AHEAD": "5"}
    with services(infra, "registration", extra_env=env) as svc, httpx.Client(base_url=svc["registration"].url, timeout=10) as c:
        yield c


@pytest.fixture(scope="module")
def keys(infra: Infra) -> dict[str, dict[str, str]]:
    return {"national": bearer(infra.key("national")), "admin": bearer(infra.key("admin")),
            **{r: bearer(infra.key("organiser", r)) for r in REGIONS}}


def relay_events(infra: Infra, leg_ids: set[str]) -> list[dict]:
    """The events of these legs on the national relay topic, in order."""
    return [json.loads(v) for k, v in records(infra, RELAY.name) if k in leg_ids and v]


def feedback_events(infra: Infra, region_id: str, key: str) -> list[dict]:
    return [json.loads(v) for k, v in records(infra, FEEDBACK.name_in(region_id)) if k == key and v]


def test_impossible_dates_are_refused(http, keys, clock):
    clock.move_to(datetime(2027, 3, 1, 12, tzinfo=UTC))
    base = {"region": REGIONS[0], "name": "Impossible week", "languages": ["nl"]}
    cases = [("2099-05-01", "2099-05-03", "date_too_late"), ("0001-01-01", "0001-01-03", "date_too_early"),
             ("2025-12-01", "2025-12-03", "date_too_early"), ("2027-05-01", "2027-07-01", "edition_too_long")]
    for first, last, code in cases:
        body = {**base, "id": f"imp-{uuid.uuid4().hex[:8]}", "starts_on": first, "ends_on": last,
                "signup_deadline": f"{first}T00:00:00Z"}
        r = http.post("/editions", json=body, headers=keys["admin"])
        assert (r.status_code, r.json()["error"]) == (422, code), r.text
        assert http.get(f"/editions/{body['id']}").status_code == 404


def test_the_baton_moves_through_three_regions_once_carrying_the_approved_knowledge_items(infra, http, keys, clock):
    plan = http.get("/relay/legs").json()
    # After every leg planned before (a kept database), in the test clock's near future.
    start = max([date(2027, 11, 1), *(date.fromisoformat(x["last_day"]) + timedelta(days=30) for x in plan)])
    position = max([0, *(x["position"] for x in plan)])
    clock.move_to(at(start - timedelta(days=20), 12))
    days = [(start + timedelta(days=3 * i), start + timedelta(days=3 * i + 2)) for i in range(3)]
    legs = [f"leg-{RUN}-{n}" for n in (1, 2, 3)]
    edition_a = f"ed-{RUN}"

    # An edition of region A with three participants' feedback: two shareable, one not.
    r = http.post("/editions", headers=keys["admin"], json={
        "id": edition_a, "region": REGIONS[0], "name": "Relay week", "languages": ["nl"],
        "signup_deadline": at(start - timedelta(days=15)).isoformat(), "starts_on": str(start - timedelta(days=14)),
        "ends_on": str(start - timedelta(days=10))})
    assert r.status_code == 201, r.text
    r = http.post(f"/editions/{edition_a}/offers", headers=keys["admin"], json={
        "id": f"of-{RUN}", "host_org": "bakker-bart", "title": "Bakery", "date": str(start - timedelta(days=12)),
        "capacity": 5, "location": "Markt 1"})
    assert r.status_code == 201, r.text
    for n, (learned, share) in enumerate([("Anna learned sourdough", True), ("Call Bob on 0612345678", True),
                                          ("Private notes", False)]):
        r = http.post(f"/editions/{edition_a}/signups", json={
            "org": "gemeente", "name": f"Person {n}", "email": f"p{n}-{RUN}@example.org", "choices": [f"of-{RUN}"],
            "consent": True})
        assert r.status_code == 201, r.text
        token = Links(LINK_SECRET, clock).make("feedback", r.json()["signup_id"], edition_a, ref=f"of-{RUN}")
        form = {"rating": "5", "learned": learned, **({"share_publicly": "yes"} if share else {})}
        assert http.post(f"/links/feedback/{token}", data=form).status_code == 200
    pending = http.get(f"/editions/{edition_a}/knowledge-items", headers=keys[REGIONS[0]]).json()
    assert [x["learned"] for x in pending] == ["Anna learned sourdough", "Call Bob on 0612345678"]
    approved_id, rejected_id = pending[0]["feedback_id"], pending[1]["feedback_id"]

    # Moderation: approve with an edited text, reject with a reason, not-shareable feedback: 409.
    items = f"/editions/{edition_a}/knowledge-items"
    assert http.post(f"{items}/{approved_id}/approve", json={"text": "Someone learned sourdough"},
                     headers=keys[REGIONS[1]]).status_code == 404
    r = http.post(f"{items}/{approved_id}/approve", json={"text": "Someone learned sourdough"}, headers=keys[REGIONS[0]])
    assert (r.status_code, r.json()["status"]) == (200, "approved"), r.text
    assert http.post(f"{items}/{approved_id}/approve", headers=keys[REGIONS[0]]).status_code == 200  # again: nothing
    r = http.post(f"{items}/{rejected_id}/reject", json={"reason": "Contains a phone number"}, headers=keys[REGIONS[0]])
    assert (r.status_code, r.json()["status"]) == (200, "rejected"), r.text
    assert http.post(f"{items}/{rejected_id}/approve", headers=keys[REGIONS[0]]).json()["error"] == "already_moderated"
    private = http.get(f"{items}?status=pending", headers=keys[REGIONS[0]]).json()
    assert private == []
    approved = eventually(lambda: feedback_events(infra, REGIONS[0], approved_id)[1:], timeout=30)
    assert [(e["event_type"], e["text"], e["offer_title"], e["host_org"]) for e in approved] == [
        ("KnowledgeItemApproved", "Someone learned sourdough", "Bakery", "bakker-bart")]
    assert not {"name", "email", "signup_id"} & set(approved[0])
    rejected = eventually(lambda: feedback_events(infra, REGIONS[0], rejected_id)[1:], timeout=30)
    assert [(e["event_type"], e["reason"]) for e in rejected] == [("KnowledgeItemRejected", "Contains a phone number")]

    # The plan: three legs over three regions; an overlap and an organiser are refused.
    for n, (leg_id, region_id, (first, last)) in enumerate(zip(legs, REGIONS, days, strict=True)):
        body = {"region": region_id, "edition": f"relay-{RUN}", "first_day": str(first), "last_day": str(last),
                "activity": f"Visits in {region_id}", "position": position + n + 1, "allow_gap": n == 0}
        assert http.put(f"/relay/legs/{leg_id}", json=body, headers=keys[region_id]).status_code == 403
        r = http.put(f"/relay/legs/{leg_id}", json=body, headers=keys["national"])
        assert r.status_code == 200, r.text
    overlap = {"region": REGIONS[0], "edition": f"relay-{RUN}", "first_day": str(days[2][1]), "last_day": str(days[2][1] + timedelta(days=1)),
               "position": position + 4}
    r = http.put(f"/relay/legs/leg-{RUN}-x", json=overlap, headers=keys["national"])
    assert (r.status_code, r.json()["error"]) == (422, "relay_overlap") and legs[2] in r.json()["message"], r.text
    mine = [x for x in http.get("/relay/legs").json() if x["id"] in legs]
    assert [(x["id"], x["status"]) for x in mine] == [(leg, "planned") for leg in legs]

    def events(count: int) -> list[tuple] | None:
        """The relay events of the test's legs, once there are at least `count` (else None)."""
        found = relay_events(infra, set(legs))
        return [(e["event_type"], e["leg_id"], e.get("to_leg_id"), e.get("early")) for e in found] if len(found) >= count else None

    planned = eventually(lambda: events(3), timeout=30)
    assert planned == [("RelayLegPlanned", leg, None, None) for leg in legs]

    # The first day of leg 1 begins: it starts. Its last day ends: the baton goes to leg 2.
    clock.move_to(at(days[0][0]))
    assert eventually(lambda: events(4), timeout=30)[3] == ("RelayLegStarted", legs[0], None, None)
    assert http.put(f"/relay/legs/{legs[0]}", json={**body, "region": REGIONS[0], "position": position + 1},
                    headers=keys["national"]).status_code == 409  # started: not re-planned
    clock.move_to(at(days[0][1] + timedelta(days=1)))
    assert eventually(lambda: events(6), timeout=30)[4:] == [
        ("RelayLegHandedOver", legs[0], legs[1], False), ("RelayLegStarted", legs[1], None, None)]
    handed = relay_events(infra, {legs[0]})[-1]
    assert (handed["region"], handed["to_region"], handed["knowledge_items"]) == (REGIONS[0], REGIONS[1], [approved_id])

    # Region B hands over early (region A's organiser may not, and not twice): leg 3 starts now.
    assert http.post(f"/relay/legs/{legs[1]}/handover", headers=keys[REGIONS[0]]).status_code == 403
    r = http.post(f"/relay/legs/{legs[1]}/handover", headers=keys[REGIONS[1]])
    assert (r.status_code, r.json()["early"]) == (200, True), r.text
    assert http.post(f"/relay/legs/{legs[1]}/handover", headers=keys[REGIONS[1]]).status_code == 409
    assert eventually(lambda: events(8), timeout=30)[6:] == [
        ("RelayLegHandedOver", legs[1], legs[2], True), ("RelayLegStarted", legs[2], None, None)]

    # Leg 2's scheduled hand-over and leg 3's scheduled start pass by; leg 3 ends: the relay is over.
    clock.move_to(at(days[2][1] + timedelta(days=1)))
    final = eventually(lambda: events(9), timeout=30)
    assert final[8] == ("RelayLegHandedOver", legs[2], None, False)
    assert [x for x in final if x[0] == "RelayLegStarted"] == [("RelayLegStarted", leg, None, None) for leg in legs]
    assert [x[1] for x in final if x[0] == "RelayLegHandedOver"] == legs  # each leg once
    assert [x["status"] for x in http.get("/relay/legs").json() if x["id"] in legs] == ["handed_over"] * 3
    assert relay_events(infra, {legs[1]})[-1]["knowledge_items"] == []
