"""The notifications use cases against a fake unit of work: no database, no Kafka, no SMTP."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import structlog
from aiosmtplib import SMTPRecipientRefused, SMTPRecipientsRefused
from structlog.testing import LogCapture

from estafette.runtime.access import Principal
from estafette.runtime.clock import Clock
from estafette.runtime.consumer import dispatch
from estafette.runtime.errors import NotFound
from schemas import NotificationFailed, NotificationSent
from estafette.runtime.errors import Forbidden
from services.notifications import domain, handlers, service
from services.notifications.rendering import Renderer
from services.notifications.repository import Repository
from tests.unit.fakes import FakeUnitOfWork
from tests.unit.notifications import builders
from tests.unit.notifications.fakes import FakeMailer, FakeRenderer, FakeRepository

SENDER = "Estafette <no-reply@estafette.example>"
GRONINGEN_EDITION = "wvdu-2026-groningen"
POLICY = domain.RetryPolicy(max_attempts=3, base_seconds=60, max_seconds=3600)
BOUNCE = SMTPRecipientsRefused([SMTPRecipientRefused(550, "5.1.1 <anna@example.org>: mailbox unavailable", "anna@example.org")])


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


@pytest.fixture
def uow() -> FakeUnitOfWork[FakeRepository]:
    return FakeUnitOfWork(FakeRepository())


async def record(uow: FakeUnitOfWork[FakeRepository], *events: object) -> None:
    """As the consumers do: each event through the service's dispatch tables, in one transaction."""
    handle = dispatch({**handlers.matches(builders.answer_links(), builders.journey()), **handlers.PARTICIPANTS, **handlers.REQUESTS})
    async with uow.transaction() as tx:
        for event in events:
            await handle(tx, event)  # type: ignore[arg-type]


async def register(uow: FakeUnitOfWork[FakeRepository], *signup_ids: str, **contact: str) -> None:
    """The participants' contact details arrive (ParticipantRegistered), e.g. language="nl"."""
    await record(uow, *(builders.participant(s, **contact) for s in signup_ids))


async def erase(uow: FakeUnitOfWork[FakeRepository], signup_id: str) -> None:
    """A tombstone on the participants topic, as the consumer hands it over."""
    async with uow.transaction() as tx:
        await handlers.participant_erased(tx, signup_id)  # type: ignore[arg-type]


async def send(uow: FakeUnitOfWork[FakeRepository], renderer: Renderer, mailer: FakeMailer) -> service.Attempt | None:
    return await service.send_next(uow, mailer, renderer, SENDER, POLICY)


# --- recording ------------------------------------------------------------------------------------
async def test_each_event_records_one_pending_message_of_its_kind(uow: FakeUnitOfWork[FakeRepository]) -> None:
    await register(uow, "s-1", "s-2", "s-3", "s-4")
    events = [builders.assigned("s-1"), builders.waitlisted("s-2"), builders.unmatched("s-3"),
              builders.seat_offered("s-4"), builders.request()]
    await record(uow, *events)

    rows = list(uow.repo.rows.values())
    assert [r.message.kind for r in rows] == ["assigned", "waitlisted", "unmatched", "seat_offered", "generic"]
    assert {r.status for r in rows} == {"pending"}
    assert [r.message.source_event_id for r in rows] == [e.event_id for e in events]
    assert uow.repo.wakes == 5 and uow.published == []


async def test_a_redelivered_event_or_a_repeated_request_records_nothing_more(uow: FakeUnitOfWork[FakeRepository]) -> None:
    event, request = builders.assigned(), builders.request()
    again = request.model_copy(update={"event_id": uuid.uuid4()})  # another event, the same notification
    await register(uow, "s-1")
    await record(uow, event, request)
    await record(uow, event, again)

    assert set(uow.repo.rows) == {domain.notification_id(event.event_id), request.notification_id}
    assert uow.repo.wakes == 2


async def test_a_seat_offer_is_recorded_with_its_signed_answer_links_and_an_ended_one_is_not_emailed(
    uow: FakeUnitOfWork[FakeRepository],
) -> None:
    await record(uow, builders.seat_offered(), builders.seat_offer_ended())

    (row,) = uow.repo.rows.values()
    for answer in ("accept", "decline"):
        url = row.message.data[f"{answer}_url"]
        prefix, _, token = url.removesuffix(f"/{answer}").rpartition("/")
        assert prefix == "https://matching.example.org/links/seat-offers"
        claims = builders.LINKS.read(token, f"seat_offer_{answer}", 3600)
        assert (claims.signup_id, claims.edition_id) == ("s-1", builders.EDITION)


async def test_the_seat_offer_links_are_in_the_email_and_never_in_the_logs(
    uow: FakeUnitOfWork[FakeRepository], renderer: Renderer, monkeypatch: pytest.MonkeyPatch
) -> None:
    capture = LogCapture()
    monkeypatch.setattr(service, "log", structlog.wrap_logger(None, processors=[structlog.contextvars.merge_contextvars, capture]))
    await register(uow, "s-1")
    await record(uow, builders.seat_offered())
    (row,) = uow.repo.rows.values()
    mailer = FakeMailer()

    attempt = await send(uow, renderer, mailer)

    assert attempt is not None and attempt.status == "sent"
    (mail,) = mailer.sent
    text, html = (part.get_content() for part in mail.iter_parts())
    for link in (row.message.data["accept_url"], row.message.data["decline_url"]):
        assert link in text and f'href="{link}"' in html
        assert link.rsplit("/", 2)[1] not in str(capture.entries)
    assert [e["event"] for e in capture.entries] == ["e-mail sent"]


