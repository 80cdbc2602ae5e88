"""The notifications service as a real process on real Kafka, PostgreSQL and the mail sink.

Contract v2: a participant's contact details arrive on the region's participants topic
(`ParticipantRegistered`, erased by a tombstone) and match events carry only the sign-up id. Events are
produced to their region's topics; e-mails are read back from the mail sink, statuses from the
service's HTTP API, NotificationSent/Failed from the region's notifications topic, and what the service
keeps from its database.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import date
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from schemas import (
    Event,
    MatchAssigned,
    MatchUnmatched,
    NotificationRequested,
    OfferSummary,
    ParticipantRegistered,
    Recipient,
    decode_event,
    topic_name,
)
from schemas.topics import NOTIFICATIONS, PARTICIPANTS
from tests.support import STATE, Infra, ServiceProcess, region, services

pytestmark = pytest.mark.integration

MAX_ATTEMPTS = 3
SERVICE_ENV = {
    "NOTIFICATIONS_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
    "NOTIFICATIONS_RETRY_BASE_SECONDS": "0.3",
    "NOTIFICATIONS_RETRY_MAX_SECONDS": "1",
    "NOTIFICATIONS_SEND_POLL_SECONDS": "0.1",
}
REGION = "twente"
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
    """For what `infra.produce` does not do: a chosen partition, a raw value, a tombstone."""
    kafka = AIOKafkaProducer(**infra.kafka.client_kwargs(), enable_idempotence=True)
    await kafka.start()
    try:
        yield kafka
    finally:
        await kafka.stop()


async def publish_on(producer: AIOKafkaProducer, event: Event, partition: int) -> None:
    """`event` on its topic, on `partition` (to order it after other records)."""
    await producer.send_and_wait(topic_name(event), event.model_dump_json().encode(), key=event.key.encode(), partition=partition)


async def tombstone(producer: AIOKafkaProducer, signup_id: str, region_id: str = REGION) -> None:
    """Erase a participant: a null value under their sign-up id on the region's participants topic."""
    await producer.send_and_wait(PARTICIPANTS.name_in(region_id), None, key=signup_id.encode())


def address(prefix: str = "p") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.org"


def participant(
    email: str, language: str = "nl", name: str = "Anna de Vries", region_id: str = REGION, edition: str = EDITION
) -> ParticipantRegistered:
    """A new sign-up's contact details, as registration publishes them on the participants topic."""
    return ParticipantRegistered(
        region=region_id, edition=edition, signup_id=f"s-{uuid.uuid4().hex[:12]}", name=name, email=email,
        language=language,
    )


def assignment(person: ParticipantRegistered, title: str = "Een dag in de bakkerij") -> MatchAssigned:
    offer = OfferSummary(
        offer_id="o-bakery", host_org="bakkerij-van-dam", title=title, date=date(2026, 9, 15), location="Marktstraat 1"
    )
    return MatchAssigned(
        region=person.region, edition=person.edition, signup_id=person.signup_id, run_id=RUN_ID, rank=1, offer=offer
    )


def assigned(infra: Infra, email: str, language: str = "nl", **contact: Any) -> tuple[ParticipantRegistered, MatchAssigned]:
    """A participant's contact details, then their assignment, published."""
    person = participant(email, language, **contact)
    event = assignment(person)
    infra.produce([person, event])
    return person, event


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


async def outcome_events(infra: Infra, ids: set[str], region_id: str = REGION, timeout: float = 20) -> dict[str, list[Event]]:
    """NotificationSent/Failed events about `ids` on the region's notifications topic, read from the start."""
    consumer = AIOKafkaConsumer(
        NOTIFICATIONS.name_in(region_id), **infra.kafka.client_kwargs(), group_id=None, auto_offset_reset="earliest"
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


async def database(infra: Infra) -> asyncpg.Connection:
    """The service's own database role (what the service can read is what it keeps)."""
    return await asyncpg.connect(infra.dsn("notifications"), server_settings={"search_path": "notifications"})


async def tables_holding(conn: asyncpg.Connection, *texts: str) -> dict[str, set[str]]:
    """For each text, the tables of the notifications schema that hold it anywhere (every table, every
    column; bytes read as UTF-8)."""
    tables = [r["table_name"] for r in await conn.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'notifications' AND table_type = 'BASE TABLE'"
    )]
    assert {"notifications", "contacts", "dead_letters", "inbox", "outbox"} <= set(tables), tables
    found: dict[str, set[str]] = {}
    for table in tables:
        for row in await conn.fetch(f'SELECT * FROM notifications."{table}"'):
            values = " ".join(v.decode(errors="replace") if isinstance(v, bytes) else str(v) for v in row.values())
            for text in texts:
                if text in values:
                    found.setdefault(text, set()).add(table)
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- tests ------------------------------------------------------------------------------------------
LANGUAGE_WORDS = {
    "nl": ("Je Estafette-plek: ", "Beste ", "dinsdag 15 september 2026"),
    "de": ("Ihr Estafette-Platz: ", "Guten Tag ", "Dienstag, 15. September 2026"),
    "en": ("Your Estafette place: ", "Dear ", "Tuesday, 15 September 2026"),
}


