"""Issue 10 over HTTP in process (fake unit of work, fixed clock): who may plan the relay, hand the baton
over and moderate knowledge items; refusals answer with their codes, naming the field; impossible dates."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client import CollectorRegistry

from estafette.runtime.auth import Links
from estafette.runtime.clock import Clock
from schemas import KnowledgeItemApproved, KnowledgeItemRejected, RelayLegHandedOver, RelayLegPlanned
from services.registration import service
from services.registration.api import RegistrationMetrics, build_api
from services.registration.config import RegistrationSettings
from tests.unit.fakes import FakeAuthenticator
from tests.unit.registration.builders import ADMIN, EDITION_ID, NATIONAL, NOW, ORGANISER, OTHER_ORGANISER, edition, offer, signup
from tests.unit.registration.fakes import FakeRegistrationUow
from tests.unit.registration.test_relay import REGIONS, A, B, feedback, local, repo
from tests.unit.registration.relay_fakes import relay_uow

KEYS = {"key-a": ORGANISER, "key-b": OTHER_ORGANISER, "key-n": NATIONAL, "key-admin": ADMIN}
LEG = {"region": "twente", "edition": "twente-2027", "first_day": "2027-11-01", "last_day": "2027-11-03",
       "activity": "Bakery tour", "position": 1}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def uow() -> FakeRegistrationUow:
    uow = relay_uow((edition(),), (offer("o1"),), (signup("s1"), signup("s2", email="b@example.org")))
    repo(uow).feedback_rows[("s1", "o1")] = feedback("f1", "s1")
    repo(uow).feedback_rows[("s2", "o1")] = feedback("f2", "s2", share=False)
    return uow


@pytest.fixture
def clock() -> Clock:
    return Clock(fixed_now=NOW)


@pytest.fixture
async def client(uow, clock):  # noqa: ANN001, ANN201
    config = RegistrationSettings(public_url="https://estafette.example")
    api = build_api(uow, RegistrationMetrics(CollectorRegistry()), Links("secret", clock), config, REGIONS, clock=clock)  # type: ignore[arg-type]
    api.state.auth = FakeAuthenticator(KEYS)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://registration") as c:
        yield c


@pytest.mark.parametrize(("headers", "status"), [({}, 401), (bearer("key-a"), 403), (bearer("key-n"), 200), (bearer("key-admin"), 200)])
async def test_the_national_coordinator_or_an_admin_plans_the_relay_and_everyone_reads_it(client, uow, headers, status):
    r = await client.put("/relay/legs/leg-a", json=LEG, headers=headers)
    assert r.status_code == status, r.text
    assert len(uow.of_type(RelayLegPlanned)) == (1 if status == 200 else 0)
    listed = await client.get("/relay/legs")
    assert listed.status_code == 200
    assert [(x["id"], x["status"], x["timezone"]) for x in listed.json()] == (
        [("leg-a", "planned", "Europe/Amsterdam")] if status == 200 else [])


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [({"first_day": "2027-11-05", "last_day": "2027-11-06"}, "relay_gap", "first_day"),
     ({"first_day": "2027-11-03"}, "relay_overlap", "first_day"),
     ({"position": 1}, "relay_position_taken", "position"),
     ({"first_day": "2099-11-03", "last_day": "2099-11-04"}, "date_too_late", "first_day"),
     ({"region": "nowhere"}, "unknown_region", "region")],
)
async def test_an_impossible_plan_is_a_422_with_its_code(client, uow, changes, code, field):
    assert (await client.put("/relay/legs/leg-a", json=LEG, headers=bearer("key-n"))).status_code == 200
    body = {**LEG, "region": "groningen", "first_day": "2027-11-04", "last_day": "2027-11-06", "position": 2, **changes}
    r = await client.put("/relay/legs/leg-b", json=body, headers=bearer("key-n"))
    assert (r.status_code, r.json()["error"], r.json()["field"]) == (422, code, field)
    assert (await client.put("/relay/legs/leg-b", json={**body, "allow_gap": True, "bogus": 1}, headers=bearer("key-n"))).status_code == 422


async def test_the_holding_regions_organiser_hands_over_early(client, uow, clock):
    repo(uow).leg_rows.update({"leg-a": A, "leg-b": B})
    async with uow.transaction() as tx:
        await service.relay_leg_start(tx, "leg-a", now=local(1))
    for key, status in [("key-n", 403), ("key-b", 403), ("key-a", 200), ("key-a", 409)]:
        r = await client.post("/relay/legs/leg-a/handover", headers=bearer(key))
        assert r.status_code == status, r.text
    [event] = uow.of_type(RelayLegHandedOver)
    assert (event.early, event.to_leg_id) == (True, "leg-b")
    assert (await client.post("/relay/legs/nope/handover", headers=bearer("key-admin"))).status_code == 404


async def test_knowledge_items_are_moderated_by_the_regions_organiser(client, uow):
    base = f"/editions/{EDITION_ID}/knowledge-items"
    assert (await client.get(base, headers=bearer("key-n"))).status_code == 403
    assert (await client.get(base, headers=bearer("key-b"))).status_code == 404
    r = await client.get(base, headers=bearer("key-a"))
    assert [x["feedback_id"] for x in r.json()] == ["f1"] and "name" not in r.json()[0]
    assert (await client.post(f"{base}/f2/approve", headers=bearer("key-a"))).status_code == 409
    r = await client.post(f"{base}/f1/approve", json={"text": "Bread takes time"}, headers=bearer("key-a"))
    assert (r.status_code, r.json()["status"], r.json()["text"]) == (200, "approved", "Bread takes time")
    assert (await client.post(f"{base}/f1/reject", json={"reason": "x"}, headers=bearer("key-a"))).json()["error"] == "already_moderated"
    assert [x["feedback_id"] for x in (await client.get(f"{base}?status=approved", headers=bearer("key-a"))).json()] == ["f1"]
    assert (await client.get(f"{base}?status=bogus", headers=bearer("key-a"))).status_code == 422
    assert (await client.post(f"{base}/f1/reject", json={}, headers=bearer("key-a"))).status_code == 422
    assert len(uow.of_type(KnowledgeItemApproved)) == 1 and uow.of_type(KnowledgeItemRejected) == []


async def test_an_edition_too_far_ahead_or_too_long_is_refused(client, uow):
    base = {"id": "e-new", "region": "twente", "name": "Week"}
    for days, code in [(("2032-05-01", "2032-05-02"), "date_too_late"), (("2027-05-01", "2027-06-30"), "edition_too_long"),
                       (("2026-03-01", "2026-03-02"), "date_too_early")]:
        body = {**base, "starts_on": days[0], "ends_on": days[1], "signup_deadline": f"{days[0]}T00:00:00Z"}
        r = await client.post("/editions", json=body, headers=bearer("key-a"))
        assert (r.status_code, r.json()["error"]) == (422, code), r.text
    assert uow.published == []
