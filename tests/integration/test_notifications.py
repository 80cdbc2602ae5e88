"""The notifications service as a real process on real Kafka, PostgreSQL and the mail sink.

Events are produced to the real topics; e-mails are read back from the mail sink, statuses from the
service's HTTP API and NotificationSent/Failed from the notifications topic.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import date
from typing import Any, TypeVar

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from schemas import (
    Event,
    MatchAssigned,
    MatchUnmatched,
    NotificationRequested,
    OfferSummary,
    Recipient,
    decode_event,
)
from schemas.topics import MATCHES, NOTIFICATION_REQUESTS, NOTIFICATIONS
from tests.support import Infra, ServiceProcess, services

pytestmark = pytest.mark.integration

MAX_ATTEMPTS = 3
SERVICE_ENV = {
    "NOTIFICATIONS_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
    "NOTIFICATIONS_RETRY_BASE_SECONDS": "0.3",
    "NOTIFICATIONS_RETRY_MAX_SECONDS": "1",
    "NOTIFICATIONS_SEND_POLL_SECONDS": "0.1",
}
EDITION = f"it-{uuid.uuid4().hex[:8]}"
RUN_ID = uuid.uuid4()
T = TypeVar("T")
#: The HTTP API's policy is Organiser: these tests read every region's statuses with an admin key
#: (made by the `notifications` fixture). Access per role: test_notifications_access.py.
ADMIN: dict[str, str] = {}


# --- fixtures and helpers -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def notifications(infra: Infra) -> Iterator[ServiceProcess]:
    ADMIN["Authorization"] = f"Bearer {infra.key('admin')}"
    with services(infra, "notifications", extra_env=SERVICE_ENV) as procs:
        yield procs["notifications"]


@pytest.fixture(scope="module")
async def producer(infra: Infra, notifications: ServiceProcess) -> AsyncIterator[AIOKafkaProducer]:
    kafka = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, enable_idempotence=True)
    await kafka.start()
    try:
        yield kafka
    finally:
        await kafka.stop()


async def publish(producer: AIOKafkaProducer, event: Event, topic: str = MATCHES.name, partition: int | None = None) -> None:
    await producer.send_and_wait(topic, event.model_dump_json().encode(), key=event.key.encode(), partition=partition)


def address(prefix: str = "p") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.org"


def assignment(email: str, language: str = "nl", name: str = "Anna de Vries", title: str = "Een dag in de bakkerij") -> MatchAssigned:
    offer = OfferSummary(
        offer_id="o-bakery", host_org="bakkerij-van-dam", title=title, date=date(2026, 9, 15), location="Marktstraat 1"
    )
    return MatchAssigned(
        region="twente", edition=EDITION, signup_id=f"s-{uuid.uuid4().hex[:12]}", run_id=RUN_ID, rank=1,
        offer=offer, recipient=Recipient(name=name, email=email, language=language),
    )


async def until(check: Callable[[], Awaitable[T]], timeout: float = 20, interval: float = 0.2) -> T:
    """Poll `check()` until it returns a truthy value (returned), else fail with the last value."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")


async def mails_to(infra: Infra, email: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=infra.mail_api, timeout=5) as client:
        response = await client.get("/api/messages", params={"to": email})
    response.raise_for_status()
    return [m for m in response.json() if email in m["to"]]


async def api(notifications: ServiceProcess, path: str, **params: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=notifications.url, timeout=5) as client:
        return await client.get(path, params=params, headers=ADMIN)


async def notification_of(notifications: ServiceProcess, signup_id: str, status: str) -> dict[str, Any] | None:
    """The signup's only notification once it has `status` (fails if there are several)."""
    items = (await api(notifications, "/notifications", signup_id=signup_id)).json()["items"]
    assert len(items) <= 1, items
    return items[0] if items and items[0]["status"] == status else None


