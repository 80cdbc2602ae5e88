"""The matching service on the real broker and database: a run, then an offer cancelled after
publication, re-matched incrementally (frozen assignments untouched, displaced people first). The
edition, its offers and sign-ups are published on twente's topics as registration publishes them
(contract v2: no personal data on the sign-ups); the organiser's calls carry an admin API key."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from schemas import EditionOpened, OfferCancelled, OfferPublished, SignupSubmitted, decode_event
from schemas.topics import MATCHES
from tests.support import Infra, eventually, services

pytestmark = pytest.mark.integration

REGION = "twente"
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
T0 = datetime.now(UTC)


@pytest.fixture(scope="module")
def admin(infra: Infra) -> Iterator[httpx.Client]:
    """An HTTP client that sends an admin API key."""
    with httpx.Client(headers={"Authorization": f"Bearer {infra.key('admin')}"}, timeout=10) as client:
        yield client


def _edition(edition: str) -> list[EditionOpened | OfferPublished]:
    opened = EditionOpened(region=REGION, edition=edition, name="Incremental", signup_deadline=datetime(2099, 1, 1, tzinfo=UTC),
                           starts_on=date(2099, 5, 1), ends_on=date(2099, 5, 5))
    return [opened] + [
        OfferPublished(region=REGION, edition=edition, offer_id=f"{edition}-{name}", host_org=host, title=f"Offer {name}",
                       date=date(2099, 5, 2), capacity=cap)
        for name, (host, cap) in OFFERS.items()
    ]


def _signup(edition: str, i: int, org: str, picks: list[str]) -> SignupSubmitted:
    """Sign-up number `i` (in sign-up order): ids, organisation and choices, no name or e-mail address."""
    return SignupSubmitted(region=REGION, edition=edition, signup_id=f"{edition}-p{i}", org=org,
                           choices=[f"{edition}-{c}" for c in picks], signed_up_at=T0 + timedelta(seconds=i))


def wait_until_received(http: httpx.Client, matching: str, edition: str, offers: int, participants: int) -> None:
    def received() -> bool:
        r = http.get(f"{matching}/editions/{edition}")
        return r.status_code == 200 and (r.json()["offers"], r.json()["participants"]) == (offers, participants)

    eventually(received, timeout=60)


def _finished_run(http: httpx.Client, matching: str, edition: str, count: int) -> dict:
    def done() -> dict | None:
        runs = http.get(f"{matching}/editions/{edition}/match-runs").json()
        finished = [r for r in runs if r["status"] not in ("queued", "running")]
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


async def _match_events(infra: Infra, signups: set[str]) -> tuple[list, list[bytes]]:
    """The events about `signups` on twente's match topic, and their raw values."""
    consumer = AIOKafkaConsumer(MATCHES.name_in(REGION), **infra.kafka.client_kwargs(), auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    try:
        raw = []
        for _ in range(5):
            for msgs in (await consumer.getmany(timeout_ms=1000)).values():
                raw += [m.value for m in msgs if m.key.decode() in signups]
        return [decode_event(v) for v in raw], raw
    finally:
        await consumer.stop()


def test_run_then_cancelled_offer_rematches_only_what_is_free(infra: Infra, admin: httpx.Client) -> None:
    edition = f"im-{uuid.uuid4().hex[:8]}"
    # A generous debounce, so that the late sign-up and the cancellation land in one re-match.
    with services(infra, "matching", extra_env={"MATCHING_REMATCH_DEBOUNCE_SECONDS": "4"}) as svc:
        matching = svc["matching"].url
        signups = [_signup(edition, i, org, picks) for i, (org, picks) in enumerate(PEOPLE)]
        infra.produce([*_edition(edition), *signups, *signups[:2]])  # two redelivered: kept once (in one batch, mostly)
        ids = [s.signup_id for s in signups]
        choices = {s.signup_id: s.choices for s in signups}

        # Matching learns about the edition through Kafka; once it has everything, the organiser runs it.
        wait_until_received(admin, matching, edition, offers=len(OFFERS), participants=len(PEOPLE))
        started = admin.post(f"{matching}/editions/{edition}/match-runs")
        assert started.status_code == 202 and started.json()["status"] == "running", started.text  # serves every region
        first = _finished_run(admin, matching, edition, 1)
        assert first["assigned"] == 5 and first["kind"] == "full"  # 5 seats, 6 people who all could use them
        before = {a["signup_id"]: a for a in admin.get(f"{matching}/editions/{edition}/assignments").json()["assignments"]}
        assert len(before) == 5

        # A late sign-up arrives, and the host of A cancels after publication.
        late = _signup(edition, len(PEOPLE), *LATE)
        cancelled = f"{edition}-A"
        infra.produce([late, OfferCancelled(region=REGION, edition=edition, offer_id=cancelled)])
        ids.append(late.signup_id)
        choices[late.signup_id] = late.choices
        second = _finished_run(admin, matching, edition, 2)
        assert second["kind"] == "incremental"
        after = {a["signup_id"]: a for a in admin.get(f"{matching}/editions/{edition}/assignments").json()["assignments"]}

        # Frozen: every assignment not on A is exactly as it was (same offer, same run).
        kept = {sid: a for sid, a in before.items() if a["offer_id"] != cancelled}
        assert {sid: after[sid] for sid in kept} == kept
        displaced = {sid for sid, a in before.items() if a["offer_id"] == cancelled}
        assert len(displaced) == 2, "the scenario must displace two people"
        assert any(sid in displaced for sid in after), "a displaced person takes the free seat on B"
        assert late.signup_id not in after
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
        events, raw = asyncio.run(_match_events(infra, set(ids)))
        assigned = [(e.signup_id, e.offer.offer_id) for e in events if e.event_type == "MatchAssigned"]
        assert len(assigned) == len(set(assigned))
        assert set(assigned) == {(s, a["offer_id"]) for s, a in before.items()} | {(s, a["offer_id"]) for s, a in after.items()}
        unplaced = set(ids) - set(after)
        announced = {e.signup_id for e in events if e.event_type in ("MatchWaitlisted", "MatchUnmatched")}
        assert unplaced <= announced
        # Contract v2: match events carry ids, no recipient (contact details live on the participants topic).
        assert raw and not [v for v in raw if b'"recipient"' in v]


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