# --- contact details: only from the participants topic ------------------------------------------------
async def test_a_match_event_before_its_contact_waits_and_is_sent_once_when_the_contact_arrives(
    uow: FakeUnitOfWork[FakeRepository], renderer: Renderer
) -> None:
    event = builders.assigned("s-1")
    await record(uow, event)
    mailer = FakeMailer()

    (waiting,) = (await service.notifications(uow, builders.ADMIN)).items
    assert (waiting.status, waiting.language, uow.repo.wakes) == ("awaiting_contact", None, 0)
    assert await send(uow, renderer, mailer) is None and mailer.sent == []
    assert (await service.backlog(uow)).awaiting_contact == 1

    await register(uow, "s-1", name="Bo Jansen", email="bo@example.org", language="en")
    assert uow.repo.wakes == 1
    attempt = await send(uow, renderer, mailer)

    assert attempt is not None and attempt.status == "sent" and attempt.message.id == waiting.id
    (mail,) = mailer.sent
    assert mail["To"] == "Bo Jansen <bo@example.org>" and mail["Content-Language"] == "en"
    assert "Dear Bo Jansen," in mail.get_body(("plain",)).get_content()
    await register(uow, "s-1", name="Bo Jansen", email="bo@example.org", language="en")  # again: nothing new
    await record(uow, event)  # the match event redelivered: nothing new
    assert await send(uow, renderer, mailer) is None and len(mailer.sent) == 1
    view = await service.notification(uow, builders.ADMIN, waiting.id)
    assert (view.status, view.language, len(uow.of_type(NotificationSent))) == ("sent", "en", 1)


async def test_the_recipient_is_looked_up_when_the_message_is_sent(
    uow: FakeUnitOfWork[FakeRepository], renderer: Renderer
) -> None:
    await register(uow, "s-1", email="old@example.org", language="nl")
    await record(uow, builders.assigned("s-1"))
    await register(uow, "s-1", name="Anna Visser", email="new@example.org", language="de")  # details changed

    attempt = await send(uow, renderer, mailer := FakeMailer())

    assert attempt is not None and attempt.status == "sent"
    (mail,) = mailer.sent
    assert (mail["To"], mail["Content-Language"]) == ("Anna Visser <new@example.org>", "de")
    assert uow.repo.rows[attempt.message.id].message.email is None  # never copied into the message


async def test_every_participant_use_case_takes_the_participants_lock(uow: FakeUnitOfWork[FakeRepository]) -> None:
    """So a message recorded while their contact arrives (another consumer, in parallel) cannot be left
    waiting for it: the one that takes the lock second sees what the first committed."""
    await record(uow, builders.assigned("s-1"), builders.participant("s-2"), builders.request())
    await erase(uow, "s-3")
    assert uow.repo.locks == ["s-1", "s-2", "s-3"]


def personal_data(uow: FakeUnitOfWork[FakeRepository], *values: str) -> list[str]:
    """Which of `values` appear anywhere in the repository's state or in the published events."""
    state = repr(vars(uow.repo)) + repr(uow.published)
    return [v for v in values if v in state]


async def test_erasure_deletes_the_contact_and_every_copy_and_fails_what_was_not_sent(
    uow: FakeUnitOfWork[FakeRepository], renderer: Renderer
) -> None:
    person = {"name": "Carla Zwart", "email": "carla@example.org"}
    await register(uow, "s-1", **person)
    await record(uow, builders.assigned("s-1"))
    sent = await send(uow, renderer, FakeMailer())
    await record(uow, builders.waitlisted("s-1"))  # queued, not sent yet
    legacy = dataclasses.replace(  # a message recorded under contract v1, with its recipient copied in
        domain.from_match(builders.unmatched("s-1")), id=uuid.uuid4(), source_event_id=uuid.uuid4(),
        name=person["name"], email=person["email"], language="de",
    )
    await uow.repo.insert(legacy, "sent", "de")
    uow.repo.dead_letters += [json.dumps({**person, "signup_id": "s-1", "language": "fr"}).encode(),
                              json.dumps({"signup_id": "s-2", "name": "Other"}).encode()]
    await register(uow, "s-2", name="Other", email="other@example.org")
    await record(uow, builders.assigned("s-2"))
    assert personal_data(uow, *person.values()) == list(person.values())
    uow.published.clear()

    await erase(uow, "s-1")

    assert personal_data(uow, *person.values()) == []
    assert await uow.repo.contact("s-1") is None and await uow.repo.erased("s-1")
    items = {v.kind: v for v in (await service.notifications(uow, builders.ADMIN, signup_id="s-1")).items}
    assert sent is not None and items["assigned"].status == "sent" and items["unmatched"].status == "sent"
    assert (items["waitlisted"].status, items["waitlisted"].last_error) == ("failed", domain.CONTACT_ERASED)
    (failed,) = uow.published
    assert isinstance(failed, NotificationFailed)
    assert (failed.notification_id, failed.signup_id, failed.permanent, failed.template) == (
        items["waitlisted"].id, "s-1", True, "match_waitlisted"
    )
    assert failed.error.startswith("contact_erased")
    # the other participant is untouched
    assert (await uow.repo.contact("s-2")) is not None and len(uow.repo.dead_letters) == 1
    assert [v.status for v in (await service.notifications(uow, builders.ADMIN, signup_id="s-2")).items] == ["pending"]


