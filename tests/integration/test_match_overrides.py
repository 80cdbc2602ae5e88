"""Match overrides, the dry-run preview and a run's explanations on the running matching service
(real Kafka, PostgreSQL, API keys). Offers a and b have one seat each; p1 (first) chose a, p2 chose a
then b: without overrides p1 gets a and p2 b."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from schemas import EditionOpened, OfferPublished, SignupSubmitted
from tests.support import Infra, ServiceProcess, eventually, services

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

RUN = uuid.uuid4().hex[:6]
EDITION = f"ovr-{RUN}"


@pytest.fixture(scope="module")
def matching(infra: Infra) -> Iterator[tuple[ServiceProcess, dict[str, dict[str, str]]]]:
    callers = infra.callers()
    with services(infra, "matching") as running:
        svc = running["matching"]
        now = datetime.now(UTC)
        infra.produce([
            EditionOpened(region="twente", edition=EDITION, name="Overrides", signup_deadline=datetime(2099, 1, 1, tzinfo=UTC),
                          starts_on=date(2099, 5, 1), ends_on=date(2099, 5, 5)),
            *[OfferPublished(region="twente", edition=EDITION, offer_id=f"{EDITION}-{o}", host_org="org-h", title=o,
                             date=date(2099, 5, 2), capacity=1) for o in ("a", "b")],
            SignupSubmitted(region="twente", edition=EDITION, signup_id=f"{EDITION}-p1", org="org-x", language="nl",
                            choices=[f"{EDITION}-a"], signed_up_at=now),
            SignupSubmitted(region="twente", edition=EDITION, signup_id=f"{EDITION}-p2", org="org-x", language="nl",
                            choices=[f"{EDITION}-a", f"{EDITION}-b"], signed_up_at=now + timedelta(seconds=1)),
        ])
        # the edition, its offers and its sign-ups come on three topics, each read by its own consumer
        eventually(lambda: {k: call(svc, "get", f"/editions/{EDITION}", callers["org A"]).json().get(k)
                            for k in ("offers", "participants")} == {"offers": 2, "participants": 2}, timeout=60)
        yield svc, callers


def call(svc: ServiceProcess, method: str, path: str, headers: dict[str, str], **kw: Any) -> httpx.Response:
    return httpx.request(method, f"{svc.url}{path}", headers=headers, timeout=30, **kw)


def test_a_pin_changes_the_run_is_audited_and_the_preview_writes_nothing(matching) -> None:
    svc, callers = matching
    org_a, org_b = callers["org A"], callers["org B"]
    p1, p2, a, b = f"{EDITION}-p1", f"{EDITION}-p2", f"{EDITION}-a", f"{EDITION}-b"

    assert call(svc, "post", f"/editions/{EDITION}/overrides", org_a,
                json={"signup_id": p1, "offer_id": b, "kind": "pin", "reason": "x"}).json()["error"] == "not_chosen"
    made = call(svc, "post", f"/editions/{EDITION}/overrides", org_a,
                json={"signup_id": p2, "offer_id": a, "kind": "pin", "reason": "needs the bakery"})
    assert made.status_code == 201, made.text
    override = made.json()
    assert (override["reason"], override["created_by"].startswith("key:")) == ("needs the bakery", True)
    assert call(svc, "get", f"/editions/{EDITION}/overrides", org_b).status_code == 404

    preview = call(svc, "post", f"/editions/{EDITION}/match-preview", org_a)
    assert preview.status_code == 200, preview.text
    shown = preview.json()
    assert {(p["signup_id"], p["offer_id"]) for p in shown["diff"]["newly_placed"]} == {(p2, a)}
    assert [o["signup_id"] for o in shown["diff"]["newly_waitlisted"]] == [p1]
    # The preview wrote nothing: no run, no assignment.
    assert call(svc, "get", f"/editions/{EDITION}/match-runs", org_a).json() == []
    assert call(svc, "get", f"/editions/{EDITION}/assignments", org_a).json()["assignments"] == []

    started = call(svc, "post", f"/editions/{EDITION}/match-runs", org_a)
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]
    eventually(lambda: call(svc, "get", f"/match-runs/{run_id}", org_a).json()["status"] == "done", timeout=60)
    placed = call(svc, "get", f"/editions/{EDITION}/assignments", org_a).json()["assignments"]
    assert {(x["signup_id"], x["offer_id"]) for x in placed} == {(p2, a)}  # without the pin: p1 on a, p2 on b

    why = call(svc, "get", f"/match-runs/{run_id}/explanations", org_a, params={"signup_id": p1}).json()
    assert [(e["code"], e["choices"][0]["reason"]) for e in why] == [("all_full", "full")]
    assert call(svc, "get", f"/match-runs/{run_id}/explanations", org_b).status_code == 404

    removed = call(svc, "delete", f"/editions/{EDITION}/overrides/{override['id']}", org_a).json()
    assert removed["removed_at"] is not None
    assert call(svc, "get", f"/editions/{EDITION}/overrides", org_a).json() == []
