"""The matching service on the real broker and database: a run, then an offer cancelled after
publication, re-matched incrementally (frozen assignments untouched, displaced people first). The
organiser's calls carry an admin API key (`Authorization: Bearer`); sign-ups are public."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Iterator

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from schemas import decode_event
from schemas.topics import MATCHES
from tests.support import Infra, eventually, services

pytestmark = pytest.mark.integration

# host organisation, capacity per offer; participants: (org, choices) in sign-up order.
# The optimum of the first run places 5: A = {p2, p0 or p1}, B = {p5, the other of p0/p1}, C = {p3};
# p4 waits, one seat on B stays free. Cancelling A displaces two people; a late sign-up (p6) wants
# that free seat on B too, but a displaced person must get it first.
OFFERS = {"A": ("org-h1", 2), "B": ("org-h2", 3), "C": ("org-h3", 1)}
PEOPLE = [
    ("org-x", ["A", "B"]),
    ("org-y", ["A", "B"]),
    ("org-x", ["A", "C"]),
    ("org-y", ["C"]),
    ("org-x", ["C"]),
    ("org-y", ["B"]),
]
LATE = ("org-y", ["B"])


@pytest.fixture(scope="module")
def admin(infra: Infra) -> Iterator[httpx.Client]:
    """An HTTP client that sends an admin API key."""
    with httpx.Client(headers={"Authorization": f"Bearer {infra.key('admin')}"}, timeout=10) as client:
        yield client


def _signup(reg: str, edition: str, i: int, org: str, picks: list[str]) -> tuple[str, list[str]]:
    """A sign-up: public, no credentials."""
    body = {"org": org, "name": f"P{i}", "email": f"p{i}-{edition}@example.org", "choices": [f"{edition}-{c}" for c in picks]}
    r = httpx.post(f"{reg}/editions/{edition}/signups", json=body, timeout=10)
    assert r.status_code == 201, r.text
    return r.json()["signup_id"], body["choices"]


def _post(http: httpx.Client, url: str, body: dict) -> dict:
    r = http.post(url, json=body, timeout=10)
    assert r.status_code == 201, r.text
    return r.json()


def wait_until_received(http: httpx.Client, matching: str, edition: str, offers: int, participants: int) -> None:
    def received() -> bool:
        r = http.get(f"{matching}/editions/{edition}")
        return r.status_code == 200 and (r.json()["offers"], r.json()["participants"]) == (offers, participants)

    eventually(received, timeout=60)


def _finished_run(http: httpx.Client, matching: str, edition: str, count: int) -> dict:
    def done() -> dict | None:
        runs = http.get(f"{matching}/editions/{edition}/match-runs").json()
        finished = [r for r in runs if r["status"] != "running"]
        return finished[0] if len(finished) >= count else None

    run = eventually(done, timeout=60)
    assert run["status"] == "done", run
    return run


def _best_remaining(free: dict[str, int], waiting: list[tuple[str, list[str]]], priority: set[str]) -> tuple[int, int, int]:
    """Brute force: (priority placed, placed, -rank cost) maximised over every way to seat the waiting people."""
    best = (0, 0, 0)
    options = [[None] + [o for o in choices if free.get(o, 0) > 0] for _, choices in waiting]
    for pick in itertools.product(*options):
        used = {o: pick.count(o) for o in free}
        if any(used[o] > free[o] for o in free):
            continue
        placed = [(sid, o, choices.index(o) + 1) for (sid, choices), o in zip(waiting, pick, strict=True) if o]
        score = (sum(1 for sid, _, _ in placed if sid in priority), len(placed), -sum(r * r for _, _, r in placed))
        best = max(best, score)
    return best


async def _match_events(bootstrap: str, signups: set[str]) -> list:
    consumer = AIOKafkaConsumer(MATCHES.name, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    try:
        events = []
        for _ in range(5):
            for msgs in (await consumer.getmany(timeout_ms=1000)).values():
                events += [decode_event(m.value) for m in msgs if m.key.decode() in signups]
        return events
    finally:
        await consumer.stop()


def test_run_then_cancelled_offer_rematches_only_what_is_free(infra: Infra, admin: httpx.Client) -> None:
    edition = f"im-{uuid.uuid4().hex[:8]}"
    # A generous debounce, so that the late sign-up and the cancellation land in one re-match.
    with services(infra, "registration", "matching", extra_env={"MATCHING_REMATCH_DEBOUNCE_SECONDS": "4"}) as svc:
        reg, matching = svc["registration"].url, svc["matching"].url
        _post(admin, f"{reg}/editions", {"id": edition, "region": "twente", "name": "Incremental", "signup_deadline": "2099-01-01T00:00:00Z", "starts_on": "2099-05-01", "ends_on": "2099-05-05"})
        for name, (host, cap) in OFFERS.items():
            _post(admin, f"{reg}/editions/{edition}/offers", {"id": f"{edition}-{name}", "host_org": host, "title": f"Offer {name}", "date": "2099-05-02", "capacity": cap})
        ids, choices = [], {}
        for i, (org, picks) in enumerate(PEOPLE):
            sid, choices[sid] = _signup(reg, edition, i, org, picks)
            ids.append(sid)

        # Matching learns about the edition through Kafka; once it has everything, the organiser runs it.
        wait_until_received(admin, matching, edition, offers=len(OFFERS), participants=len(PEOPLE))
        assert admin.post(f"{matching}/editions/{edition}/match-runs").status_code == 202
        first = _finished_run(admin, matching, edition, 1)
        assert first["assigned"] == 5 and first["kind"] == "full"  # 5 seats, 6 people who all could use them
        before = {a["signup_id"]: a for a in admin.get(f"{matching}/editions/{edition}/assignments").json()["assignments"]}
        assert len(before) == 5

        # A late sign-up arrives, and the host of A cancels after publication.
        late, choices[late] = _signup(reg, edition, len(PEOPLE), *LATE)
        ids.append(late)
        cancelled = f"{edition}-A"
        assert admin.delete(f"{reg}/editions/{edition}/offers/{cancelled}").status_code == 204
        second = _finished_run(admin, matching, edition, 2)
        assert second["kind"] == "incremental"
        after = {a["signup_id"]: a for a in admin.get(f"{matching}/editions/{edition}/assignments").json()["assignments"]}

        # Frozen: every assignment not on A is exactly as it was (same offer, same run).
        kept = {sid: a for sid, a in before.items() if a["offer_id"] != cancelled}
        assert {sid: after[sid] for sid in kept} == kept
        displaced = {sid for sid, a in before.items() if a["offer_id"] == cancelled}
        assert len(displaced) == 2, "the scenario must displace two people"
        assert any(sid in displaced for sid in after), "a displaced person takes the free seat on B"
        assert late not in after
        # Optimal for the remaining problem: free seats among the people without an assignment.
        free = {f"{edition}-{name}": cap for name, (_, cap) in OFFERS.items() if name != "A"}
        for a in kept.values():
            free[a["offer_id"]] -= 1
        waiting = [(sid, choices[sid]) for sid in ids if sid not in kept]
        new = {sid: a for sid, a in after.items() if sid not in kept}
        got = (sum(1 for s in new if s in displaced), len(new), -sum(a["rank"] ** 2 for a in new.values()))
        assert got == _best_remaining(free, waiting, displaced)
        assert all(a["offer_id"] != cancelled for a in after.values())

        # Events: one MatchAssigned per assignment ever published, no assignment announced twice.
        events = asyncio.run(_match_events(infra.kafka_bootstrap, set(ids)))
        assigned = [(e.signup_id, e.offer.offer_id) for e in events if e.event_type == "MatchAssigned"]
        assert len(assigned) == len(set(assigned))
        assert set(assigned) == {(s, a["offer_id"]) for s, a in before.items()} | {(s, a["offer_id"]) for s, a in after.items()}
        unplaced = set(ids) - set(after)
        announced = {e.signup_id for e in events if e.event_type in ("MatchWaitlisted", "MatchUnmatched")}
        assert unplaced <= announced


def test_bad_requests_get_clear_errors(infra: Infra, admin: httpx.Client) -> None:
    with services(infra, "matching") as svc:
        matching = svc["matching"].url
        r = admin.post(f"{matching}/editions/no-such-edition/match-runs")
        assert r.status_code == 404 and r.json()["error"] == "unknown_edition"
        r = admin.get(f"{matching}/match-runs/not-a-uuid")
        assert r.status_code == 422 and r.json()["field"] == "path.run_id"
        r = admin.get(f"{matching}/editions/bad%00id/assignments")  # a NUL in a path id: 422, never a 500
        assert r.status_code == 422 and r.json()["field"] == "path.edition_id"
        r = httpx.get(f"{matching}/editions/no-such-edition", timeout=10)  # no credentials
        assert r.status_code == 401 and r.json()["error"] == "unauthenticated"