async def test_erasure_fails_a_message_still_awaiting_the_contact(uow: FakeUnitOfWork[FakeRepository]) -> None:
    correlation_id = uuid.uuid4()
    await record(uow, builders.assigned("s-1", correlation_id=correlation_id))

    await erase(uow, "s-1")
    await register(uow, "s-2")  # another participant's contact arriving releases nothing of s-1

    (view,) = (await service.notifications(uow, builders.ADMIN)).items
    assert (view.status, view.last_error, view.failed_at is not None) == ("failed", domain.CONTACT_ERASED, True)
    (failed,) = uow.of_type(NotificationFailed)
    assert (failed.notification_id, failed.correlation_id, failed.permanent) == (view.id, correlation_id, True)
    assert "@" not in failed.model_dump_json()
    assert (await service.backlog(uow)).awaiting_contact == 0


async def test_a_match_event_after_the_erasure_fails_at_once_and_a_new_registration_is_served(
    uow: FakeUnitOfWork[FakeRepository], renderer: Renderer
) -> None:
    await register(uow, "s-1")
    await erase(uow, "s-1")

    await record(uow, builders.assigned("s-1"))

    (view,) = (await service.notifications(uow, builders.ADMIN)).items
    assert (view.status, view.last_error) == ("failed", domain.CONTACT_ERASED)
    (failed,) = uow.of_type(NotificationFailed)
    assert failed.notification_id == view.id and uow.repo.wakes == 0

    await register(uow, "s-1", email="again@example.org")  # registered again under the same id
    await record(uow, builders.waitlisted("s-1"))
    attempt = await send(uow, renderer, mailer := FakeMailer())
    assert attempt is not None and attempt.status == "sent" and mailer.sent[0]["To"].addresses[0].addr_spec == "again@example.org"


async def test_a_queued_message_without_any_address_fails_without_an_attempt(
    uow: FakeUnitOfWork[FakeRepository], renderer: Renderer
) -> None:
    await register(uow, "s-1")
    await record(uow, builders.assigned("s-1"))
    uow.repo.contacts.clear()  # gone behind the service's back

    attempt = await send(uow, renderer, mailer := FakeMailer())

    assert attempt is not None and attempt.status == "failed" and mailer.sent == []
    (failed,) = uow.of_type(NotificationFailed)
    assert (failed.permanent, failed.error) == (True, domain.NO_ADDRESS)


# --- regions: an instance sends only its regions' messages ------------------------------------------
async def test_an_instance_for_some_regions_sends_only_their_messages(
    uow: FakeUnitOfWork[FakeRepository], renderer: Renderer
) -> None:
    await record(uow, builders.participant("s-g", region="groningen", edition=GRONINGEN_EDITION),
             builders.assigned("s-g", region="groningen", edition=GRONINGEN_EDITION))
    uow.repo.later(1)  # groningen's message is the older one
    await record(uow, builders.participant("s-t"), builders.assigned("s-t"))
    mailer = FakeMailer()

    sent = await service.send_next(uow, mailer, renderer, SENDER, POLICY, regions=("twente",))
    assert sent is not None and sent.message.signup_id == "s-t"
    assert await service.send_next(uow, mailer, renderer, SENDER, POLICY, regions=("twente", "drenthe")) is None
    assert (await service.backlog(uow, ("twente",))).pending == 0
    assert (await service.backlog(uow, ("groningen",))).pending == 1
    other = await service.send_next(uow, mailer, renderer, SENDER, POLICY)  # an instance of every region
    assert other is not None and other.message.signup_id == "s-g"


# --- sending --------------------------------------------------------------------------------------
async def test_sending_marks_sent_and_publishes_notification_sent_with_the_correlation_id(
    uow: FakeUnitOfWork[FakeRepository], renderer: Renderer
) -> None:
    correlation_id = uuid.uuid4()
    await register(uow, "s-1", language="nl")
    await record(uow, builders.assigned(correlation_id=correlation_id))
    mailer = FakeMailer()

    attempt = await send(uow, renderer, mailer)

    assert attempt is not None and (attempt.status, attempt.number) == ("sent", 1)
    (mail,) = mailer.sent
    assert mail["Subject"] == "Je Estafette-plek: Visit" and mail["Content-Language"] == "nl"
    (sent,) = uow.of_type(NotificationSent)
    assert (sent.notification_id, sent.correlation_id, sent.signup_id, sent.template) == (
        attempt.message.id, correlation_id, "s-1", "match_assigned"
    )
    view = await service.notification(uow, builders.ADMIN, attempt.message.id)
    assert (view.status, view.attempts, view.sent_at is not None) == ("sent", 1, True)
    assert await send(uow, renderer, mailer) is None  # nothing else is due