async def test_one_email_per_assignment_in_the_participants_language(
    infra: Infra, notifications: ServiceProcess
) -> None:
    people = {lang: participant(address(), lang, name=f"Deelnemer {lang}") for lang in LANGUAGE_WORDS}
    events = {lang: assignment(person, title=f"Bakkerij <{lang}>") for lang, person in people.items()}
    infra.produce([*people.values(), *events.values()])

    for lang, event in events.items():
        row = await until(lambda e=event: notification_of(notifications, e.signup_id, "sent"))
        (mail,) = await mails_to(infra, str(people[lang].email))
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
    for person in people.values():  # still exactly one each, after everything settled
        assert len(await mails_to(infra, str(person.email))) == 1


async def test_the_same_event_delivered_twice_sends_one_email(
    infra: Infra, notifications: ServiceProcess, producer: AIOKafkaProducer
) -> None:
    people = [participant(address()) for _ in range(3)]
    infra.produce(people)
    event, marker, late_marker = (assignment(p) for p in people)
    for _ in range(2):  # twice in a row: one batch, or two
        await publish_on(producer, event, partition=0)
    await publish_on(producer, marker, partition=0)  # after the copies: once it is sent, they were handled
    await until(lambda: notification_of(notifications, marker.signup_id, "sent"))
    await until(lambda: notification_of(notifications, event.signup_id, "sent"))

    await publish_on(producer, event, partition=0)  # again, long after the first copy was committed
    await publish_on(producer, late_marker, partition=0)
    await until(lambda: notification_of(notifications, late_marker.signup_id, "sent"))

    assert len(await mails_to(infra, str(people[0].email))) == 1
    assert (await notification_of(notifications, event.signup_id, "sent"))["attempts"] == 1


async def test_a_match_event_before_its_contact_waits_and_is_sent_exactly_once_when_it_arrives(
    infra: Infra, notifications: ServiceProcess, producer: AIOKafkaProducer
) -> None:
    person = participant(address("late"), "en", name="Late Comer")
    event = assignment(person)
    infra.produce([event])  # the match topic is read apart from the participants topic: it may come first

    waiting = await until(lambda: notification_of(notifications, event.signup_id, "awaiting_contact"))
    assert (waiting["language"], waiting["attempts"], waiting["next_attempt_at"]) == (None, 0, None)
    assert await mails_to(infra, str(person.email)) == []

    infra.produce([person])
    row = await until(lambda: notification_of(notifications, event.signup_id, "sent"))
    assert (row["id"], row["attempts"], row["language"]) == (waiting["id"], 1, "en")
    (mail,) = await mails_to(infra, str(person.email))
    assert "Dear Late Comer," in mail["text"] and mail["headers"]["Content-Language"] == "en"

    # The contact again (an update) and the match event again: still one e-mail once both are handled.
    marker_person = participant(address())
    marker = assignment(marker_person)
    infra.produce([person])
    await publish_on(producer, event, partition=0)
    await publish_on(producer, marker, partition=0)
    infra.produce([marker_person])
    await until(lambda: notification_of(notifications, marker.signup_id, "sent"))
    assert len(await mails_to(infra, str(person.email))) == 1
    assert (await notification_of(notifications, event.signup_id, "sent"))["attempts"] == 1


