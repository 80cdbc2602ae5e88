"""A steady load of sign-ups, as an outside client sees it: an asyncio HTTP client in a thread of its
own, at a fixed rate (open loop, a bounded number of requests in flight), recording every answer."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx


@dataclass
class Answers:
    """What the client got. `accepted`: sign-up id -> e-mail address of every 201."""

    accepted: dict[str, str] = field(default_factory=dict)
    statuses: Counter[int] = field(default_factory=Counter)
    #: Requests without an HTTP answer (the service was down or closed the connection).
    unanswered: int = 0
    #: 5xx answers other than 503 (status, first 300 characters of the body).
    server_errors: list[tuple[int, str]] = field(default_factory=list)
    #: 503 answers without a Retry-After header.
    unavailable_without_retry_after: int = 0
    #: E-mail addresses of requests that got no answer (they may or may not have been stored).
    unknown: list[str] = field(default_factory=list)
    #: The first 4xx answers (a load that is refused is a broken test, not a fault).
    refused: list[str] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return sum(self.statuses.values()) + self.unanswered


class SignupLoad:
    """`rate` sign-ups per second to `url`'s edition, each a new person (e-mail `<tag>-<n>@<domain>`)."""

    def __init__(
        self, url: str, edition: str, offers: list[str], *, domain: str, rate: float = 5.0,
        in_flight: int = 8, tag: str = "p",
    ) -> None:
        self.url, self.edition, self.offers, self.domain = url, edition, offers, domain
        self.rate, self.in_flight, self.tag = rate, in_flight, tag
        self.answers = Answers()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), name="signup-load", daemon=True)
        self._lock = threading.Lock()

    def __enter__(self) -> SignupLoad:
        # The sign-up form asks for consent (`consent: true`); a registration without that field
        # refuses it as unknown: the first request finds out which one this is.
        self.consent = True
        r = httpx.post(f"{self.url}/editions/{self.edition}/signups", json=self._body(0), timeout=15)
        if r.status_code == 422 and "consent" in r.text:
            self.consent = False
            r = httpx.post(f"{self.url}/editions/{self.edition}/signups", json=self._body(0), timeout=15)
        assert r.status_code == 201, f"sign-up refused: {r.status_code} {r.text[:300]}"
        self.answers.statuses[201] += 1
        self.answers.accepted[r.json()["signup_id"]] = self._body(0)["email"]
        self._thread.start()
        return self

    def _body(self, n: int) -> dict[str, object]:
        body: dict[str, object] = {
            "org": f"org-{n % 7}", "name": f"Person {n}", "email": f"{self.tag}-{n}@{self.domain}",
            "language": ("nl", "de", "en")[n % 3],
            "choices": [self.offers[(n + i) % len(self.offers)] for i in range(min(3, len(self.offers)))]}
        return {**body, "consent": True} if self.consent else body

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> Answers:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(60)
        return self.answers

    def wait_accepted(self, n: int, timeout: float = 60) -> None:
        """Until `n` more sign-ups than now have been accepted."""
        target = len(self.answers.accepted) + n
        deadline = time.monotonic() + timeout
        while len(self.answers.accepted) < target:
            refused = sum(n for s, n in self.answers.statuses.items() if 400 <= s < 500)
            if time.monotonic() > deadline or (refused >= 20 and not self.answers.accepted):
                raise AssertionError(f"{n} sign-ups not accepted within {timeout}s: {self.answers.statuses} {self.answers.refused[:2]}")
            time.sleep(0.1)

    async def _run(self) -> None:
        limits = httpx.Limits(max_connections=self.in_flight, max_keepalive_connections=self.in_flight)
        async with httpx.AsyncClient(timeout=15, limits=limits) as client:
            slots = asyncio.Semaphore(self.in_flight)
            tasks: set[asyncio.Task[None]] = set()
            n, start = 0, time.monotonic()
            while not self._stop.is_set():
                n += 1
                await slots.acquire()
                task = asyncio.create_task(self._one(client, n, slots))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                await asyncio.sleep(max(0.0, start + n / self.rate - time.monotonic()))
            if tasks:
                await asyncio.wait(tasks, timeout=30)

    async def _one(self, client: httpx.AsyncClient, n: int, slots: asyncio.Semaphore) -> None:
        body = self._body(n)
        email = str(body["email"])
        try:
            r = await client.post(f"{self.url}/editions/{self.edition}/signups", json=body)
        except httpx.HTTPError:
            with self._lock:
                self.answers.unanswered += 1
                self.answers.unknown.append(email)
            return
        finally:
            slots.release()
        with self._lock:
            a = self.answers
            a.statuses[r.status_code] += 1
            if r.status_code == 201:
                a.accepted[r.json()["signup_id"]] = email
            elif r.status_code == 503 and "retry-after" not in r.headers:
                a.unavailable_without_retry_after += 1
            elif 400 <= r.status_code < 500 and len(a.refused) < 5:
                a.refused.append(f"{r.status_code} {r.text[:300]}")
            elif r.status_code >= 500 and r.status_code != 503:
                a.server_errors.append((r.status_code, r.text[:300]))