async def test_the_sent_log_line_carries_the_correlation_and_notification_ids(
    uow: FakeUnitOfWork[FakeRepository], renderer: Renderer, monkeypatch: pytest.MonkeyPatch
) -> None:
    correlation_id = uuid.uuid4()
    await register(uow, "s-1")
    await record(uow, builders.assigned(correlation_id=correlation_id))
    # A logger of its own (not the global configuration, which other tests may have cached).
    capture = LogCapture()
    monkeypatch.setattr(service, "log", structlog.wrap_logger(None, processors=[structlog.contextvars.merge_contextvars, capture]))
    attempt = await send(uow, renderer, FakeMailer())

    assert attempt is not None
    (line,) = [e for e in capture.entries if e["event"] == "e-mail sent"]
    assert line["correlation_id"] == str(correlation_id) and line["notification_id"] == str(attempt.message.id)
    assert "anna@example.org" not in str(capture.entries) and "Anna" not in str(capture.entries)
    assert not {"correlation_id", "notification_id"} & set(structlog.contextvars.get_contextvars())  # unbound after


async def test_a_temporary_failure_keeps_the_message_pending_until_the_retry_delay(
    uow: FakeUnitOfWork[FakeRepository], renderer: Renderer
) -> None:
    await register(uow, "s-1")
    await record(uow, builders.assigned())
    mailer = FakeMailer(ConnectionRefusedError(111, "Connection refused"))

    attempt = await send(uow, renderer, mailer)

    assert attempt is not None and (attempt.status, attempt.retry_in) == ("pending", 60)
    assert attempt.failure is not None and attempt.failure.permanent is False
    view = await service.notification(uow, builders.ADMIN, attempt.message.id)
    assert (view.status, view.attempts, view.last_error) == ("pending", 1, "ConnectionRefusedError: [Errno 111] Connection refused")
    assert view.next_attempt_at == uow.repo.now + timedelta(seconds=60)
    assert uow.published == []
    assert await send(uow, renderer, mailer) is None  # not due yet
    uow.repo.later(60)
    retried = await send(uow, renderer, mailer)
    assert retried is not None and (retried.status, retried.number) == ("sent", 2)


async def test_a_permanent_failure_fails_at_once_and_publishes_notification_failed(
    uow: FakeUnitOfWork[FakeRepository], renderer: Renderer
) -> None:
    correlation_id = uuid.uuid4()
    await register(uow, "s-1")
    await record(uow, builders.assigned(correlation_id=correlation_id))

    attempt = await send(uow, renderer, FakeMailer(BOUNCE))

    assert attempt is not None and attempt.status == "failed"
    (failed,) = uow.of_type(NotificationFailed)
    assert (failed.permanent, failed.correlation_id, failed.notification_id) == (True, correlation_id, attempt.message.id)
    assert failed.error == "recipient refused: 550 5.1.1 <<address>>: mailbox unavailable"
    view = await service.notification(uow, builders.ADMIN, attempt.message.id)
    assert (view.status, view.attempts, view.failed_at is not None, view.next_attempt_at) == ("failed", 1, True, None)


async def test_a_temporary_failure_on_the_last_attempt_fails_the_message(
    uow: FakeUnitOfWork[FakeRepository], renderer: Renderer
) -> None:
    await register(uow, "s-1")
    await record(uow, builders.assigned())
    mailer = FakeMailer(*[TimeoutError("timed out")] * POLICY.max_attempts)

    statuses = []
    for _ in range(POLICY.max_attempts):
        attempt = await send(uow, renderer, mailer)
        assert attempt is not None
        statuses.append((attempt.number, attempt.status))
        uow.repo.later(3600)

    assert statuses == [(1, "pending"), (2, "pending"), (3, "failed")]
    (failed,) = uow.of_type(NotificationFailed)
    assert failed.permanent is False and uow.of_type(NotificationSent) == []


async def test_a_request_that_cannot_be_rendered_fails_permanently_without_sending(
    uow: FakeUnitOfWork[FakeRepository], renderer: Renderer
) -> None:
    await record(uow, builders.request(link="javascript:alert(1)", message="Hi"))
    mailer = FakeMailer()

    attempt = await send(uow, renderer, mailer)

    assert attempt is not None and attempt.status == "failed" and mailer.sent == []
    (failed,) = uow.of_type(NotificationFailed)
    assert failed.permanent is True and failed.template == "feedback_reminder" and "http(s)" in failed.error


# --- status ---------------------------------------------------------------------------------------
async def test_an_unknown_notification_is_not_found(uow: FakeUnitOfWork[FakeRepository]) -> None:
    with pytest.raises(NotFound) as refused:
        await service.notification(uow, builders.ADMIN, uuid.uuid4())
    assert refused.value.code == "unknown_notification"