async def test_a_tombstone_erases_the_person_from_every_table_and_fails_a_waiting_message(
    infra: Infra, notifications: ServiceProcess, producer: AIOKafkaProducer
) -> None:
    name, email = f"Erika {uuid.uuid4().hex[:8]}", address("erased")
    org, goal = f"org-{uuid.uuid4().hex[:8]}", f"wil leren {uuid.uuid4().hex[:8]}"  # what a host's list shows
    person = participant(email, "de", name=name).model_copy(update={"org": org, "learning_goal": goal})
    # A record of hers that cannot be read (a language this version does not know) is dead-lettered
    # WITHOUT its value: a record of the personal-data topic is never copied (runtime/consumer.py).
    unreadable = json.dumps(person.model_dump(mode="json") | {"language": "fr"}).encode()
    await producer.send_and_wait(PARTICIPANTS.name_in(REGION), unreadable, key=person.signup_id.encode())
    event = assignment(person)
    infra.produce([person, event])
    await until(lambda: notification_of(notifications, event.signup_id, "sent"))
    waiting_for = participant(address("never"))  # its contact never arrives before the erasure
    waiting = assignment(waiting_for)
    infra.produce([waiting])
    await until(lambda: notification_of(notifications, waiting.signup_id, "awaiting_contact"))

    conn = await database(infra)
    try:
        async def kept() -> dict[str, set[str]] | None:
            found = await tables_holding(conn, name, email, org, goal)
            return found if found.get(name, set()) >= {"contacts"} else None

        before = await until(kept)
        assert before[email] == before[org] == before[goal] == {"contacts"}  # found where she is, and only there
        withheld = await conn.fetch("SELECT value FROM dead_letters WHERE topic = $1", PARTICIPANTS.name_in(REGION))
        assert withheld and all(row["value"] is None for row in withheld)

        await tombstone(producer, person.signup_id)
        await tombstone(producer, waiting.signup_id)

        async def erased() -> bool:
            return not await conn.fetchval("SELECT count(*) FROM contacts WHERE signup_id = $1", person.signup_id)

        await until(erased)
        assert await tables_holding(conn, name, email, org, goal) == {}
        assert await conn.fetchval("SELECT count(*) FROM erased_participants WHERE signup_id = $1", person.signup_id) == 1
    finally:
        await conn.close()

    failed_row = await until(lambda: notification_of(notifications, waiting.signup_id, "failed"))
    assert failed_row["last_error"].startswith("contact_erased") and failed_row["attempts"] == 0
    assert (await notification_of(notifications, event.signup_id, "sent"))["attempts"] == 1  # what was sent stays sent
    (failed,) = (await outcome_events(infra, {failed_row["id"]}))[failed_row["id"]]
    assert (failed.event_type, failed.signup_id, failed.permanent) == ("NotificationFailed", waiting.signup_id, True)
    assert failed.error == failed_row["last_error"] and "@" not in failed.model_dump_json()
    assert await mails_to(infra, str(waiting_for.email)) == []
    log = notifications.log_path.read_text(errors="replace")
    assert name not in log and email not in log


async def test_an_instance_for_one_region_does_not_send_another_regions_emails(
    infra: Infra, notifications: ServiceProcess
) -> None:
    """Instances of regions A and B share the database; B's SMTP relay is down, so B's e-mail stays
    queued and due. A's instance sends A's e-mail and never takes B's, however long it waits."""
    a, b = f"nta-{uuid.uuid4().hex[:6]}", f"ntb-{uuid.uuid4().hex[:6]}"
    infra.add_regions(region(a, partitions=1), region(b, partitions=1))
    down = {**SERVICE_ENV, "NOTIFICATIONS_SMTP_PORT": str(free_port()), "NOTIFICATIONS_MAX_ATTEMPTS": "100000",
            "NOTIFICATIONS_RETRY_BASE_SECONDS": "0.05", "NOTIFICATIONS_RETRY_MAX_SECONDS": "0.05"}
    only_a = ServiceProcess(infra, "notifications", {**SERVICE_ENV, "NOTIFICATIONS_REGIONS": a})
    only_b = ServiceProcess(infra, "notifications", {**down, "NOTIFICATIONS_REGIONS": b, "NOTIFICATIONS_HTTP_PORT": str(port := free_port())})
    only_b.url, only_b.log_path = f"http://127.0.0.1:{port}", STATE / "notifications-b.log"
    notifications.stop()  # the instance of every region would send B's e-mail
    try:
        only_b.start()
        person_b, event_b = assigned(infra, address(), region_id=b, edition=f"{b}-2026")

        async def retrying() -> dict[str, Any] | None:
            row = await notification_of(only_b, event_b.signup_id, "pending")
            return row if row and row["attempts"] >= 2 else None

        row_b = await until(retrying)  # queued, due again and again: there to be taken
        assert "connect" in row_b["last_error"].lower(), row_b

        only_a.start()
        person_a, event_a = assigned(infra, address(), region_id=a, edition=f"{a}-2026")
        await until(lambda: notification_of(only_a, event_a.signup_id, "sent"))
        assert len(await mails_to(infra, str(person_a.email))) == 1

        assert await mails_to(infra, str(person_b.email)) == []
        # still queued (or in B's hands for its next failing try), never sent
        (row_b,) = (await api(only_a, "/notifications", signup_id=event_b.signup_id)).json()["items"]
        assert row_b["status"] in ("pending", "sending"), row_b
    finally:
        only_a.stop()
        only_b.stop()
        notifications.start()
    # B's e-mail was only waiting: an instance of every region (with a working relay) sends it.
    await until(lambda: notification_of(notifications, event_b.signup_id, "sent"), timeout=30)
    assert len(await mails_to(infra, str(person_b.email))) == 1


