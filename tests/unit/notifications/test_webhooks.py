"""Issue 11: the webhooks' rules (retry and back-off, validation), the Standard Webhooks signature
(checked with the library's verifier), and the tap that records deliveries for deliverable events only."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from estafette.runtime.errors import RuleViolation
from schemas.topics import EDITIONS, PARTICIPANTS
from services.notifications import domain, webhooks
from services.notifications.domain import WebhookOutcome, WebhookPolicy, after_webhook_attempt

POLICY = WebhookPolicy(max_attempts=4, base_seconds=10, max_seconds=25)


def test_a_2xx_delivers_anything_else_backs_off_then_fails() -> None:
    assert after_webhook_attempt(WebhookOutcome(204, 5), 1, POLICY).status == "delivered"
    failing = WebhookOutcome(500, 5, "HTTP 500")
    assert [after_webhook_attempt(failing, n, POLICY).retry_in for n in (1, 2, 3)] == [10, 20, 25]
    assert after_webhook_attempt(failing, 4, POLICY) == domain.WebhookDecision("failed", None)
    assert after_webhook_attempt(WebhookOutcome(None, 5000, "ReadTimeout"), 1, POLICY).status == "pending"
    assert after_webhook_attempt(WebhookOutcome(302, 5), 1, POLICY).status == "pending"  # redirects are not followed


@pytest.mark.parametrize(("url", "types", "code"), [
    ("ftp://portal.example/hook", ["EditionOpened"], "invalid_url"),
    ("https:///nohost", ["EditionOpened"], "invalid_url"),
    ("https://portal.example/hook", ["ParticipantRegistered"], "unknown_event_type"),
    ("https://portal.example/hook", ["NotificationRequested"], "unknown_event_type"),
    ("https://portal.example/hook", [], "unknown_event_type"),
])
def test_endpoints_are_validated(url: str, types: list[str], code: str) -> None:
    with pytest.raises(RuleViolation) as refused:
        domain.check_webhook(url, types)
    assert refused.value.code == code


def test_no_personal_data_topic_is_deliverable() -> None:
    assert "ParticipantRegistered" not in domain.WEBHOOK_EVENT_TYPES
    assert all(not t.personal_data for t in domain.WEBHOOK_TOPICS)
    with pytest.raises(ValueError):
        webhooks.tap(PARTICIPANTS, {}, None)  # type: ignore[arg-type]


def test_the_signature_is_the_standard_webhooks_one() -> None:
    secret = webhooks.new_secret()
    assert secret.startswith("whsec_")
    body = '{"event_type": "EditionOpened"}'
    headers = webhooks.signed_headers(uuid.uuid4(), secret, body, datetime.now(UTC))
    assert Webhook(secret).verify(body, headers) == {"event_type": "EditionOpened"}
    assert headers["webhook-signature"].startswith("v1,")
    with pytest.raises(Exception):  # noqa: B017 - another secret does not verify
        Webhook(webhooks.new_secret()).verify(body, headers)


class Recorded:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    async def record_deliveries(self, *args) -> int:
        self.calls.append(args)
        return 1


class Tx:
    def __init__(self) -> None:
        self.repo = Recorded()


class Clock:
    def now(self) -> datetime:
        return datetime(2027, 5, 1, tzinfo=UTC)


async def test_the_tap_keeps_the_journey_and_records_each_event_once() -> None:
    from schemas import EditionClosed, EditionOpened

    seen: list[str] = []

    async def opened(tx, event) -> None:
        seen.append(event.event_type)

    tapped = webhooks.tap(EDITIONS, {EditionOpened: opened}, Clock())
    assert set(tapped) == set(EDITIONS.events)  # events the journey ignores are delivered too
    tx = Tx()
    event = EditionClosed(region="twente", edition="e1")
    await tapped[EditionClosed](tx, event)
    assert [(c[0], c[1], c[2]) for c in tx.repo.calls] == [("twente", event.event_id, "EditionClosed")]
    assert seen == []


async def test_an_attempt_reports_timeouts_and_status_codes() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/slow":
            raise httpx.ReadTimeout("slow", request=request)
        return httpx.Response(503)

    deliverer = webhooks.WebhookDeliverer(
        None, Clock(), POLICY, timeout_seconds=1, per_endpoint=1, max_in_flight=4, poll_seconds=1,  # type: ignore[arg-type]
    )
    due = domain.DueDelivery(uuid.uuid4(), uuid.uuid4(), "http://portal.test/slow", webhooks.new_secret(), "{}", 0)
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        slow = await deliverer.attempt(client, due)
        down = await deliverer.attempt(client, domain.DueDelivery(due.id, due.endpoint_id, "http://portal.test/x", due.secret, "{}", 0))
    assert (slow.status_code, slow.succeeded, "ReadTimeout" in (slow.error or "")) == (None, False, True)
    assert (down.status_code, down.error) == (503, "HTTP 503")


async def test_an_organiser_registering_for_another_region_gets_forbidden_region() -> None:
    from estafette.runtime.access import Principal
    from estafette.runtime.errors import Forbidden
    from services.notifications import service

    organiser = Principal("organiser", region="twente", subject="key:k1")
    with pytest.raises(Forbidden) as refused:
        await service.add_webhook(None, organiser, "https://portal.example.org/hook",  # type: ignore[arg-type]
                                  ["EditionOpened"], "", "groningen", "whsec_x", datetime(2027, 5, 1, tzinfo=UTC))
    assert (refused.value.code, refused.value.field) == ("forbidden_region", "region")