async def test_statuses_are_paged_oldest_first(uow: FakeUnitOfWork[FakeRepository], renderer: Renderer) -> None:
    for n in range(5):
        await register(uow, f"s-{n}")
        await record(uow, builders.assigned(f"s-{n}"))
        uow.repo.later(1)
    await send(uow, renderer, FakeMailer(BOUNCE))

    first = await service.notifications(uow, builders.ADMIN, edition=builders.EDITION, limit=3)
    rest = await service.notifications(uow, builders.ADMIN, edition=builders.EDITION, limit=3, after=first.next_after)
    assert [v.signup_id for v in first.items + rest.items] == [f"s-{n}" for n in range(5)]
    assert first.next_after == first.items[-1].id and rest.next_after is None
    failed = await service.notifications(uow, builders.ADMIN, status="failed")
    assert [v.signup_id for v in failed.items] == ["s-0"]
    backlog = await service.backlog(uow)
    assert (backlog.pending, backlog.oldest_seconds) == (4, 4.0)


# --- who sees which messages (the one scoping rule: Principal.sees) -----------------------------------


async def two_regions(uow: FakeUnitOfWork[FakeRepository]) -> dict[str, domain.NewNotification]:
    """Three messages in twente and two in groningen, recorded one second apart; by signup id."""
    for n in range(5):
        region, edition = ("twente", builders.EDITION) if n % 2 == 0 else ("groningen", GRONINGEN_EDITION)
        await record(uow, builders.participant(f"s-{n}", region=region, edition=edition))
        await record(uow, builders.assigned(f"s-{n}", region=region, edition=edition))
        uow.repo.later(1)
    return {r.message.signup_id: r.message for r in uow.repo.rows.values()}  # type: ignore[misc]


async def test_an_admin_sees_every_region_and_an_organiser_only_their_own(uow: FakeUnitOfWork[FakeRepository]) -> None:
    await two_regions(uow)

    everything = await service.notifications(uow, builders.ADMIN)
    twente = await service.notifications(uow, builders.organiser("twente"))
    groningen = await service.notifications(uow, builders.organiser("groningen"))

    assert [v.signup_id for v in everything.items] == ["s-0", "s-1", "s-2", "s-3", "s-4"]
    assert [v.signup_id for v in twente.items] == ["s-0", "s-2", "s-4"]
    assert [v.signup_id for v in groningen.items] == ["s-1", "s-3"]


async def test_an_edition_of_another_region_gives_an_organiser_an_empty_page(uow: FakeUnitOfWork[FakeRepository]) -> None:
    await two_regions(uow)

    other = await service.notifications(uow, builders.organiser("twente"), edition=GRONINGEN_EDITION)
    by_signup = await service.notifications(uow, builders.organiser("twente"), signup_id="s-1")

    assert (other.items, other.next_after) == ([], None)
    assert by_signup.items == []
    assert len((await service.notifications(uow, builders.ADMIN, edition=GRONINGEN_EDITION)).items) == 2


async def test_an_organisers_pages_hold_only_their_region(uow: FakeUnitOfWork[FakeRepository]) -> None:
    await two_regions(uow)
    twente = builders.organiser("twente")

    first = await service.notifications(uow, twente, limit=2)
    rest = await service.notifications(uow, twente, limit=2, after=first.next_after)

    assert [v.signup_id for v in first.items + rest.items] == ["s-0", "s-2", "s-4"]
    assert rest.next_after is None


async def test_another_regions_message_is_not_found_exactly_like_an_unknown_one(uow: FakeUnitOfWork[FakeRepository]) -> None:
    messages = await two_regions(uow)
    twente = builders.organiser("twente")

    assert (await service.notification(uow, twente, messages["s-0"].id)).region == "twente"
    with pytest.raises(NotFound) as other:
        await service.notification(uow, twente, messages["s-1"].id)
    unknown_id = uuid.uuid4()
    with pytest.raises(NotFound) as unknown:
        await service.notification(uow, twente, unknown_id)
    assert other.value.code == unknown.value.code == "unknown_notification"
    assert other.value.message == unknown.value.message.replace(str(unknown_id), str(messages["s-1"].id))
    assert (await service.notification(uow, builders.ADMIN, messages["s-1"].id)).region == "groningen"


@pytest.mark.parametrize(
    "principal",
    [builders.NATIONAL, Principal("anonymous"), Principal("participant", signup_id="s-0", edition_id=builders.EDITION),
     Principal("organiser", region=None)],
    ids=["national", "anonymous", "participant", "organiser-without-region"],
)
async def test_who_may_not_see_personal_data_is_refused(uow: FakeUnitOfWork[FakeRepository], principal: Principal) -> None:
    messages = await two_regions(uow)

    with pytest.raises(Forbidden):
        await service.notifications(uow, principal)
    if principal.role != "organiser":
        with pytest.raises(Forbidden):
            await service.notification(uow, principal, messages["s-0"].id)


# --- the journey ------------------------------------------------------------------------------------------
DAY_BEFORE = datetime(2026, 9, 14, 7, 0, tzinfo=UTC)  # 09:00 in Amsterdam, the day before the visit
VISIT_END = datetime(2026, 9, 15, 10, 0, tzinfo=UTC)  # 12:00 in Amsterdam


