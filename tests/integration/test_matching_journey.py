"""Matching's part of the journey (issue 9) on the real broker and database, matching as a process: the
edition, offers and sign-ups are published on twente's topics as registration publishes them.

- A sign-up waiting for its employer's approval is not matched; approved, it is matched by the re-match.
- A cancelled edition refuses runs (409 `edition_cancelled`), and a withdrawal after the cancellation
  does not make the re-match loop run it (while it does re-match an open edition meanwhile).
- More seats on an offer (OfferChanged) re-match it: the waiting person gets the seat (a seat offer,
  which the organiser accepts on their behalf), and the events show the changed offer.
- `match_at_deadline`: with a test clock moved past the sign-up deadline, the run happens by itself,
  exactly once, also across restarts of matching (the step was scheduled by one process, run by the
  next, and a third one runs nothing again).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from schemas import (
    EditionCancelled,
    EditionOpened,
    Event,
    OfferChanged,
    OfferPublished,
    SignupApproved,
    SignupSubmitted,
    SignupWithdrawn,
    decode_event,
)
from schemas.topics import MATCHES
from tests.support import Infra, ServiceProcess, TestClock, eventually, services

pytestmark = pytest.mark.integration

REGION = "twente"
ENV = {"MATCHING_REMATCH_DEBOUNCE_SECONDS": "0.3", "MATCHING_REMATCH_POLL_SECONDS": "0.2", "ESTAFETTE_SCHEDULER_POLL_SECONDS": "0.2"}
VISIT = date(2099, 5, 2)


@pytest.fixture(scope="module")
def admin(infra: Infra) -> Iterator[httpx.Client]:
    with httpx.Client(headers={"Authorization": f"Bearer {infra.key('admin')}"}, timeout=10) as client:
        yield client


def _edition(edition: str, capacity: int = 1, deadline: datetime = datetime(2099, 1, 1, tzinfo=UTC), **extra) -> list[Event]:
    return [
        EditionOpened(region=REGION, edition=edition, name="Journey", signup_deadline=deadline,
                      starts_on=date(2099, 5, 1), ends_on=date(2099, 5, 5), **extra),
        OfferPublished(region=REGION, edition=edition, offer_id=f"{edition}-o", host_org="org-h", title="Bakkerij",
                       date=VISIT, capacity=capacity, location="Enschede"),
    ]


def _signup(edition: str, i: int, approval: str = "not_required") -> SignupSubmitted:
    return SignupSubmitted(region=REGION, edition=edition, signup_id=f"{edition}-p{i}", org="org-x",
                           choices=[f"{edition}-o"], signed_up_at=datetime(2099, 1, 1, tzinfo=UTC) - timedelta(days=9 - i),
                           approval=approval)


def _overview(http: httpx.Client, url: str, edition: str) -> dict:
    r = http.get(f"{url}/editions/{edition}")
    return r.json() if r.status_code == 200 else {}


def _received(http: httpx.Client, url: str, edition: str, **expected: object) -> dict:
    """Wait until matching's view of the edition shows `expected` (what it has consumed so far)."""
    return eventually(lambda: (o := _overview(http, url, edition)) and all(o.get(k) == v for k, v in expected.items()) and o,
                      timeout=60)


def _runs(http: httpx.Client, url: str, edition: str) -> list[dict]:
    return http.get(f"{url}/editions/{edition}/match-runs").json()


def _finished_runs(http: httpx.Client, url: str, edition: str, count: int) -> list[dict]:
    """Wait until `count` runs of the edition finished (none queued or running); all of them done."""
    def finished() -> list[dict] | None:
        runs = _runs(http, url, edition)
        return runs if len(runs) == count and all(r["status"] not in ("queued", "running") for r in runs) else None

    runs = eventually(finished, timeout=60)
    assert [r["status"] for r in runs] == ["done"] * count, runs
    return runs


def _assigned(http: httpx.Client, url: str, edition: str) -> set[str]:
    return {a["signup_id"] for a in http.get(f"{url}/editions/{edition}/assignments").json()["assignments"]}


