"""A participant answers a seat offer from the e-mail, in a real browser.

Registration, matching and notifications run as processes on real Kafka and PostgreSQL. An organiser
(through the API, with an organiser key) opens an edition with one offer of one seat; A and B sign up;
a match run places A and puts B on the waiting list; A is withdrawn by the organiser, so the seat is
offered to B (MatchWaitlisted, then SeatOffered). B's seat-offer e-mail in the mail sink holds the
accept link. Debian's headless Chromium (tests/e2e/cdp.py) opens an expired and a tampered version
of it first (a clear page, no button, nothing changes), then the link itself (a page with one button;
opening it changes nothing), presses the button: B is assigned (MatchAssigned on the topic, the
confirmation e-mail in the mail sink). Pressing it again changes nothing: no second MatchAssigned and
no second e-mail, checked once a later event (a late sign-up C's outcome, published after the second
press) and C's e-mail have arrived.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from schemas import Event, decode_event
from estafette.runtime.kafka import KafkaAccess
from schemas.topics import MATCHES
from tests.e2e.cdp import Browser, Loaded, chromium_path
from tests.e2e.portal import ENV, MATCHING_URL, Portal, unique, until
from tests.support import Infra, services

pytestmark = pytest.mark.e2e

ACCEPT_LINK = re.compile(r"https?://[^\s\"'<>]+/links/seat-offers/[A-Za-z0-9._-]+/accept")
EXPIRED_AGE_SECONDS = 61 * 24 * 3600  # older than link_max_age_hours (60 days)


@pytest.fixture(scope="module")
def chromium() -> str:
    return chromium_path()


async def match_events(kafka: KafkaAccess, until_seen: Callable[[list[Event]], bool], timeout: float = 60) -> list[Event]:
    """The match topic read from its beginning until `until_seen(events)`, and then on to the end
    offsets of that moment, so that every event published before the last one wanted is included."""
    consumer = AIOKafkaConsumer(MATCHES.name_in("twente"), **kafka.client_kwargs(), group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    events: list[Event] = []
    try:
        async with asyncio.timeout(timeout):
            while not until_seen(events):
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    events += [decode_event(r.value) for r in records]
            ends = await consumer.end_offsets(list(consumer.assignment()))
            while any([await consumer.position(tp) < end for tp, end in ends.items()]):
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    events += [decode_event(r.value) for r in records]
    finally:
        await consumer.stop()
    return events


def of(events: list[Event], event_type: str, signup_id: str) -> list[Event]:
    return [e for e in events if e.event_type == event_type and getattr(e, "signup_id", None) == signup_id]


async def mails_to(http: httpx.AsyncClient, infra: Infra, address: str) -> list[dict]:
    """The e-mails to `address` about the match (its sign-up's confirmation left out)."""
    r = await http.get(f"{infra.mail_api}/api/messages", params={"to": address})
    r.raise_for_status()
    return [m for m in r.json() if m["headers"].get("X-Estafette-Kind") != "signup_confirmed"]


def shows_no_button(page: Loaded) -> bool:
    return "<form" not in page.html and "<button" not in page.html


async def test_the_seat_offer_link_from_the_email_accepts_the_place_once(infra: Infra, chromium: str) -> None:
    organiser_key = infra.key("organiser", "twente")
    with services(infra, "registration", "matching", "notifications", extra_env=ENV) as svc, \
            Browser(chromium) as browser:
        urls = {name: proc.url for name, proc in svc.items()}
        async with httpx.AsyncClient(timeout=30) as http:
            portal = Portal(http, urls, organiser_key)
            edition = await portal.edition(unique("browser"))
            offer = await portal.offer(edition, f"{edition}-bakery", capacity=1, title="Bakkerij De Korenaar")
            email = {p: f"{p.lower()}-{edition}@example.org" for p in ("A", "B", "C")}
            a = await portal.signup(edition, "Anna", email["A"], [offer])
            b = await portal.signup(edition, "Bram", email["B"], [offer])
            await portal.known_to_matching(edition, 2)
            await portal.run(edition)
            await until(lambda: portal.waiting_are(edition, [b]), "B on the waiting list")
            await portal.withdraw(edition, a)  # the organiser withdraws A: the seat is offered to B

            events = await match_events(infra.kafka, lambda ev: bool(of(ev, "SeatOffered", b)))
            told = [e.event_type for e in events if getattr(e, "signup_id", None) == b]
            assert told == ["MatchWaitlisted", "SeatOffered"], told

            async def seat_offer_mail() -> tuple[str, list[dict]] | None:
                mails = await mails_to(http, infra, email["B"])  # the waiting-list confirmation, then the offer
                for mail in mails:
                    if found := ACCEPT_LINK.search(mail.get("text") or "") or ACCEPT_LINK.search(mail.get("html") or ""):
                        return (found.group(0), mails) if len(mails) == 2 else None
                return None

            accept_url, mails_before = await until(seat_offer_mail, "B's two e-mails, the second with the accept link")
            assert accept_url.startswith(f"{MATCHING_URL}/links/seat-offers/"), accept_url
            token = accept_url.rsplit("/", 2)[-2]

            # An expired and a tampered link: a clear page without a button; the seat offer stays open.
            tab = browser.tab()
            expired = Infra.link("seat_offer_accept", b, edition, age_seconds=EXPIRED_AGE_SECONDS)
            i = len(token) - 10
            tampered = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1:]
            for url, status in ((f"{MATCHING_URL}/links/seat-offers/{expired}/accept", 410),
                                (f"{MATCHING_URL}/links/seat-offers/{tampered}/accept", 404)):
                page = tab.open(url)
                assert page.status == status, (url, page.status, page.text)
                assert shows_no_button(page) and page.text.strip(), page.html
                assert (await http.post(url)).status_code == status  # a form posted to it by hand does nothing either
            assert (await portal.seat_offer_states(edition))[b] == "open"

            # The link itself, opened twice (two tabs): a page with one button; opening it changes nothing.
            offer_page, second_tab = tab.open(accept_url), browser.tab()
            assert offer_page.status == 200, offer_page.text
            assert offer_page.html.count("<button") == 1 and "Bakkerij De Korenaar" in offer_page.text, offer_page.html
            assert second_tab.open(accept_url).text == offer_page.text
            assert (await portal.seat_offer_states(edition))[b] == "open"

            answered = tab.press()
            assert answered.status == 200 and answered.url == accept_url, (answered.status, answered.text)
            assert shows_no_button(answered), answered.html

            events = await match_events(infra.kafka, lambda ev: bool(of(ev, "MatchAssigned", b)))
            assert [e.offer.offer_id for e in of(events, "MatchAssigned", b)] == [offer]  # type: ignore[attr-defined]
            known = {m["id"] for m in mails_before}

            async def confirmation() -> list[dict]:
                return [m for m in await mails_to(http, infra, email["B"]) if m["id"] not in known]

            new = await until(confirmation, "B's confirmation e-mail")
            assert [m["subject"] for m in new] == ["Je Estafette-plek: Bakkerij De Korenaar"]

            # Pressing it again (in the second tab, which still shows the button): a page saying so, nothing changes.
            again = second_tab.press()
            assert again.status == 200 and shows_no_button(again), (again.status, again.html)
            assert again.text != answered.text, again.text
            assert (await portal.seat_offer_states(edition))[b] == "accepted"

            # A later event as a marker: C signs up late (no seat left) and is told so, after the second press.
            c = await portal.signup(edition, "Cor", email["C"], [offer])
            events = await match_events(
                infra.kafka,
                lambda ev: any(getattr(e, "signup_id", None) == c and e.event_type.startswith("Match") for e in ev))
            assert len(of(events, "MatchAssigned", b)) == 1, [e.event_type for e in events if getattr(e, "signup_id", None) == b]
            await until(lambda: mails_to(http, infra, email["C"]), "C's e-mail")
            assert [m["subject"] for m in await confirmation()] == ["Je Estafette-plek: Bakkerij De Korenaar"]

