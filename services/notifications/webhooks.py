"""Webhooks for portals (issue 11): the adapter between the region's topics and the portals' HTTP
endpoints. Use cases are service.py's webhooks section, rules domain.py's, SQL webhook_store.py's.

- `tap(topic, handlers)`: the dispatch table of a topic notifications reads, with every deliverable
  event type (`domain.WEBHOOK_EVENT_TYPES`) also recorded as deliveries (`service.webhook_event`) in
  the same consumer transaction, after the journey's own handling. The participants topic is never
  tapped.
- `WebhookDeliverer.run`: the delivery loop (`rt.background`). Every `poll_seconds` it claims due
  deliveries (at most one new one per endpoint per round; an endpoint with `per_endpoint` attempts in
  flight gets none), and sends each in its own task: a POST of the event JSON with the Standard
  Webhooks headers (`webhook-id` = the delivery id, `webhook-timestamp`, `webhook-signature` =
  `v1,<base64 HMAC-SHA256 of id.timestamp.body>` with the endpoint's secret, `standardwebhooks`),
  `timeout_seconds` at most. A 2xx delivers; anything else is retried with exponential back-off
  (`domain.after_webhook_attempt`). Attempts run concurrently across endpoints, so a slow or failing
  endpoint holds only its own slots and never delays another endpoint, region, or the consumers.

The signature's timestamp is the real wall clock (receivers check it against theirs, 5 minutes'
tolerance), never the platform's test clock; the attempt log and the back-off use the platform clock.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from math import floor

import httpx
import structlog
from standardwebhooks.webhooks import Webhook

from estafette.runtime.clock import Now
from estafette.runtime.consumer import EventHandler
from estafette.runtime.loops import pause
from estafette.runtime.uow import Tx, Uow
from schemas import Event
from schemas.topics import Topic
from services.notifications import domain, service
from services.notifications.repository import Repository

log = structlog.get_logger(__name__)


def new_secret() -> str:
    """A signing secret in the Standard Webhooks form: `whsec_` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def tap(topic: Topic, handlers: Mapping[type[Event], EventHandler], clock: Now) -> dict[type[Event], EventHandler]:
    """`handlers` plus, for each deliverable event type of `topic`, recording its webhook deliveries."""
    if topic not in domain.WEBHOOK_TOPICS:
        raise ValueError(f"{topic.kind}: webhooks deliver only {', '.join(t.kind for t in domain.WEBHOOK_TOPICS)}")

    def tapped(own: EventHandler | None) -> EventHandler:
        async def handle(tx: Tx[Repository], event: Event) -> None:
            if own is not None:
                await own(tx, event)
            await service.webhook_event(tx, event, clock.now())

        return handle

    return {cls: tapped(handlers.get(cls)) for cls in {*handlers, *topic.events}}


def signed_headers(delivery_id: uuid.UUID, secret: str, body: str, at: datetime) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt."""
    return {
        "content-type": "application/json",
        "webhook-id": str(delivery_id),
        "webhook-timestamp": str(floor(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(str(delivery_id), at, body),
    }


class WebhookDeliverer:
    def __init__(
        self,
        uow: Uow[Repository],
        clock: Now,
        policy: domain.WebhookPolicy,
        *,
        timeout_seconds: float,
        per_endpoint: int,
        max_in_flight: int,
        poll_seconds: float,
        regions: tuple[str, ...] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.uow = uow
        self.clock = clock
        self.policy = policy
        self.timeout = timeout_seconds
        self.per_endpoint = per_endpoint
        self.max_in_flight = max_in_flight
        self.poll = poll_seconds
        self.regions = regions
        self.transport = transport
        self.in_flight: dict[uuid.UUID, int] = {}  # endpoint -> attempts being made here
        self.tasks: set[asyncio.Task[None]] = set()
        self.wake = asyncio.Event()

    async def run(self, stopping: asyncio.Event) -> None:
        async with httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout), follow_redirects=False, transport=self.transport,
            limits=httpx.Limits(max_connections=self.max_in_flight, max_keepalive_connections=self.max_in_flight),
        ) as client:
            while not stopping.is_set():
                try:
                    await self.round(client)
                except Exception:  # noqa: BLE001 - database away: the next round tries again
                    log.exception("webhook delivery round failed")
                await pause(stopping, self.poll, self.wake)
            for task in list(self.tasks):
                task.cancel()  # leased: another round (or instance) retries them after the lease
            await asyncio.gather(*self.tasks, return_exceptions=True)

    async def round(self, client: httpx.AsyncClient) -> int:
        """Claim what is due and start sending it; returns how many attempts were started."""
        room = self.max_in_flight - len(self.tasks)
        if room <= 0:
            return 0
        busy = [e for e, n in self.in_flight.items() if n >= self.per_endpoint]
        claimed = await service.claim_webhook_deliveries(
            self.uow, self.clock.now(), self.timeout + 30, room, busy, self.regions
        )
        for due in claimed:
            self.in_flight[due.endpoint_id] = self.in_flight.get(due.endpoint_id, 0) + 1
            task = asyncio.create_task(self._deliver(client, due))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return len(claimed)

    async def _deliver(self, client: httpx.AsyncClient, due: domain.DueDelivery) -> None:
        try:
            outcome = await self.attempt(client, due)
            decision = await service.webhook_attempted(self.uow, due, outcome, self.policy, self.clock.now())
            log.info(
                "webhook attempt", delivery_id=str(due.id), endpoint_id=str(due.endpoint_id), status=decision.status,
                response_code=outcome.status_code, duration_ms=outcome.duration_ms, error=outcome.error,
                retry_in=decision.retry_in,
            )
        except Exception:  # noqa: BLE001 - not recorded: the lease runs out and it is tried again
            log.exception("webhook attempt could not be recorded", delivery_id=str(due.id))
        finally:
            left = self.in_flight.get(due.endpoint_id, 1) - 1
            if left > 0:
                self.in_flight[due.endpoint_id] = left
            else:
                self.in_flight.pop(due.endpoint_id, None)
            self.wake.set()  # a slot is free: the endpoint's next delivery may go

    async def attempt(self, client: httpx.AsyncClient, due: domain.DueDelivery) -> domain.WebhookOutcome:
        """One POST, `timeout` at most; never raises for what the endpoint does."""
        headers = signed_headers(due.id, due.secret, due.body, datetime.now(UTC))
        t0 = time.perf_counter()
        try:
            answer = await asyncio.wait_for(
                client.post(due.url, content=due.body.encode(), headers=headers), self.timeout
            )
        except (httpx.HTTPError, TimeoutError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:500] if str(exc) else type(exc).__name__
            return domain.WebhookOutcome(None, _ms(t0), error)
        error = None if 200 <= answer.status_code < 300 else f"HTTP {answer.status_code}"
        return domain.WebhookOutcome(answer.status_code, _ms(t0), error)


def _ms(t0: float) -> int:
    return int((time.perf_counter() - t0) * 1000)