async def _match_events(infra: Infra, signups: set[str], until: set[tuple[str, str]], timeout: float = 20) -> list[Event]:
    """Events about `signups` on twente's match topic, read from the start until every (type, sign-up)
    in `until` was seen (or the guard runs out)."""
    consumer = AIOKafkaConsumer(MATCHES.name_in(REGION), **infra.kafka.client_kwargs(), auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    events: list[Event] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline and not until <= {(e.event_type, e.signup_id) for e in events}:
            for msgs in (await consumer.getmany(timeout_ms=500)).values():
                events += [decode_event(m.value) for m in msgs if m.key.decode() in signups]
        return events
    finally:
        await consumer.stop()


def test_a_pending_signup_is_not_matched_until_it_is_approved(infra: Infra, admin: httpx.Client) -> None:
    edition = f"ap-{uuid.uuid4().hex[:8]}"
    p0, p1 = f"{edition}-p0", f"{edition}-p1"
    with services(infra, "matching", extra_env=ENV) as svc:
        url = svc["matching"].url
        infra.produce([
            *_edition(edition, capacity=2, requires_approval=True), _signup(edition, 0, "pending"), _signup(edition, 1, "pending"),
            SignupApproved(region=REGION, edition=edition, signup_id=p1),
        ])
        _received(admin, url, edition, offers=1, participants=1, awaiting_approval=1)

        assert admin.post(f"{url}/editions/{edition}/match-runs").status_code == 202
        [first] = _finished_runs(admin, url, edition, 1)
        assert (first["participants"], first["assigned"]) == (1, 1)
        assert _assigned(admin, url, edition) == {p1}
        waiting = admin.get(f"{url}/editions/{edition}/assignments").json()["waiting_list"]
        assert p0 not in {w["signup_id"] for w in waiting}  # not matched: not even on the waiting list

        infra.produce([SignupApproved(region=REGION, edition=edition, signup_id=p0)])
        _finished_runs(admin, url, edition, 2)  # the re-match: the edition was published
        assert _assigned(admin, url, edition) == {p0, p1}
        events = asyncio.run(_match_events(infra, {p0, p1}, {("MatchAssigned", p0), ("MatchAssigned", p1)}))
        assert sorted((e.event_type, e.signup_id) for e in events) == [("MatchAssigned", p0), ("MatchAssigned", p1)]
        runs = {r["id"]: r for r in _runs(admin, url, edition)}
        assert [e.run_id for e in events if e.signup_id == p0] != [e.run_id for e in events if e.signup_id == p1]
        assert all(str(e.run_id) in runs for e in events)


def test_a_cancelled_edition_refuses_runs_and_is_not_rematched_after_a_withdrawal(infra: Infra, admin: httpx.Client) -> None:
    cancelled, sentinel = f"cx-{uuid.uuid4().hex[:8]}", f"op-{uuid.uuid4().hex[:8]}"
    with services(infra, "matching", extra_env=ENV) as svc:
        url = svc["matching"].url
        for edition in (cancelled, sentinel):
            infra.produce([*_edition(edition), _signup(edition, 0), _signup(edition, 1)])
            _received(admin, url, edition, offers=1, participants=2)
            assert admin.post(f"{url}/editions/{edition}/match-runs").status_code == 202
            _finished_runs(admin, url, edition, 1)
            assert _assigned(admin, url, edition) == {f"{edition}-p0"}

        infra.produce([EditionCancelled(region=REGION, edition=cancelled, reason="Corona")])
        _received(admin, url, cancelled, status="cancelled")
        refused = admin.post(f"{url}/editions/{cancelled}/match-runs")
        assert refused.status_code == 409 and refused.json()["error"] == "edition_cancelled", refused.text

        # p0 withdraws from the cancelled edition: the seat is freed, but nothing is marked for re-match.
        infra.produce([SignupWithdrawn(region=REGION, edition=cancelled, signup_id=f"{cancelled}-p0")])
        after = _received(admin, url, cancelled, participants=1)
        assert (after["rematch_pending"], after["assignments"]) == (False, 0)
        # The same in the open edition, afterwards: the loop re-matches it (its waiting person gets a seat
        # offer) and, in the same rounds, would have found the cancelled one first (marked earlier).
        infra.produce([SignupWithdrawn(region=REGION, edition=sentinel, signup_id=f"{sentinel}-p0")])
        _finished_runs(admin, url, sentinel, 2)
        assert _received(admin, url, sentinel, seat_offers_open=1)
        assert len(_runs(admin, url, cancelled)) == 1
        assert _overview(admin, url, cancelled)["rematch_pending"] is False


def test_more_seats_on_an_offer_rematch_and_the_waiting_person_gets_one(infra: Infra, admin: httpx.Client) -> None:
    edition = f"oc-{uuid.uuid4().hex[:8]}"
    p0, p1, offer_id = f"{edition}-p0", f"{edition}-p1", f"{edition}-o"
    with services(infra, "matching", extra_env=ENV) as svc:
        url = svc["matching"].url
        infra.produce([*_edition(edition), _signup(edition, 0), _signup(edition, 1)])
        _received(admin, url, edition, offers=1, participants=2)
        assert admin.post(f"{url}/editions/{edition}/match-runs").status_code == 202
        _finished_runs(admin, url, edition, 1)
        assert _assigned(admin, url, edition) == {p0}

        infra.produce([OfferChanged(region=REGION, edition=edition, offer_id=offer_id, host_org="org-h",
                                    title="Bakkerij (nieuw)", date=VISIT, capacity=2, location="Hengelo", sequence=1,
                                    changed=["title", "capacity", "location"])])
        [second, _] = _finished_runs(admin, url, edition, 2)
        assert (second["kind"], second["newly_offered"]) == ("incremental", 1)
        accepted = admin.post(f"{url}/editions/{edition}/seat-offers/{p1}/accept")
        assert accepted.status_code == 200 and accepted.json()["state"] == "accepted", accepted.text
        assert _assigned(admin, url, edition) == {p0, p1}
        assert _overview(admin, url, edition)["seats"] == 2

        events = asyncio.run(_match_events(infra, {p0, p1}, {("SeatOffered", p1), ("MatchAssigned", p1)}))
        [offered] = [e for e in events if e.event_type == "SeatOffered"]
        assert (offered.signup_id, offered.offer.title, offered.offer.location) == (p1, "Bakkerij (nieuw)", "Hengelo")
        assert {e.signup_id: e.offer.title for e in events if e.event_type == "MatchAssigned"} == {
            p0: "Bakkerij", p1: "Bakkerij (nieuw)"}  # before and after the change


def test_the_run_at_the_signup_deadline_happens_by_itself_once_across_restarts(infra: Infra, admin: httpx.Client) -> None:
    start = datetime.now(UTC)
    clock = TestClock(start)
    edition, sentinel = f"dl-{uuid.uuid4().hex[:8]}", f"dl-{uuid.uuid4().hex[:8]}"
    deadline = start + timedelta(days=10)

    def instance() -> ServiceProcess:
        return ServiceProcess(infra, "matching", {**ENV, **clock.env})

    first = instance().start()
    try:
        url = first.url
        infra.produce([*_edition(edition, deadline=deadline, match_at_deadline=True), _signup(edition, 0), _signup(edition, 1)])
        assert _received(admin, url, edition, participants=2, offers=1)["match_at_deadline"] is True
        assert _runs(admin, url, edition) == []  # before the deadline: nothing
    finally:
        first.stop()

    # While no matching runs, the deadline passes; the next process runs the step the first one scheduled.
    clock.move_to(deadline + timedelta(minutes=1))
    second = instance().start()
    try:
        [run] = _finished_runs(admin, url, edition, 1)
        assert (run["assigned"], run["waitlisted"]) == (1, 1)
        assert _assigned(admin, url, edition) == {f"{edition}-p0"}
    finally:
        second.stop()

    # A third process: the step is done, so no second run. The sentinel edition's own deadline run (a
    # later step) shows that this process's scheduler has polled since.
    third = instance().start()
    try:
        later = clock.now() + timedelta(days=1)
        infra.produce([*_edition(sentinel, deadline=later, match_at_deadline=True), _signup(sentinel, 0)])
        _received(admin, url, sentinel, participants=1, offers=1)
        clock.move_to(later + timedelta(minutes=1))
        _finished_runs(admin, url, sentinel, 1)
        assert len(_runs(admin, url, edition)) == 1
    finally:
        third.stop()
