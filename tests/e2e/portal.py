"""What an organiser's portal does through the API, for the e2e tests: editions, offers, sign-ups,
match runs, withdrawals and seat offers, each call made with the portal's API key (`Authorization:
Bearer`). Waiting is polling of the services' own views until they show the expected state, bounded
by a deadline (never a fixed sleep)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from tests.support import HTTP_PORTS

T = TypeVar("T")

MATCHING_URL = f"http://127.0.0.1:{HTTP_PORTS['matching']}"
#: Quick re-matches and e-mails, and the seat-offer e-mail's links on this session's matching service.
ENV = {
    "MATCHING_REMATCH_DEBOUNCE_SECONDS": "0.3",
    "MATCHING_REMATCH_POLL_SECONDS": "0.2",
    "NOTIFICATIONS_SEND_POLL_SECONDS": "0.2",
    "NOTIFICATIONS_MATCHING_PUBLIC_URL": MATCHING_URL,
}
EDITION = {"name": "Estafette-week", "signup_deadline": "2099-04-01T00:00:00Z", "starts_on": "2099-05-31",
           "ends_on": "2099-06-04", "languages": ["nl", "de", "en"]}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def until(check: Callable[[], Awaitable[T]], what: str, timeout: float = 60, interval: float = 0.2) -> T:
    """Poll `check()` until it returns a truthy value (returned); fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout}s (last: {last!r})")


@dataclass
class Portal:
    http: httpx.AsyncClient
    urls: dict[str, str]
    key: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    async def call(self, method: str, service: str, path: str, expect: int, **kwargs: Any) -> httpx.Response:
        r = await self.http.request(method, self.urls[service] + path, headers=self.auth, **kwargs)
        assert r.status_code == expect, f"set-up: {method} {service} {path} -> {r.status_code} {r.text[:500]}"
        return r

    async def edition(self, edition_id: str, region: str = "twente", **extra: Any) -> str:
        await self.call("POST", "registration", "/editions", 201,
                        json={"id": edition_id, "region": region, **EDITION, **extra})
        return edition_id

    async def offer(self, edition_id: str, offer_id: str, capacity: int = 1, title: str = "Bakkerij",
                    date: str = "2099-06-01") -> str:
        await self.call("POST", "registration", f"/editions/{edition_id}/offers", 201, json={
            "id": offer_id, "host_org": "bakker-bart", "title": title, "date": date, "capacity": capacity})
        return offer_id

    async def signup(self, edition_id: str, name: str, email: str, choices: list[str], language: str = "nl") -> str:
        r = await self.call("POST", "registration", f"/editions/{edition_id}/signups", 201, json={
            "org": "gemeente-hengelo", "name": name, "email": email, "language": language, "choices": choices, "consent": True})
        return r.json()["signup_id"]

    async def withdraw(self, edition_id: str, signup_id: str) -> None:
        await self.call("DELETE", "registration", f"/editions/{edition_id}/signups/{signup_id}", 204)

    async def get(self, service: str, path: str, **params: Any) -> httpx.Response:
        return await self.http.get(self.urls[service] + path, headers=self.auth, params=params)

    async def known_to_matching(self, edition_id: str, participants: int = 0) -> None:
        async def arrived() -> bool:
            r = await self.get("matching", f"/editions/{edition_id}")
            return r.status_code == 200 and r.json()["participants"] == participants

        await until(arrived, f"matching knows edition {edition_id} with {participants} participants")

    async def run(self, edition_id: str) -> str:
        """Start a match run and wait until it is done; its id."""
        run_id = (await self.call("POST", "matching", f"/editions/{edition_id}/match-runs", 202)).json()["id"]

        async def done() -> bool:
            r = await self.get("matching", f"/match-runs/{run_id}")
            assert r.json()["status"] != "failed", r.text
            return r.json()["status"] == "done"

        await until(done, f"match run {run_id} done")
        return run_id

    async def seat_offer_states(self, edition_id: str) -> dict[str, str]:
        r = await self.get("matching", f"/editions/{edition_id}/seat-offers")
        assert r.status_code == 200, r.text
        return {o["signup_id"]: o["state"] for o in r.json()["seat_offers"]}

    async def wait_seat_offers(self, edition_id: str, expected: dict[str, str]) -> None:
        async def reached() -> bool:
            states = await self.seat_offer_states(edition_id)
            return {s: states.get(s) for s in expected} == expected

        await until(reached, f"seat offers {expected} in {edition_id}")

    async def waiting(self, edition_id: str) -> list[str]:
        r = await self.get("matching", f"/editions/{edition_id}/assignments")
        assert r.status_code == 200, r.text
        return [w["signup_id"] for w in r.json()["waiting_list"] if w["state"] == "waitlisted"]

    async def seat_offer_edition(self, prefix: str, waiting: int = 2) -> SeatOfferEdition:
        """An edition of twente with one offer of `waiting` seats, `waiting` people placed by a run and
        `waiting` more on the waiting list; the placed ones withdraw, so each waiting person (in sign-up
        order) holds an open seat offer."""
        edition_id = await self.edition(unique(prefix))
        offer_id = await self.offer(edition_id, f"{edition_id}-bakery", capacity=waiting)
        people = [await self.signup(edition_id, f"P{i}", f"p{i}-{edition_id}@example.org", [offer_id])
                  for i in range(2 * waiting)]
        placed, waiters = people[:waiting], people[waiting:]
        await self.known_to_matching(edition_id, len(people))
        run_id = await self.run(edition_id)
        assert await until(lambda: self.waiting_are(edition_id, waiters), f"{waiters} waitlisted in {edition_id}")
        for signup_id in placed:
            await self.withdraw(edition_id, signup_id)
        await self.wait_seat_offers(edition_id, dict.fromkeys(waiters, "open"))
        return SeatOfferEdition(edition_id, offer_id, waiters, run_id)

    async def waiting_are(self, edition_id: str, signups: list[str]) -> bool:
        """Is the waiting list (those waiting) exactly `signups`, in this order?"""
        return await self.waiting(edition_id) == signups


@dataclass(frozen=True)
class SeatOfferEdition:
    edition_id: str
    offer_id: str
    #: The people holding an open seat offer, in sign-up order.
    holders: list[str]
    run_id: str


# --- issues 10 and 11: relay legs, feedback to moderate, webhooks ----------------------------------
async def give_feedback(http: httpx.AsyncClient, registration_url: str, signup_id: str, edition_id: str, offer_id: str,
                        learned: str, share_publicly: bool = True) -> None:
    """The participant's feedback on an offer through their feedback link (as the page's form posts it)."""
    from tests.support import Infra

    token = Infra.link("feedback", signup_id, edition_id, ref=offer_id)
    form = {"rating": "4", "learned": learned, **({"share_publicly": "on"} if share_publicly else {})}
    r = await http.post(f"{registration_url}/links/feedback/{token}", data=form)
    assert r.status_code == 200, f"set-up: feedback of {signup_id} -> {r.status_code} {r.text[:300]}"


async def relay_legs(http: httpx.AsyncClient, registration_url: str) -> dict[str, dict[str, Any]]:
    """The relay plan (public), by leg id."""
    r = await http.get(f"{registration_url}/relay/legs")
    assert r.status_code == 200, r.text
    return {leg["id"]: leg for leg in r.json()}
