"""Seat offers on the real broker and database: after publication a freed seat is offered to the
next person on the waiting list, held for a short while, and moves on when it expires or is declined;
accepting it makes the assignment. Matching and notifications run as processes; the edition, its offer
and the sign-ups are published on twente's topics as registration publishes them (contract v2: the
contact details only on the participants topic, which notifications reads). The organiser's calls
carry an admin API key; the e-mail's links open matching's link pages."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from schemas import EditionOpened, Event, OfferPublished, ParticipantRegistered, SignupSubmitted, SignupWithdrawn, decode_event
from schemas.topics import MATCHES
from tests.support import HTTP_PORTS, Infra, eventually, services

pytestmark = pytest.mark.integration

HOLD_SECONDS = 6  # how long a seat offer is held here (MATCHING_SEAT_OFFER_HOURS)
MATCHING_URL = f"http://127.0.0.1:{HTTP_PORTS['matching']}"
ENV = {
    "MATCHING_SEAT_OFFER_HOURS": str(HOLD_SECONDS / 3600),
    "MATCHING_REMATCH_DEBOUNCE_SECONDS": "0.3",
    "MATCHING_REMATCH_POLL_SECONDS": "0.2",
    "NOTIFICATIONS_SEND_POLL_SECONDS": "0.2",
    "NOTIFICATIONS_MATCHING_PUBLIC_URL": MATCHING_URL,
}


@pytest.fixture(scope="module")
def admin(infra: Infra) -> Iterator[httpx.Client]:
    """An HTTP client that sends an admin API key (the organiser's portal)."""
    with httpx.Client(headers={"Authorization": f"Bearer {infra.key('admin')}"}, timeout=10) as client:
        yield client


REGION = "twente"


def _signup(edition: str, offer_id: str, i: int, correlation_id: uuid.UUID) -> list[Event]:
    """Sign-up number `i` as registration publishes it: the sign-up (ids, choices; its request's
    correlation id) and the person's contact details on the participants topic."""
    signup_id = f"{edition}-p{i}"
    return [
        SignupSubmitted(region=REGION, edition=edition, signup_id=signup_id, org="org-x", choices=[offer_id],
                        signed_up_at=datetime.now(UTC) + timedelta(seconds=i), correlation_id=correlation_id),
        ParticipantRegistered(region=REGION, edition=edition, signup_id=signup_id, name=f"P{i}",
                              email=f"p{i}-{edition}@example.org", correlation_id=correlation_id),
    ]


def _seat_offers(admin: httpx.Client, edition: str) -> dict[str, dict]:
    """signup_id -> their latest seat offer, from the organiser's view."""
    r = admin.get(f"{MATCHING_URL}/editions/{edition}/seat-offers")
    assert r.status_code == 200, r.text
    return {o["signup_id"]: o for o in r.json()["seat_offers"]}


def _wait_for_states(admin: httpx.Client, edition: str, expected: dict[str, str], timeout: float = 30) -> dict[str, dict]:
    def reached() -> dict[str, dict] | None:
        offers = _seat_offers(admin, edition)
        return offers if {s: offers.get(s, {}).get("state") for s in expected} == expected else None

    return eventually(reached, timeout=timeout, interval=0.1)


async def _events(infra: Infra, signups: set[str], until_types: set[tuple[str, str]], timeout: float = 20) -> list[Event]:
    """Events about `signups` on twente's match topic, read from the start until every (type, signup) in
    `until_types` was seen."""
    consumer = AIOKafkaConsumer(MATCHES.name_in(REGION), **infra.kafka.client_kwargs(), auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    events: list[Event] = []
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not until_types <= {(e.event_type, e.signup_id) for e in events}:
            for msgs in (await consumer.getmany(timeout_ms=500)).values():
                events += [decode_event(m.value) for m in msgs if m.key.decode() in signups]
        return sorted(events, key=lambda e: e.occurred_at)
    finally:
        await consumer.stop()


def _mails_to(infra: Infra, email: str) -> list[dict]:
    r = httpx.get(f"{infra.mail_api}/api/messages", params={"to": email}, timeout=5)
    r.raise_for_status()
    return r.json()


def test_a_freed_seat_is_offered_in_turn_expires_moves_on_and_is_accepted(infra: Infra, admin: httpx.Client) -> None:
    edition = f"so-{uuid.uuid4().hex[:8]}"
    offer_id = f"{edition}-bakery"

    def answer(signup_id: str, how: str, edition: str = edition) -> httpx.Response:
        """The organiser answers on the participant's behalf."""
        return admin.post(f"{MATCHING_URL}/editions/{edition}/seat-offers/{signup_id}/{how}")

    with services(infra, "matching", "notifications", extra_env=ENV):
        requests = [uuid.uuid4() for _ in range(4)]  # each sign-up request's correlation id
        infra.produce([
            EditionOpened(region=REGION, edition=edition, name="Seat offers", signup_deadline=datetime(2099, 1, 1, tzinfo=UTC),
                          starts_on=date(2099, 5, 1), ends_on=date(2099, 5, 5)),
            OfferPublished(region=REGION, edition=edition, offer_id=offer_id, host_org="org-h", title="Bakkerij",
                           date=date(2099, 5, 2), capacity=1),
            *[event for i in range(4) for event in _signup(edition, offer_id, i, requests[i])],
        ])
        people = [f"{edition}-p{i}" for i in range(4)]
        p0, p1, p2, p3 = people
        eventually(lambda: admin.get(f"{MATCHING_URL}/editions/{edition}").json().get("participants") == 4, timeout=60)

        # First run: p0 gets the one seat, the others wait in sign-up order.
        assert admin.post(f"{MATCHING_URL}/editions/{edition}/match-runs").status_code == 202
        waiting = eventually(lambda: [w for w in admin.get(f"{MATCHING_URL}/editions/{edition}/assignments").json()["waiting_list"]
                                      if w["state"] == "waitlisted"], timeout=30)
        assert [(w["signup_id"], w["position"]) for w in waiting] == [(p1, 1), (p2, 2), (p3, 3)]

        # p0 withdraws: the seat is offered to p1 (not assigned), and held: nobody else is offered it.
        infra.produce([SignupWithdrawn(region=REGION, edition=edition, signup_id=p0)])
        offers = _wait_for_states(admin, edition, {p1: "open"})
        assert set(offers) == {p1}
        held = datetime.fromisoformat(offers[p1]["expires_at"]) - datetime.fromisoformat(offers[p1]["offered_at"])
        assert abs(held.total_seconds() - HOLD_SECONDS) < 1
        overview = admin.get(f"{MATCHING_URL}/editions/{edition}").json()
        assert (overview["assignments"], overview["seat_offers_open"]) == (0, 1)

        # p1 does not answer: the offer expires and moves on to p2.
        offers = _wait_for_states(admin, edition, {p1: "expired", p2: "open"}, timeout=HOLD_SECONDS + 20)
        late = answer(p1, "accept")
        assert late.status_code == 409, late.text
        assert late.json()["error"] == "seat_offer_expired" and "expired at" in late.json()["message"]

        # p2 declines: the seat moves on to p3, who accepts it.
        declined = answer(p2, "decline")
        assert declined.status_code == 200 and declined.json()["state"] == "declined", declined.text
        _wait_for_states(admin, edition, {p3: "open"})
        accepted = answer(p3, "accept")
        assert accepted.status_code == 200 and accepted.json()["state"] == "accepted", accepted.text
        again = answer(p3, "accept")
        assert again.status_code == 409 and again.json()["error"] == "seat_offer_accepted"
        unknown = answer(p0, "decline")  # withdrew before any seat was offered to them
        assert unknown.status_code == 404 and unknown.json()["error"] == "unknown_seat_offer"
        assert answer(p3, "accept", "no-such-edition").status_code == 404

        view = admin.get(f"{MATCHING_URL}/editions/{edition}/seat-offers").json()
        assert {k: v for k, v in view["counts"].items() if v} == {"expired": 1, "declined": 1, "accepted": 1}
        result = admin.get(f"{MATCHING_URL}/editions/{edition}/assignments").json()
        assert [(a["signup_id"], a["offer_id"]) for a in result["assignments"]] == [(p3, offer_id)]

        # The events: an offer per person in turn, how each ended, and an assignment only for p3 (and p0 before).
        # p1 and p2 have no other choice left: they are told so once (MatchUnmatched).
        expected = {("SeatOffered", p1), ("SeatOffered", p2), ("SeatOffered", p3), ("SeatOfferEnded", p1),
                    ("SeatOfferEnded", p2), ("MatchAssigned", p3), ("MatchUnmatched", p1), ("MatchUnmatched", p2)}
        events = asyncio.run(_events(infra, set(people), expected))
        assert [e.signup_id for e in events if e.event_type == "SeatOffered"] == [p1, p2, p3]
        assert {(e.signup_id, e.reason) for e in events if e.event_type == "SeatOfferEnded"} == {(p1, "expired"), (p2, "declined")}
        assert [e.signup_id for e in events if e.event_type == "MatchAssigned"] == [p0, p3]  # first run, acceptance
        assert {(e.signup_id, e.reason_code) for e in events if e.event_type == "MatchUnmatched"} == {
            (p1, "seat_offers_ended"), (p2, "seat_offers_ended")}
        assert sorted(e.signup_id for e in events if e.event_type == "MatchWaitlisted") == sorted([p1, p2, p3])  # once each
        # Each event about a person carries their sign-up's correlation id (from runs, re-matches, the
        # expiry loop and answers alike); the run is in run_id.
        correlation = dict(zip(people, requests, strict=True))
        assert [(e.event_type, e.signup_id) for e in events if e.correlation_id != correlation[e.signup_id]] == []

        # E-mails: p1 got the waiting-list confirmation, then the seat offer with the address to accept it.
        def p1_mails() -> dict[str, dict] | None:
            mails = {m["subject"].split(":")[0]: m for m in _mails_to(infra, f"p1-{edition}@example.org")}
            return mails if {"Bevestiging", "Er is een plek voor je vrijgekomen"} <= set(mails) else None

        mails = eventually(p1_mails, timeout=20)
        assert "plaats 1" in mails["Bevestiging"]["text"]
        offer_mail = mails["Er is een plek voor je vrijgekomen"]["text"]
        assert "Bakkerij" in offer_mail
        # Its links open matching's signed link pages (no sign-up id in the address); p1's seat offer
        # expired, so each page says so (409) and changes nothing.
        links = dict(re.findall(rf"({re.escape(MATCHING_URL)}/links/seat-offers/[^/\s]+/(accept|decline))", offer_mail))
        assert sorted(links.values()) == ["accept", "decline"] and p1 not in offer_mail, offer_mail
        for url in links:
            for page in (httpx.get(url, timeout=10), httpx.post(url, timeout=10)):
                assert page.status_code == 409 and "text/html" in page.headers["content-type"], page.text
                assert "Deze plek is niet meer beschikbaar" in page.text
        assert _seat_offers(admin, edition)[p1]["state"] == "expired"
