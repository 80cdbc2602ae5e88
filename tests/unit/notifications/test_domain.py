"""Pure rules: notification identity, what a failure means, and the retry schedule."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest
from aiosmtplib import (
    SMTPConnectError,
    SMTPDataError,
    SMTPNotSupported,
    SMTPReadTimeoutError,
    SMTPRecipientRefused,
    SMTPRecipientsRefused,
    SMTPResponseException,
    SMTPSenderRefused,
    SMTPServerDisconnected,
)

from schemas import (
    MatchAssigned,
    MatchUnmatched,
    MatchWaitlisted,
    NotificationRequested,
    OfferSummary,
    Recipient,
    SeatOffered,
)
from services.notifications import domain

RECIPIENT = Recipient(name="Anna", email="anna@example.org", language="de")
ENVELOPE = {"region": "twente", "edition": "wvdu-2026-twente", "signup_id": "s-1", "run_id": uuid.uuid4()}


def assigned() -> MatchAssigned:
    offer = OfferSummary(offer_id="o-1", host_org="acme", title="Visit", date=date(2026, 9, 15))
    return MatchAssigned(**ENVELOPE, rank=1, offer=offer, recipient=RECIPIENT)


def test_notification_id_is_derived_from_the_source_event() -> None:
    event = assigned()
    again = MatchAssigned.model_validate_json(event.model_dump_json())  # the same event, redelivered

    assert domain.from_match(event).id == domain.from_match(again).id == domain.notification_id(event.event_id)
    assert domain.from_match(assigned()).id != domain.from_match(event).id


def test_match_events_become_their_kind_of_message() -> None:
    a = domain.from_match(assigned())
    w = domain.from_match(MatchWaitlisted(**ENVELOPE, position=3, reason_code="all_full", recipient=RECIPIENT))
    u = domain.from_match(MatchUnmatched(**ENVELOPE, reason_code="own_org", reason="x", recipient=RECIPIENT))

    assert (a.kind, a.template, a.data["offer"]["date"], a.data["rank"]) == ("assigned", "match_assigned", "2026-09-15", 1)
    assert (w.kind, w.template, w.data) == ("waitlisted", "match_waitlisted", {"position": 3})
    assert (u.kind, u.template, u.data) == ("unmatched", "match_unmatched", {"reason_code": "own_org"})
    for n in (a, w, u):
        assert (n.name, n.email, n.language, n.signup_id, n.edition) == ("Anna", "anna@example.org", "de", "s-1", ENVELOPE["edition"])


def test_a_seat_offer_becomes_a_message_with_the_answer_addresses() -> None:
    offer = OfferSummary(offer_id="o-1", host_org="acme", title="Visit", date=date(2026, 9, 15))
    expires = datetime(2026, 9, 14, 21, 59, tzinfo=UTC)
    event = SeatOffered(**ENVELOPE, rank=2, offer=offer, expires_at=expires, recipient=RECIPIENT)
    n = domain.from_seat_offer(event, "https://matching.example.org/")

    assert (n.id, n.kind, n.template, n.signup_id, n.language) == (
        domain.notification_id(event.event_id), "seat_offered", "seat_offered", "s-1", "de"
    )
    answer = f"https://matching.example.org/editions/{ENVELOPE['edition']}/seat-offers/s-1"
    assert n.data == {
        "offer": offer.model_dump(mode="json"), "rank": 2, "expires_at": "2026-09-14T21:59:00+00:00",
        "accept_url": f"{answer}/accept", "decline_url": f"{answer}/decline",
    }


def test_a_request_keeps_its_own_notification_id_and_template_name() -> None:
    request = NotificationRequested(
        region="twente", edition="e1", notification_id=uuid.uuid4(), template="feedback_reminder",
        recipient=RECIPIENT, context={"message": "Hi", "days": 3},
    )
    n = domain.from_request(request)

    assert (n.id, n.source_event_id, n.kind, n.template) == (request.notification_id, request.event_id, "generic", "feedback_reminder")
    assert n.data == {"message": "Hi", "days": 3} and n.signup_id is None


def test_message_id_is_stable_and_uses_the_senders_domain() -> None:
    nid = uuid.uuid4()
    assert domain.message_id(nid, "Estafette <no-reply@estafette.example>") == f"<{nid}@estafette.example>"
    assert domain.message_id(nid, "not an address") == f"<{nid}@estafette.local>"


@pytest.mark.parametrize(
    ("exc", "permanent"),
    [
        (SMTPRecipientsRefused([SMTPRecipientRefused(550, "5.1.1 mailbox unavailable", "a@b.c")]), True),
        (SMTPRecipientsRefused([SMTPRecipientRefused(451, "4.3.0 try again later", "a@b.c")]), False),
        (SMTPSenderRefused(553, "sender not allowed", "x@y.z"), True),
        (SMTPDataError(554, "message rejected"), True),
        (SMTPDataError(452, "insufficient storage"), False),
        (SMTPResponseException(421, "service not available"), False),
        (ConnectionRefusedError(111, "Connection refused"), False),
        (SMTPConnectError("Error connecting to 127.0.0.1 on port 1"), False),
        (SMTPServerDisconnected("Connection lost"), False),
        (SMTPReadTimeoutError("Timed out waiting for server response"), False),
        (TimeoutError(), False),
        (SMTPNotSupported("SMTPUTF8 is not supported by this server"), True),
        (ValueError("the request's context has no 'message'"), True),
    ],
)
def test_which_failures_are_permanent(exc: BaseException, permanent: bool) -> None:
    assert domain.classify(exc).permanent is permanent


def test_failure_texts_never_contain_an_address() -> None:
    exc = SMTPRecipientsRefused(
        [SMTPRecipientRefused(550, "5.1.1 <bounce.me+x@example.org>: mailbox unavailable", "bounce.me+x@example.org")]
    )
    failure = domain.classify(exc)

    assert "example.org" not in failure.error and "bounce.me" not in failure.error
    assert failure.error == "recipient refused: 550 5.1.1 <<address>>: mailbox unavailable"
    assert len(domain.redact("x" * 5000)) == domain.MAX_ERROR_LENGTH


def test_back_off_doubles_up_to_the_cap() -> None:
    policy = domain.RetryPolicy(max_attempts=10, base_seconds=30, max_seconds=600)
    assert [policy.delay(n) for n in range(1, 8)] == [30, 60, 120, 240, 480, 600, 600]


def test_temporary_failures_are_retried_until_max_attempts() -> None:
    policy = domain.RetryPolicy(max_attempts=3, base_seconds=10, max_seconds=100)
    temporary = domain.Failure(permanent=False, error="451")

    assert domain.after_failure(temporary, 1, policy) == domain.Outcome("pending", 10)
    assert domain.after_failure(temporary, 2, policy) == domain.Outcome("pending", 20)
    assert domain.after_failure(temporary, 3, policy) == domain.Outcome("failed")


def test_permanent_failures_fail_at_once() -> None:
    policy = domain.RetryPolicy(max_attempts=3, base_seconds=10, max_seconds=100)
    assert domain.after_failure(domain.Failure(permanent=True, error="550"), 1, policy) == domain.Outcome("failed")