class Journey:
    """The journey's consumers and steps over one fake unit of work, with a clock the test moves."""

    def __init__(self, uow: FakeUnitOfWork[FakeRepository]) -> None:
        self.uow = uow
        self.clock = Clock(fixed_now=builders.NOW)
        self.journey = builders.journey(self.clock)
        self.handle = dispatch({
            **handlers.editions(self.journey), **handlers.offers(self.journey), **handlers.signups(self.journey),
            **handlers.matches(builders.answer_links(), self.journey), **handlers.PARTICIPANTS, **handlers.REQUESTS,
        })
        self.steps = handlers.steps(self.journey)

    async def events(self, *events: object) -> None:
        async with self.uow.transaction() as tx:
            for event in events:
                await self.handle(tx, event)  # type: ignore[arg-type]

    def at(self, moment: datetime) -> None:
        self.clock = Clock(fixed_now=moment)
        object.__setattr__(self.journey, "clock", self.clock)

    async def run_due(self) -> list[str]:
        """Run every scheduled step due on the clock, as the scheduler does (the step is done after)."""
        ran = []
        for (kind, key), planned in sorted(self.uow.repo.steps.items(), key=lambda i: i[1].due_at):
            if planned.due_at is not None and planned.due_at <= self.clock.now():
                async with self.uow.transaction() as tx:
                    await self.steps[kind](tx, builders.step(kind, key, planned.due_at, planned.payload))
                del self.uow.repo.steps[(kind, key)]
                ran.append(f"{kind}:{key}")
        return ran

    def messages(self, kind: str | None = None) -> list[domain.NewNotification]:
        return [r.message for r in self.uow.repo.rows.values() if kind in (None, r.message.kind)]

    def kinds_of(self, signup_id: str) -> list[str]:
        return [m.kind for m in self.messages() if m.signup_id == signup_id]


@pytest.fixture
async def journey(uow: FakeUnitOfWork[FakeRepository]) -> Journey:
    """An edition with two offers (o-1 with a host contact in English, o-2 without) and s-1..s-3 signed up."""
    j = Journey(uow)
    await j.events(
        builders.edition_opened(), builders.offer_published("o-1"),
        builders.offer_published("o-2", title="Webinar", host_contact=None),
        *(builders.participant(s, language="nl") for s in ("s-1", "s-2", "s-3")),
    )
    return j


def claims(url: str, prefix: str, purpose: str) -> tuple[str, str, str | None]:
    assert url.startswith(prefix), url
    c = builders.LINKS.read(url.removeprefix(prefix), purpose, 3600)
    return c.signup_id, c.edition_id, c.ref


async def test_a_sign_up_is_confirmed_with_its_edition_choices_and_my_sign_up_link(journey: Journey) -> None:
    event = builders.signup_submitted("s-1", choices=("o-2", "o-1", "o-unknown"), approval="pending")
    await journey.events(event, event)

    (n,) = journey.messages()
    assert (n.kind, n.id, n.signup_id, n.for_participant) == ("signup_confirmed", domain.notification_id(event.event_id), "s-1", True)
    assert n.data["edition"] == {"name": "Week van de Uitwisseling 2026", "starts_on": "2026-09-14", "ends_on": "2026-09-18",
                                 "signup_deadline": "2026-08-31T22:00:00+00:00"}
    assert [c["offer_id"] for c in n.data["choices"]] == ["o-2", "o-1"] and n.data["approval"] == "pending"
    assert claims(n.data["manage_url"], "https://registration.example.org/links/signup/", "signup") == ("s-1", builders.EDITION, None)
    assert journey.uow.repo.signups["s-1"].approval == "pending" and journey.uow.repo.edition_locks


async def test_an_assignment_tells_where_with_a_calendar_entry_starts_the_visit_and_schedules_its_steps(journey: Journey) -> None:
    event = builders.assigned_to("s-1")
    await journey.events(event)

    (n,) = journey.messages()
    assert (n.kind, n.template, n.data["rank"], n.data["offer"]["starts_at"]) == ("assigned", "match_assigned", 1, "09:30")
    assert (n.data["calendar"]["uid"], n.data["calendar"]["method"]) == ("s-1.o-1@estafette", "REQUEST")
    assert claims(n.data["manage_url"], "https://registration.example.org/links/signup/", "signup")[0] == "s-1"
    assert [v.status for v in await journey.uow.repo.visits(signup_id="s-1")] == ["current"]
    steps = {k: p.due_at for k, p in journey.uow.repo.steps.items()}
    assert steps == {("reminder", "s-1:o-1"): DAY_BEFORE, ("feedback_request", "s-1:o-1"): VISIT_END,
                     ("visitor_list", "o-1"): DAY_BEFORE}
    assert journey.uow.repo.steps[("reminder", "s-1:o-1")].payload["correlation_id"] == str(event.correlation_id)


