"""Pure rules: which message an event asks for, whom it goes to and how it starts, notification
identity, and what a failure means."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from schemas import MatchAssigned, MatchUnmatched, MatchWaitlisted
from services.notifications import domain
from tests.unit.notifications import builders


def test_notification_id_is_derived_from_the_source_event() -> None:
    event = builders.assigned()
    again = MatchAssigned.model_validate_json(event.model_dump_json())  # the same event, redelivered

    assert domain.from_match(event).id == domain.from_match(again).id == domain.notification_id(event.event_id)
    assert domain.from_match(builders.assigned()).id != domain.from_match(event).id


def test_match_events_become_their_kind_of_message() -> None:
    a = domain.from_match(builders.assigned())
    w = domain.from_match(builders.waitlisted(position=3))
    u = domain.from_match(builders.unmatched(reason_code="own_org"))

    assert (a.kind, a.template, a.data["offer"]["date"], a.data["rank"]) == ("assigned", "match_assigned", "2026-09-15", 1)
    assert (w.kind, w.template, w.data) == ("waitlisted", "match_waitlisted", {"position": 3})
    assert (u.kind, u.template, u.data) == ("unmatched", "match_unmatched", {"reason_code": "own_org"})
    for n in (a, w, u):  # no recipient: the participant's contact is looked up when it is sent
        assert (n.name, n.email, n.language, n.signup_id, n.edition) == (None, None, None, "s-1", builders.EDITION)
        assert n.for_participant


def test_every_match_event_type_has_a_message_decision() -> None:
    assert set(domain.MATCH_MESSAGES) == {MatchAssigned, MatchWaitlisted, MatchUnmatched}


def test_the_message_keeps_the_events_correlation_id() -> None:
    correlation_id = uuid.uuid4()
    assert domain.from_match(builders.assigned(correlation_id=correlation_id)).correlation_id == correlation_id


def test_a_seat_offer_becomes_a_message_with_the_answer_addresses() -> None:
    event = builders.seat_offered(rank=2)
    n = domain.from_seat_offer(event, builders.plain_answer_link)

    assert (n.id, n.kind, n.template, n.signup_id, n.email, n.for_participant) == (
        domain.notification_id(event.event_id), "seat_offered", "seat_offered", "s-1", None, True
    )
    assert n.data == {
        "offer": event.offer.model_dump(mode="json"), "rank": 2, "expires_at": "2026-09-14T21:59:00+00:00",
        "accept_url": builders.plain_answer_link("accept", "s-1", builders.EDITION, event.offer.offer_id),
        "decline_url": builders.plain_answer_link("decline", "s-1", builders.EDITION, event.offer.offer_id),
    }
    assert datetime.fromisoformat(n.data["expires_at"]) == datetime(2026, 9, 14, 21, 59, tzinfo=UTC)


def test_a_request_keeps_its_own_notification_id_and_template_name() -> None:
    request = builders.request(message="Hi", days=3)
    n = domain.from_request(request)

    assert (n.id, n.source_event_id, n.kind, n.template) == (request.notification_id, request.event_id, "generic", "feedback_reminder")
    assert n.data == {"message": "Hi", "days": 3} and n.signup_id is None
    assert (n.name, n.email, n.language, n.for_participant) == ("Anna", "anna@example.org", "de", False)


# --- whom a message goes to, and how it starts ----------------------------------------------------
CONTACT = domain.contact_from(builders.participant("s-1", name="Bo", email="bo@example.org", language="en"))


def test_a_contact_is_taken_from_the_participants_record() -> None:
    assert CONTACT == domain.Contact("s-1", "twente", builders.EDITION, "Bo", "bo@example.org", "en")


def test_a_participants_message_is_pending_in_their_language_once_their_contact_is_known() -> None:
    n = domain.from_match(builders.assigned())
    assert domain.addressing(n, CONTACT, erased=False) == domain.Addressing("pending", "en")


def test_a_participants_message_waits_for_a_contact_that_has_not_arrived() -> None:
    n = domain.from_match(builders.assigned())
    assert domain.addressing(n, None, erased=False) == domain.Addressing("awaiting_contact", None)


def test_a_participants_message_fails_at_once_when_their_contact_was_erased() -> None:
    n = domain.from_seat_offer(builders.seat_offered(), builders.plain_answer_link)
    start = domain.addressing(n, None, erased=True)
    assert (start.status, start.error) == ("failed", domain.CONTACT_ERASED)
    assert start.error.startswith("contact_erased") and "@" not in start.error


def test_a_requested_message_goes_to_its_own_recipient() -> None:
    n = domain.from_request(builders.request())
    assert domain.addressing(n, None, erased=False) == domain.Addressing("pending", "de")
    assert domain.addressing(n, None, erased=True) == domain.Addressing("pending", "de")


def test_message_id_is_stable_and_uses_the_senders_domain() -> None:
    nid = uuid.uuid4()
    assert domain.message_id(nid, "Estafette <no-reply@estafette.example>") == f"<{nid}@estafette.example>"
    assert domain.message_id(nid, "not an address") == f"<{nid}@estafette.local>"


def test_error_texts_lose_their_addresses_and_are_bounded() -> None:
    assert domain.redact("550 5.1.1 <bounce.me+x@example.org>:\n mailbox") == "550 5.1.1 <<address>>: mailbox"
    assert len(domain.redact("x" * 5000)) == domain.MAX_ERROR_LENGTH


def test_back_off_doubles_up_to_the_cap() -> None:
    policy = domain.RetryPolicy(max_attempts=10, base_seconds=30, max_seconds=600)
    assert [policy.delay(n) for n in range(1, 8)] == [30, 60, 120, 240, 480, 600, 600]


def test_temporary_failures_are_retried_until_max_attempts() -> None:
    policy = domain.RetryPolicy(max_attempts=3, base_seconds=10, max_seconds=100)
    temporary = domain.Failure(permanent=False, error="451")

    assert domain.after_failure(temporary, 1, policy) == domain.RetryDecision("pending", 10)
    assert domain.after_failure(temporary, 2, policy) == domain.RetryDecision("pending", 20)
    assert domain.after_failure(temporary, 3, policy) == domain.RetryDecision("failed")


def test_permanent_failures_fail_at_once() -> None:
    policy = domain.RetryPolicy(max_attempts=3, base_seconds=10, max_seconds=100)
    assert domain.after_failure(domain.Failure(permanent=True, error="550"), 1, policy) == domain.RetryDecision("failed")