async def outcome_events(infra: Infra, ids: set[str], timeout: float = 20) -> dict[str, list[Event]]:
    """NotificationSent/Failed events about `ids` on the notifications topic, read from the start."""
    consumer = AIOKafkaConsumer(
        NOTIFICATIONS.name, bootstrap_servers=infra.kafka_bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    found: dict[str, list[Event]] = {}
    try:
        deadline = time.monotonic() + timeout
        while set(found) != ids and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    event = decode_event(record.value)
                    if str(event.notification_id) in ids:
                        found.setdefault(str(event.notification_id), []).append(event)
    finally:
        await consumer.stop()
    assert set(found) == ids, f"no outcome event for {ids - set(found)}"
    return found


# --- tests ------------------------------------------------------------------------------------------
LANGUAGE_WORDS = {
    "nl": ("Je Estafette-plek: ", "Beste ", "dinsdag 15 september 2026"),
    "de": ("Ihr Estafette-Platz: ", "Guten Tag ", "Dienstag, 15. September 2026"),
    "en": ("Your Estafette place: ", "Dear ", "Tuesday, 15 September 2026"),
}


async def test_one_email_per_assignment_in_the_participants_language(
    infra: Infra, notifications: ServiceProcess, producer: AIOKafkaProducer
) -> None:
    events = {lang: assignment(address(), lang, name=f"Deelnemer {lang}", title=f"Bakkerij <{lang}>") for lang in LANGUAGE_WORDS}
    for event in events.values():
        await publish(producer, event)

    for lang, event in events.items():
        row = await until(lambda e=event: notification_of(notifications, e.signup_id, "sent"))
        (mail,) = await mails_to(infra, str(event.recipient.email))
        subject, greeting, when = LANGUAGE_WORDS[lang]
        assert mail["subject"] == f"{subject}Bakkerij <{lang}>"
        assert mail["headers"]["Content-Language"] == lang
        assert mail["headers"]["Message-ID"] == f"<{row['id']}@estafette.local>"
        assert f"{greeting}Deelnemer {lang}" in mail["text"]
        assert when in mail["text"] and "Marktstraat 1" in mail["text"]
        assert f"Bakkerij &lt;{lang}&gt;" in mail["html"] and f"Bakkerij <{lang}>" not in mail["html"]
        assert (row["attempts"], row["template"], row["language"], row["edition"]) == (1, "match_assigned", lang, EDITION)
        assert row["sent_at"] is not None and row["last_error"] is None

    rows = {e.signup_id: await notification_of(notifications, e.signup_id, "sent") for e in events.values()}
    published = await outcome_events(infra, {r["id"] for r in rows.values()})
    correlation = {e.signup_id: e.correlation_id for e in events.values()}
    for signup_id, row in rows.items():
        (sent,) = published[row["id"]]
        assert (sent.event_type, sent.signup_id, sent.template) == ("NotificationSent", signup_id, "match_assigned")
        assert sent.correlation_id == correlation[signup_id] and row["correlation_id"] == str(correlation[signup_id])
    for event in events.values():  # still exactly one each, after everything settled
        assert len(await mails_to(infra, str(event.recipient.email))) == 1


async def test_the_same_event_delivered_twice_sends_one_email(
    infra: Infra, notifications: ServiceProcess, producer: AIOKafkaProducer
) -> None:
    event = assignment(address())
    for _ in range(2):  # twice in a row: one batch, or two
        await publish(producer, event, partition=0)
    marker = assignment(address())  # same partition, after the copies: once it is sent, they were handled
    await publish(producer, marker, partition=0)
    await until(lambda: notification_of(notifications, marker.signup_id, "sent"))
    await until(lambda: notification_of(notifications, event.signup_id, "sent"))

    await publish(producer, event, partition=0)  # again, long after the first copy was committed
    late_marker = assignment(address())
    await publish(producer, late_marker, partition=0)
    await until(lambda: notification_of(notifications, late_marker.signup_id, "sent"))

    assert len(await mails_to(infra, str(event.recipient.email))) == 1
    assert (await notification_of(notifications, event.signup_id, "sent"))["attempts"] == 1


async def test_two_requests_for_one_notification_send_one_email(
    infra: Infra, notifications: ServiceProcess, producer: AIOKafkaProducer
) -> None:
    """Different events (the inbox lets both through) naming the same notification: one row, one e-mail."""
    email, notification_id = address(), uuid.uuid4()
    context = {"subject": "Hoe was je Estafette-dag?", "message": "Vertel het ons.\n\nHet duurt twee minuten.", "link": "https://estafette.test/feedback"}
    for _ in range(2):
        request = NotificationRequested(
            region="twente", edition=EDITION, notification_id=notification_id, template="feedback_request",
            recipient=Recipient(name="Piet", email=email, language="nl"), context=context,
        )
        await publish(producer, request, topic=NOTIFICATION_REQUESTS.name)

    row = await until(lambda: _sent(notifications, notification_id))
    (sent,) = (await outcome_events(infra, {str(notification_id)}))[str(notification_id)]
    (mail,) = await mails_to(infra, email)
    assert (row["kind"], row["template"], sent.template) == ("generic", "feedback_request", "feedback_request")
    assert mail["subject"] == "Hoe was je Estafette-dag?"
    assert "Beste Piet," in mail["text"] and "Het duurt twee minuten." in mail["text"]
    assert 'href="https://estafette.test/feedback"' in mail["html"]


async def _sent(notifications: ServiceProcess, notification_id: uuid.UUID) -> dict[str, Any] | None:
    response = await api(notifications, f"/notifications/{notification_id}")
    return response.json() if response.status_code == 200 and response.json()["status"] == "sent" else None


async def test_a_hard_bounce_fails_at_once_and_is_published(
    infra: Infra, notifications: ServiceProcess, producer: AIOKafkaProducer
) -> None:
    bounce = MatchUnmatched(
        region="twente", edition=EDITION, signup_id=f"s-{uuid.uuid4().hex[:12]}", run_id=RUN_ID,
        reason_code="all_full", reason="all offers full",
        recipient=Recipient(name="Bo", email=address("bounce"), language="en"),
    )
    after = assignment(address(), "en")
    await publish(producer, bounce)
    await publish(producer, after)

    row = await until(lambda: notification_of(notifications, bounce.signup_id, "failed"))
    assert row["attempts"] == 1 and row["failed_at"] is not None
    assert row["last_error"].startswith("recipient refused: 550") and "example.org" not in row["last_error"]
    (failed,) = (await outcome_events(infra, {row["id"]}))[row["id"]]
    assert (failed.event_type, failed.permanent, failed.signup_id) == ("NotificationFailed", True, bounce.signup_id)
    assert failed.template == "match_unmatched" and failed.error == row["last_error"]
    assert await mails_to(infra, str(bounce.recipient.email)) == []

    await until(lambda: notification_of(notifications, after.signup_id, "sent"))  # the sender goes on
    assert notifications.proc is not None and notifications.proc.poll() is None
    assert (await api(notifications, "/healthz")).status_code == 200


async def test_a_temporary_failure_is_retried_then_fails_after_max_attempts(
    infra: Infra, notifications: ServiceProcess, producer: AIOKafkaProducer
) -> None:
    event = assignment(address("softfail"), "de")
    await publish(producer, event)

    row = await until(lambda: notification_of(notifications, event.signup_id, "failed"))
    assert row["attempts"] == MAX_ATTEMPTS
    assert row["last_error"].startswith("recipient refused: 451") and "example.org" not in row["last_error"]
    assert row["failed_at"] is not None and row["next_attempt_at"] is None
    (failed,) = (await outcome_events(infra, {row["id"]}))[row["id"]]
    assert (failed.event_type, failed.permanent, failed.signup_id) == ("NotificationFailed", False, event.signup_id)

    metrics = (await api(notifications, "/metrics")).text
    retried = 'emails_retried_total{language="de",template="match_assigned"}'
    assert _metric(metrics, retried) >= MAX_ATTEMPTS - 1
    assert _metric(metrics, 'emails_failed_total{language="de",permanent="false",template="match_assigned"}') >= 1


def _metric(text: str, sample: str) -> float:
    (line,) = [line for line in text.splitlines() if line.startswith(sample + " ")]
    return float(line.split()[-1])


async def test_organisers_see_statuses_without_bodies_or_personal_data(
    notifications: ServiceProcess, producer: AIOKafkaProducer
) -> None:
    edition = f"it-api-{uuid.uuid4().hex[:8]}"
    events = [assignment(address(), "en").model_copy(update={"edition": edition}) for _ in range(3)]
    events.append(assignment(address("bounce"), "en").model_copy(update={"edition": edition}))
    for event in events:
        await publish(producer, event)

    async def settled() -> list[dict[str, Any]] | None:
        items = (await api(notifications, "/notifications", edition=edition)).json()["items"]
        return items if len(items) == 4 and all(i["status"] != "pending" for i in items) else None

    items = await until(settled)
    assert sorted(i["status"] for i in items) == ["failed", "sent", "sent", "sent"]
    assert {i["signup_id"] for i in items} == {e.signup_id for e in events}
    for item in items:
        assert not {"email", "recipient_email", "recipient_name", "name", "data", "text", "html"} & set(item)
        assert "example.org" not in str(item)

    failed = (await api(notifications, "/notifications", edition=edition, status="failed")).json()
    assert [i["signup_id"] for i in failed["items"]] == [events[-1].signup_id]

    first = (await api(notifications, "/notifications", edition=edition, limit=3)).json()
    rest = (await api(notifications, "/notifications", edition=edition, limit=3, after=first["next_after"])).json()
    assert [i["id"] for i in first["items"] + rest["items"]] == [i["id"] for i in items]
    assert rest["next_after"] is None

    one = await api(notifications, f"/notifications/{items[0]['id']}")
    assert one.status_code == 200 and one.json() == items[0]

    missing = await api(notifications, f"/notifications/{uuid.uuid4()}")
    assert missing.status_code == 404 and missing.json()["error"] == "unknown_notification"
    invalid = await api(notifications, "/notifications", status="lost")
    assert invalid.status_code == 422 and invalid.json()["field"] == "query.status"