async def test_the_day_before_the_participant_is_reminded_and_the_host_gets_the_visitor_list_in_their_language(
    journey: Journey,
) -> None:
    await journey.events(
        builders.participant("s-1", name="Bo", language="de").model_copy(update={"org": "gemeente", "learning_goal": "Deeg"}),
        builders.assigned_to("s-1"), builders.assigned_to("s-2"),
    )
    journey.at(DAY_BEFORE)
    assert sorted(await journey.run_due()) == ["reminder:s-1:o-1", "reminder:s-2:o-1", "visitor_list:o-1"]

    reminder = next(m for m in journey.messages("reminder") if m.signup_id == "s-1")
    assert reminder.id == domain.step_id("reminder", "s-1:o-1", DAY_BEFORE)
    assert reminder.data["calendar"]["uid"] == "s-1.o-1@estafette"
    (listing,) = journey.messages("visitor_list")
    assert (listing.email, listing.language, listing.signup_id) == ("henk@bakkerij.example.org", "en", None)
    assert listing.data["visitor_ids"] == ["s-1", "s-2"]

    renderer, mailer = FakeRenderer(), FakeMailer()
    while await service.send_next(journey.uow, mailer, renderer, SENDER, POLICY):  # type: ignore[arg-type]
        pass
    (host,) = [r for r in renderer.rendered if r[0] == "visitor_list"]
    assert host[1:3] == ("en", "Henk Host")
    assert host[3]["visitors"] == [{"name": "Anna", "org": None, "learning_goal": ""},
                                   {"name": "Bo", "org": "gemeente", "learning_goal": "Deeg"}]
    assert len(mailer.sent) == 5  # two assignments, two reminders, the list
    assert [str(m["To"]) for m in mailer.sent if m["Subject"] == "visitor_list en"] == ["Henk Host <henk@bakkerij.example.org>"]


async def test_a_step_that_runs_again_records_no_second_message(journey: Journey) -> None:
    await journey.events(builders.assigned_to("s-1"))
    payload = journey.uow.repo.steps[("reminder", "s-1:o-1")].payload
    journey.at(DAY_BEFORE)
    for _ in range(2):  # e.g. the process died after recording the message, before the scheduler's commit
        async with journey.uow.transaction() as tx:
            await journey.steps["reminder"](tx, builders.step("reminder", "s-1:o-1", DAY_BEFORE, payload))
    assert len(journey.messages("reminder")) == 1


async def test_after_the_visit_the_participant_is_asked_for_feedback_with_a_signed_link(journey: Journey) -> None:
    await journey.events(builders.assigned_to("s-1"))
    journey.at(VISIT_END)
    await journey.run_due()

    (n,) = journey.messages("feedback_request")
    assert n.id == domain.step_id("feedback_request", "s-1:o-1", VISIT_END) and n.signup_id == "s-1"
    assert claims(n.data["feedback_url"], "https://registration.example.org/links/feedback/", "feedback") == (
        "s-1", builders.EDITION, "o-1")


async def test_someone_placed_after_the_reminders_moment_gets_no_reminder(journey: Journey) -> None:
    journey.at(DAY_BEFORE + timedelta(hours=1))
    await journey.events(builders.assigned_to("s-1"))
    assert set(journey.uow.repo.steps) == {("feedback_request", "s-1:o-1")}


async def test_an_offer_change_tells_each_person_placed_there_once_and_moves_their_steps(journey: Journey) -> None:
    await journey.events(builders.assigned_to("s-1"), builders.assigned_to("s-2"), builders.assigned_to("s-3", "o-2"))
    change = builders.offer_changed(changed=["date", "capacity"], date=datetime(2026, 9, 16).date())
    await journey.events(change, change)

    changed = journey.messages("offer_changed")
    assert sorted((m.signup_id, m.id) for m in changed) == [
        ("s-1", domain.fanout_id(change.event_id, "s-1")), ("s-2", domain.fanout_id(change.event_id, "s-2"))]
    assert changed[0].data["changed"] == ["date"] and changed[0].data["calendar"]["sequence"] == 1
    steps = journey.uow.repo.steps
    assert steps[("reminder", "s-1:o-1")].due_at == DAY_BEFORE + timedelta(days=1)
    assert steps[("feedback_request", "s-2:o-1")].due_at == VISIT_END + timedelta(days=1)
    assert steps[("visitor_list", "o-1")].due_at == DAY_BEFORE + timedelta(days=1)

    await journey.events(builders.offer_changed(changed=["capacity"], sequence=2, capacity=10))
    assert len(journey.messages("offer_changed")) == 2  # nothing they see changed


async def test_an_offer_cancellation_tells_those_placed_and_holding_a_seat_offer_and_ends_their_steps(journey: Journey) -> None:
    expired = datetime(2026, 8, 31, tzinfo=UTC)
    await journey.events(
        builders.assigned_to("s-1"), builders.seat_offered_on("s-2"), builders.seat_offered_on("s-3", expires_at=expired),
    )
    cancel = builders.offer_cancelled("o-1", "De bakker is ziek")
    await journey.events(cancel, cancel)

    told = {m.signup_id: m for m in journey.messages("offer_cancelled")}
    assert set(told) == {"s-1", "s-2"}  # s-3's seat offer had expired
    assert told["s-1"].data["calendar"]["method"] == "CANCEL" and told["s-1"].data["reason"] == "De bakker is ziek"
    assert told["s-2"].data["calendar"] is None
    assert journey.uow.repo.steps == {} and await journey.uow.repo.visits(offer_id="o-1") == []
    journey.at(VISIT_END)
    assert await journey.run_due() == []