async def test_two_requests_for_one_notification_send_one_email(
    infra: Infra, notifications: ServiceProcess
) -> None:
    """Different events (the inbox lets both through) naming the same notification: one row, one e-mail."""
    email, notification_id = address(), uuid.uuid4()
    context = {"subject": "Hoe was je Estafette-dag?", "message": "Vertel het ons.\n\nHet duurt twee minuten.", "link": "https://estafette.test/feedback"}
    infra.produce([
        NotificationRequested(
            region=REGION, edition=EDITION, notification_id=notification_id, template="feedback_request",
            recipient=Recipient(name="Piet", email=email, language="nl"), context=context,
        )
        for _ in range(2)
    ])

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


async def test_a_hard_bounce_fails_at_once_and_is_published(infra: Infra, notifications: ServiceProcess) -> None:
    person = participant(address("bounce"), "en", name="Bo")
    bounce = MatchUnmatched(
        region=REGION, edition=EDITION, signup_id=person.signup_id, run_id=RUN_ID,
        reason_code="all_full", reason="all offers full",
    )
    infra.produce([person, bounce])
    _, after = assigned(infra, address(), "en")

    row = await until(lambda: notification_of(notifications, bounce.signup_id, "failed"))
    assert row["attempts"] == 1 and row["failed_at"] is not None
    assert row["last_error"].startswith("recipient refused: 550") and "example.org" not in row["last_error"]
    (failed,) = (await outcome_events(infra, {row["id"]}))[row["id"]]
    assert (failed.event_type, failed.permanent, failed.signup_id) == ("NotificationFailed", True, bounce.signup_id)
    assert failed.template == "match_unmatched" and failed.error == row["last_error"]
    assert await mails_to(infra, str(person.email)) == []

    await until(lambda: notification_of(notifications, after.signup_id, "sent"))  # the sender goes on
    assert notifications.proc is not None and notifications.proc.poll() is None
    assert (await api(notifications, "/healthz")).status_code == 200


async def test_a_temporary_failure_is_retried_then_fails_after_max_attempts(
    infra: Infra, notifications: ServiceProcess
) -> None:
    _, event = assigned(infra, address("softfail"), "de")

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
    infra: Infra, notifications: ServiceProcess
) -> None:
    edition = f"it-api-{uuid.uuid4().hex[:8]}"
    people = [participant(address(), "en", edition=edition) for _ in range(3)]
    people.append(participant(address("bounce"), "en", edition=edition))
    events = [assignment(p) for p in people]
    infra.produce([*people, *events])

    async def settled() -> list[dict[str, Any]] | None:
        items = (await api(notifications, "/notifications", edition=edition)).json()["items"]
        return items if len(items) == 4 and all(i["status"] in ("sent", "failed") for i in items) else None

    items = await until(settled)
    assert sorted(i["status"] for i in items) == ["failed", "sent", "sent", "sent"]
    assert {i["signup_id"] for i in items} == {e.signup_id for e in events}
    for item in items:
        assert not {"email", "recipient_email", "recipient_name", "name", "data", "text", "html"} & set(item)
        assert "example.org" not in str(item) and "Anna" not in str(item)

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
