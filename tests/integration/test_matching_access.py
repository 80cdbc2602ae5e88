"""Who may do what on the matching service, on the real broker and database, with real API keys
(published on the key topic) and real signed links (the test session's secret). The edition, its
offer and the sign-ups are published on twente's topics as registration publishes them.

The edition belongs to region twente (A). Its one offer has two seats: P0 and P1 are placed, X and Y
wait. Both placed people withdraw, so a seat is offered to X (who reads English) and one to Y.

- Organisers' routes: no key 401, organiser of groningen (B) 404 exactly like an unknown id, national
  403, organiser of A and admin 2xx; a run is scoped by its edition's region.
- X's link pages: the GET shows the offer and changes nothing; the POST accepts (MatchAssigned on the
  topic); pressing again changes nothing (no second MatchAssigned); the decline link of the accepted
  seat offer is a 409 page; an expired link 410, a tampered one or one for the other answer 404.
- The organiser of A accepts Y's seat offer on Y's behalf. No token appears in the service's log.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from schemas import EditionOpened, Event, OfferPublished, SignupSubmitted, SignupWithdrawn, decode_event
from schemas.topics import MATCHES
from tests.support import Infra, eventually, services

pytestmark = pytest.mark.integration

ENV = {"MATCHING_REMATCH_DEBOUNCE_SECONDS": "0.3", "MATCHING_REMATCH_POLL_SECONDS": "0.2"}
REGION = "twente"
LINK_MAX_AGE = 60 * 24 * 3600  # the default MATCHING_LINK_MAX_AGE_HOURS, in seconds


class Setting:
    """The running services, the keys and the edition with its people."""

    def __init__(self, infra: Infra, keys: dict[str, str], matching: str) -> None:
        self.infra, self.keys, self.matching = infra, keys, matching
        self.edition = f"acc-{uuid.uuid4().hex[:8]}"
        self.people: dict[str, str] = {}  # P0, P1, X, Y -> signup_id
        self.log: Path | None = None  # the matching service's log

    def as_(self, who: str | None) -> httpx.Client:
        """A client that calls as `who` (a key's name), or anonymously (None)."""
        headers = {"Authorization": f"Bearer {self.keys[who]}"} if who else {}
        return httpx.Client(headers=headers, timeout=10)

    def call(self, who: str | None, method: str, path: str) -> httpx.Response:
        with self.as_(who) as http:
            return http.request(method, f"{self.matching}{path}")

    def seat_offers(self) -> dict[str, str]:
        """signup_id -> state of their seat offer (the organiser's view)."""
        r = self.call("org A", "get", f"/editions/{self.edition}/seat-offers")
        assert r.status_code == 200, r.text
        return {o["signup_id"]: o["state"] for o in r.json()["seat_offers"]}


@pytest.fixture(scope="module")
def setting(infra: Infra) -> Iterator[Setting]:
    keys = {  # made before the services start: each reads every key on the topic before it answers
        "admin": infra.key("admin"), "org A": infra.key("organiser", "twente"),
        "org B": infra.key("organiser", "groningen"), "national": infra.key("national"),
    }
    with services(infra, "matching", extra_env=ENV) as svc:
        s = Setting(infra, keys, svc["matching"].url)
        s.log = svc["matching"].log_path
        edition, admin = s.edition, s.as_("admin")
        s.people = {name: f"{edition}-{name.lower()}" for name in ("P0", "P1", "X", "Y")}
        now = datetime.now(UTC)
        infra.produce([
            EditionOpened(region=REGION, edition=edition, name="Access", signup_deadline=datetime(2099, 1, 1, tzinfo=UTC),
                          starts_on=date(2099, 5, 1), ends_on=date(2099, 5, 5), languages=["nl", "en"]),
            OfferPublished(region=REGION, edition=edition, offer_id=f"{edition}-bakery", host_org="org-h",
                           title="Bakkerij de Korenaar", date=date(2099, 5, 2), capacity=2),
            *[SignupSubmitted(region=REGION, edition=edition, signup_id=signup_id, org="org-x", language="en" if name == "X" else "nl",
                              choices=[f"{edition}-bakery"], signed_up_at=now + timedelta(seconds=i))
              for i, (name, signup_id) in enumerate(s.people.items())],
        ])
        eventually(lambda: s.call("admin", "get", f"/editions/{edition}").json().get("participants") == 4, timeout=60)
        yield s
        admin.close()


def _match_events(infra: Infra, signup_id: str, settle: float = 2.0) -> list[Event]:
    """Every event about `signup_id` on twente's match topic, read from the start (for `settle` seconds)."""

    async def read() -> list[Event]:
        consumer = AIOKafkaConsumer(MATCHES.name_in(REGION), **infra.kafka.client_kwargs(), auto_offset_reset="earliest", group_id=None)
        await consumer.start()
        events: list[Event] = []
        try:
            deadline = time.monotonic() + settle
            while time.monotonic() < deadline:
                for msgs in (await consumer.getmany(timeout_ms=300)).values():
                    events += [decode_event(m.value) for m in msgs if m.key.decode() == signup_id]
            return events
        finally:
            await consumer.stop()

    return asyncio.run(read())


def _assigned(setting: Setting, who: str) -> int:
    events = _match_events(setting.infra, setting.people[who])
    return sum(1 for e in events if e.event_type == "MatchAssigned")


def routes(setting: Setting) -> list[tuple[str, str]]:
    e, x = setting.edition, setting.people["X"]
    return [
        ("get", f"/editions/{e}"), ("get", f"/editions/{e}/match-runs"), ("post", f"/editions/{e}/match-runs"),
        ("get", f"/editions/{e}/assignments"), ("get", f"/editions/{e}/seat-offers"),
        ("post", f"/editions/{e}/seat-offers/{x}/accept"), ("post", f"/editions/{e}/seat-offers/{x}/decline"),
    ]


def test_1_organisers_routes_refuse_anonymous_other_regions_and_the_national_role(setting: Setting) -> None:
    """Nothing here changes anything: every call is refused before it acts."""
    for method, path in routes(setting):
        anonymous = setting.call(None, method, path)
        assert (anonymous.status_code, anonymous.json()["error"]) == (401, "unauthenticated"), path
        national = setting.call("national", method, path)
        assert (national.status_code, national.json()["error"]) == (403, "forbidden"), path
        other_region = setting.call("org B", method, path)
        unknown = setting.call("admin", method, path.replace(setting.edition, "no-such-edition"))
        assert other_region.status_code == unknown.status_code == 404, path
        assert other_region.json()["error"] == unknown.json()["error"] == "unknown_edition"
        assert other_region.json()["message"] == unknown.json()["message"].replace("no-such-edition", setting.edition)
    assert setting.call("admin", "get", f"/editions/{setting.edition}/match-runs").json() == []  # no run was started


def test_2_the_organiser_of_the_region_runs_the_match_and_sees_it(setting: Setting) -> None:
    e = setting.edition
    started = setting.call("org A", "post", f"/editions/{e}/match-runs")
    assert started.status_code == 202, started.text
    run = f"/match-runs/{started.json()['id']}"
    done = eventually(lambda: (r := setting.call("org A", "get", run).json())["status"] not in ("queued", "running") and r, timeout=60)
    assert (done["status"], done["assigned"], done["waitlisted"]) == ("done", 2, 2)
    for who in ("org A", "admin"):
        for path in (f"/editions/{e}", f"/editions/{e}/match-runs", f"/editions/{e}/assignments", f"/editions/{e}/seat-offers", run):
            assert setting.call(who, "get", path).status_code == 200, (who, path)
    # A run is scoped by its edition's region.
    assert setting.call(None, "get", run).status_code == 401
    assert setting.call("national", "get", run).status_code == 403
    other_region, unknown = setting.call("org B", "get", run), setting.call("admin", "get", f"/match-runs/{uuid.uuid4()}")
    assert other_region.status_code == unknown.status_code == 404
    assert other_region.json()["error"] == unknown.json()["error"] == "unknown_run"


def test_3_a_participant_accepts_through_the_link_once(setting: Setting) -> None:
    e, x = setting.edition, setting.people["X"]
    # Both placed people withdraw: X and Y are offered a seat each.
    setting.infra.produce([SignupWithdrawn(region=REGION, edition=e, signup_id=setting.people[name]) for name in ("P0", "P1")])
    eventually(lambda: setting.seat_offers() == {x: "open", setting.people["Y"]: "open"}, timeout=30)

    accept = f"{setting.matching}/links/seat-offers/{Infra.link('seat_offer_accept', x, e)}/accept"
    decline = f"{setting.matching}/links/seat-offers/{Infra.link('seat_offer_decline', x, e)}/decline"

    # The GET shows the offer in X's language with one button, and changes nothing.
    page = httpx.get(accept, timeout=10)
    assert page.status_code == 200 and page.headers["content-language"] == "en", page.text
    assert "A place has become free for you" in page.text and "Bakkerij de Korenaar" in page.text
    assert "Saturday, 2 May 2099" in page.text and page.text.count("<button") == 1
    assert setting.seat_offers()[x] == "open" and _assigned(setting, "X") == 0

    # Expired, tampered and other-purpose links: a clear page, nothing changes.
    expired = Infra.link("seat_offer_accept", x, e, age_seconds=LINK_MAX_AGE + 60)
    token = accept.split("/")[-2]
    tampered = token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb")
    for url, status in [
        (f"{setting.matching}/links/seat-offers/{expired}/accept", 410),
        (f"{setting.matching}/links/seat-offers/{tampered}/accept", 404),
        (f"{setting.matching}/links/seat-offers/{token}/decline", 404),  # an accept token on the decline page
    ]:
        for method in ("get", "post"):
            refused = httpx.request(method, url, timeout=10)
            assert refused.status_code == status and refused.headers["content-type"].startswith("text/html"), url
    assert setting.seat_offers()[x] == "open" and _assigned(setting, "X") == 0

    # The button (a form POST, as a browser sends it): the place is X's, announced once.
    pressed = httpx.post(accept, data={}, timeout=10)
    assert pressed.status_code == 200 and "The place is yours" in pressed.text, pressed.text
    assert setting.seat_offers()[x] == "accepted"
    assert eventually(lambda: _assigned(setting, "X") == 1, timeout=20)

    again = httpx.post(accept, timeout=10)
    assert again.status_code == 200 and "You have already accepted this place" in again.text
    declining = httpx.post(decline, timeout=10)
    assert declining.status_code == 409 and "This place is no longer open" in declining.text
    assert setting.seat_offers()[x] == "accepted" and _assigned(setting, "X") == 1  # nothing new
    assert setting.log is not None and token not in setting.log.read_text()  # tokens are never logged

    # A participant's link without a seat offer behind it (P0 withdrew before any was made).
    nothing = httpx.get(f"{setting.matching}/links/seat-offers/{Infra.link('seat_offer_accept', setting.people['P0'], e)}/accept", timeout=10)
    assert nothing.status_code == 404 and "text/html" in nothing.headers["content-type"]


def test_4_the_organiser_of_the_region_answers_on_a_participants_behalf(setting: Setting) -> None:
    e, y = setting.edition, setting.people["Y"]
    assert setting.call("org B", "post", f"/editions/{e}/seat-offers/{y}/accept").status_code == 404
    accepted = setting.call("org A", "post", f"/editions/{e}/seat-offers/{y}/accept")
    assert accepted.status_code == 200 and accepted.json()["state"] == "accepted", accepted.text
    again = setting.call("org A", "post", f"/editions/{e}/seat-offers/{setting.people['X']}/decline")
    assert again.status_code == 409 and again.json()["error"] == "seat_offer_accepted"
    assert eventually(lambda: _assigned(setting, "Y") == 1, timeout=20)