async def test_an_edition_cancellation_tells_every_participant_and_host_exactly_once(journey: Journey) -> None:
    await journey.events(
        *(builders.signup_submitted(s) for s in ("s-1", "s-2", "s-3", "s-4", "s-5")),
        builders.assigned_to("s-1"), builders.assigned_to("s-2", "o-2"), builders.waitlisted("s-3"),
        builders.signup_withdrawn("s-4"), builders.signup_refused("s-5"),
        builders.assigned_to("s-6"),  # placed, its SignupSubmitted not seen
    )
    cancel = builders.edition_cancelled("Corona")
    await journey.events(cancel, cancel, builders.edition_cancelled("again"))

    told = {m.signup_id: m for m in journey.messages("edition_cancelled")}
    assert sorted(told) == ["s-1", "s-2", "s-3", "s-6"] and len(journey.messages("edition_cancelled")) == 4
    assert told["s-1"].data["calendar"]["uid"] == "s-1.o-1@estafette" and told["s-3"].data["calendar"] is None
    assert {m.id for m in told.values()} == {domain.fanout_id(cancel.event_id, s) for s in told}
    (host,) = journey.messages("host_edition_cancelled")  # o-2 has no host contact
    assert (host.email, host.data["reason"], host.id) == ("henk@bakkerij.example.org", "Corona", domain.host_id(cancel.event_id, "o-1"))
    assert journey.uow.repo.steps == {} and journey.uow.repo.editions[builders.EDITION].status == "cancelled"

    before = len(journey.messages())
    await journey.events(builders.assigned_to("s-3"), builders.unmatched("s-3"), builders.signup_submitted("s-7"),
                         builders.offer_cancelled("o-1"))
    assert len(journey.messages()) == before  # nothing more for a cancelled edition


async def test_a_withdrawal_ends_the_visit_and_tells_the_host_who_is_still_coming(journey: Journey) -> None:
    await journey.events(builders.signup_submitted("s-1"), builders.assigned_to("s-1"), builders.assigned_to("s-2"))
    withdrawal = builders.signup_withdrawn("s-1")
    await journey.events(withdrawal)

    (notice,) = journey.messages("visitor_withdrew")
    assert (notice.email, notice.language, notice.signup_id) == ("henk@bakkerij.example.org", "en", None)
    assert (notice.data["visitor_id"], notice.data["remaining"], notice.id) == ("s-1", 1, domain.host_id(withdrawal.event_id, "o-1"))
    assert ("reminder", "s-1:o-1") not in journey.uow.repo.steps and ("reminder", "s-2:o-1") in journey.uow.repo.steps
    journey.at(DAY_BEFORE)
    await journey.run_due()
    assert journey.kinds_of("s-1") == ["signup_confirmed", "assigned"]
    assert journey.messages("visitor_list")[0].data["visitor_ids"] == ["s-2"]


async def test_a_withdrawal_after_the_visit_started_tells_the_host_nothing(journey: Journey) -> None:
    await journey.events(builders.assigned_to("s-1"))
    journey.at(VISIT_END)
    await journey.events(builders.signup_withdrawn("s-1"))
    assert journey.messages("visitor_withdrew") == []


async def test_a_refused_sign_up_is_told_with_the_reason(journey: Journey) -> None:
    refusal = builders.signup_refused("s-1", "Te druk")
    await journey.events(builders.signup_submitted("s-1", approval="pending"), refusal)
    (n,) = journey.messages("approval_refused")
    assert (n.id, n.data) == (domain.notification_id(refusal.event_id), {"edition": {"name": "Week van de Uitwisseling 2026"}, "reason": "Te druk"})
    assert journey.uow.repo.signups["s-1"].status == "refused"


async def test_an_erased_visitor_leaves_the_hosts_list_with_their_organisation_and_learning_goal(journey: Journey) -> None:
    await journey.events(
        builders.participant("s-1").model_copy(update={"org": "gemeente", "learning_goal": "Deeg"}),
        builders.assigned_to("s-1"), builders.assigned_to("s-2"),
    )
    journey.at(DAY_BEFORE)
    await journey.run_due()
    await erase(journey.uow, "s-1")
    assert "s-1" not in journey.uow.repo.contacts

    renderer = FakeRenderer()
    while await service.send_next(journey.uow, FakeMailer(), renderer, SENDER, POLICY):  # type: ignore[arg-type]
        pass
    (listing,) = [r[3] for r in renderer.rendered if r[0] == "visitor_list"]
    assert listing["visitors"] == [{"name": "Anna", "org": None, "learning_goal": ""}]


def test_the_step_handlers_cover_every_step_kind() -> None:
    assert set(handlers.steps(builders.journey())) == set(domain.STEP_KINDS)


async def test_steps_are_scheduled_through_the_repository_in_the_use_cases_transaction() -> None:
    """The real repository schedules with the runtime's scheduler on its own connection."""
    executed: list[str] = []

    class Conn:
        async def execute(self, sql: str, *args: object) -> str:
            executed.append(sql.split()[0])
            return "DELETE 1"

    repo = Repository(Conn())  # type: ignore[arg-type]
    await repo.plan(domain.Planned("reminder", "s-1:o-1", DAY_BEFORE, {"signup_id": "s-1"}))
    await repo.plan(domain.Planned("reminder", "s-1:o-1", None))
    assert executed == ["INSERT", "DELETE"]
