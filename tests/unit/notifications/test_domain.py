"""Pure rules: which message an event asks for, whom it goes to and how it starts, notification
identity, and what a failure means."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from schemas import MatchAssigned, MatchUnmatched, MatchWaitlisted
from services.notifications import domain
from tests.unit.notifications import builders


ZONE = "Europe/Amsterdam"
MANAGE = "https://registration.example.org/links/signup/t"


def assignment(event: MatchAssigned | None = None) -> domain.NewNotification:
    event = event or builders.assigned()
    offer = domain.offer_from_summary(event.offer, event.region, event.edition)
    return domain.from_assignment(event, offer, ZONE, MANAGE)


def test_notification_id_is_derived_from_the_source_event() -> None:
    event = builders.assigned()
    again = MatchAssigned.model_validate_json(event.model_dump_json())  # the same event, redelivered

    assert assignment(event).id == assignment(again).id == domain.notification_id(event.event_id)
    assert assignment().id != assignment(event).id
    waiting = builders.waitlisted()
    assert domain.from_match(waiting).id == domain.notification_id(waiting.event_id)


def test_match_events_become_their_kind_of_message() -> None:
    a = assignment()
    w = domain.from_match(builders.waitlisted(position=3))
    u = domain.from_match(builders.unmatched(reason_code="own_org"))

    assert (a.kind, a.template, a.data["offer"]["date"], a.data["rank"]) == ("assigned", "match_assigned", "2026-09-15", 1)
    assert (a.data["manage_url"], a.data["calendar"]["uid"]) == (MANAGE, "s-1.o-1@estafette")
    assert (w.kind, w.template, w.data) == ("waitlisted", "match_waitlisted", {"position": 3})
    assert (u.kind, u.template, u.data) == ("unmatched", "match_unmatched", {"reason_code": "own_org"})
    for n in (a, w, u):  # no recipient: the participant's contact is looked up when it is sent
        assert (n.name, n.email, n.language, n.signup_id, n.edition) == (None, None, None, "s-1", builders.EDITION)
        assert n.for_participant


def test_every_match_event_type_has_a_message_decision() -> None:
    assert set(domain.MATCH_MESSAGES) == {MatchWaitlisted, MatchUnmatched}  # MatchAssigned: from_assignment


def test_the_message_keeps_the_events_correlation_id() -> None:
    correlation_id = uuid.uuid4()
    assert assignment(builders.assigned(correlation_id=correlation_id)).correlation_id == correlation_id


def test_a_seat_offer_becomes_a_message_with_the_answer_addresses() -> None:
    event = builders.seat_offered(rank=2)
    n = domain.from_seat_offer(event, builders.plain_answer_link)

    assert (n.id, n.kind, n.template, n.signup_id, n.email, n.for_participant) == (
        domain.notification_id(event.event_id), "seat_offered", "seat_offered", "s-1", None, True
    )
    offer = domain.offer_from_summary(event.offer, event.region, event.edition).data()
    assert {k: offer[k] for k in ("offer_id", "title", "host_org", "date", "format", "location")} == event.offer.model_dump(mode="json")
    assert n.data == {
        "offer": offer, "rank": 2, "expires_at": "2026-09-14T21:59:00+00:00",
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
    n = assignment()
    assert domain.addressing(n, CONTACT, erased=False) == domain.Addressing("pending", "en")


def test_a_participants_message_waits_for_a_contact_that_has_not_arrived() -> None:
    n = assignment()
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


# --- the journey ----------------------------------------------------------------------------------------
OFFER = domain.offer_from(builders.offer_published())  # 15 September 2026, 09:30-12:00, Amsterdam


def test_an_offer_is_kept_as_the_messages_show_it() -> None:
    data = OFFER.data()
    assert data == {
        "offer_id": "o-1", "title": "Een dag in de bakkerij", "host_org": "bakkerij-van-dam", "date": "2026-09-15",
        "format": "visit", "attendance": "on_site", "part_of_day": "morning", "starts_at": "09:30", "ends_at": "12:00",
        "location": "Marktstraat 1", "join_url": None, "what_to_bring": "Schoenen", "themes": [], "sequence": 0,
    }
    again = domain.offer_from_data(data, region="twente", edition=builders.EDITION, host_contact=OFFER.host_contact)
    assert again == OFFER
    assert OFFER.host_contact == domain.HostContact("Henk Host", "henk@bakkerij.example.org", "en")


def test_a_visit_takes_its_times_or_its_part_of_the_days_in_the_regions_time_zone() -> None:
    start, end = domain.visit_window(OFFER, ZONE)
    assert (start.isoformat(), end.isoformat()) == ("2026-09-15T09:30:00+02:00", "2026-09-15T12:00:00+02:00")
    afternoon = dataclasses.replace(OFFER, part_of_day="afternoon", starts_at=None, ends_at=None)
    assert [t.strftime("%H:%M") for t in domain.visit_window(afternoon, "Europe/London")] == ["13:00", "17:00"]
    assert domain.visit_window(afternoon, "Europe/London")[0].utcoffset() == timedelta(hours=1)
    whole = dataclasses.replace(OFFER, part_of_day="whole_day", starts_at=None, ends_at=None)
    assert [t.strftime("%H:%M") for t in domain.visit_window(whole, ZONE)] == ["09:00", "17:00"]


def test_a_visits_steps_the_reminder_and_visitor_list_at_nine_the_day_before_the_feedback_request_at_its_end() -> None:
    correlation_id = uuid.uuid4()
    now = datetime(2026, 9, 1, tzinfo=UTC)
    reminder, feedback, visitors = domain.visit_steps("s-1", OFFER, ZONE, now, correlation_id)

    day_before = datetime(2026, 9, 14, 7, 0, tzinfo=UTC)  # 09:00 in Amsterdam (summer time)
    assert (reminder.kind, reminder.key, reminder.due_at) == ("reminder", "s-1:o-1", day_before)
    assert (feedback.kind, feedback.key, feedback.due_at) == ("feedback_request", "s-1:o-1", datetime(2026, 9, 15, 10, 0, tzinfo=UTC))
    assert (visitors.kind, visitors.key, visitors.due_at) == ("visitor_list", "o-1", day_before)
    assert reminder.payload == {"signup_id": "s-1", "offer_id": "o-1", "region": "twente", "edition": builders.EDITION,
                                "correlation_id": str(correlation_id)}


def test_a_step_whose_moment_has_passed_when_the_person_is_placed_is_skipped() -> None:
    late = datetime(2026, 9, 14, 8, 0, tzinfo=UTC)
    reminder, feedback, visitors = domain.visit_steps("s-1", OFFER, ZONE, late, uuid.uuid4())
    assert (reminder.due_at, visitors.due_at) == (None, None)  # None: cancelled
    assert feedback.due_at == datetime(2026, 9, 15, 10, 0, tzinfo=UTC)
    after = domain.visit_steps("s-1", OFFER, ZONE, datetime(2026, 9, 15, 10, 0, tzinfo=UTC), uuid.uuid4())
    assert [p.due_at for p in after] == [None, None, None]  # placed after the visit: nothing to send
    assert [(p.kind, p.due_at) for p in domain.ended_visit_steps("s-1", "o-1")] == [("reminder", None), ("feedback_request", None)]


def test_message_ids_are_derived_from_the_trigger() -> None:
    event_id = uuid.uuid4()
    assert domain.fanout_id(event_id, "s-1") == domain.fanout_id(event_id, "s-1") == uuid.uuid5(event_id, "s-1")
    assert len({domain.fanout_id(event_id, "s-1"), domain.fanout_id(event_id, "s-2"), domain.host_id(event_id, "s-1")}) == 3
    due = datetime(2026, 9, 14, 7, 0, tzinfo=UTC)
    same_moment = due.astimezone(ZoneInfo(ZONE))
    assert domain.step_id("reminder", "s-1:o-1", due) == domain.step_id("reminder", "s-1:o-1", same_moment)
    assert domain.step_id("reminder", "s-1:o-1", due) != domain.step_id("reminder", "s-1:o-1", due + timedelta(days=1))
    assert domain.step_id("reminder", "s-1:o-1", due) != domain.step_id("feedback_request", "s-1:o-1", due)


def test_an_offer_change_names_what_the_people_placed_there_see_with_the_new_calendar_entry() -> None:
    event = builders.offer_changed(changed=["starts_at", "capacity", "host_contact"], sequence=2, starts_at=time(10, 0))
    offer = domain.offer_from(event)
    n = domain.offer_changed(event, offer, "s-1", ZONE, MANAGE)

    assert (n.id, n.kind, n.signup_id, n.for_participant) == (domain.fanout_id(event.event_id, "s-1"), "offer_changed", "s-1", True)
    assert n.data["changed"] == ["starts_at"]
    calendar = n.data["calendar"]
    assert (calendar["uid"], calendar["sequence"], calendar["method"], calendar["starts_at"]) == ("s-1.o-1@estafette", 2, "REQUEST", "10:00")
    assert (calendar["timezone"], calendar["location"]) == (ZONE, "Marktstraat 1")
    assert domain.seen_changes(["capacity", "max_per_org", "themes", "host_contact"]) == []


def test_cancellations_carry_a_cancel_calendar_entry_for_those_placed_only() -> None:
    event = builders.edition_cancelled("Corona")
    edition = domain.edition_from(builders.edition_opened())
    placed = domain.edition_cancelled(event, edition, "s-1", (OFFER, ZONE))
    waiting = domain.edition_cancelled(event, edition, "s-2", None)

    assert placed.data["calendar"]["method"] == "CANCEL" and placed.data["calendar"]["status"] == "CANCELLED"
    assert waiting.data == {"edition": {"name": "Week van de Uitwisseling 2026"}, "reason": "Corona", "calendar": None}
    assert placed.id == domain.fanout_id(event.event_id, "s-1") != waiting.id
    held = domain.offer_cancelled(event.event_id, event.correlation_id, OFFER, "s-3", ZONE, placed=False)
    assert held.data["calendar"] is None and held.kind == "offer_cancelled"


def test_a_hosts_message_goes_to_the_host_contact_in_their_language_and_names_no_sign_up() -> None:
    event = builders.edition_cancelled()
    edition = domain.edition_from(builders.edition_opened())
    n = domain.host_edition_cancelled(event, edition, OFFER)

    assert n is not None
    assert (n.name, n.email, n.language, n.signup_id, n.for_participant) == ("Henk Host", "henk@bakkerij.example.org", "en", None, False)
    assert n.id == domain.host_id(event.event_id, "o-1")
    assert domain.host_edition_cancelled(event, edition, dataclasses.replace(OFFER, host_contact=None)) is None


def test_a_visitor_list_names_its_visitors_from_their_contacts_when_it_is_sent() -> None:
    step = domain.Occurrence("visitor_list", "o-1", datetime(2026, 9, 14, 7, 0, tzinfo=UTC), uuid.uuid4())
    n = domain.visitor_list(step, OFFER, ["s-2", "s-1", "s-gone"], ZONE)
    assert n is not None and n.id == step.id and n.data["calendar"]["uid"] == "host.o-1@estafette"
    assert "visitors" not in n.data  # only ids are stored: the names stay in the contacts

    visitors = {"s-1": domain.Visitor("s-1", "Bo", "gemeente", "Bakken"), "s-2": domain.Visitor("s-2", "Anna", None, "")}
    data = domain.with_visitors(n.data, visitors)
    assert data["visitors"] == [{"name": "Anna", "org": None, "learning_goal": ""},
                                {"name": "Bo", "org": "gemeente", "learning_goal": "Bakken"}]  # s-gone: erased
    assert "visitor_ids" not in data and data["offer"] == n.data["offer"]

    withdrew = domain.visitor_withdrew(builders.signup_withdrawn("s-1"), OFFER, remaining=1)
    assert withdrew is not None
    assert domain.with_visitors(withdrew.data, visitors)["visitor"] == {"name": "Bo", "org": "gemeente"}
    assert domain.with_visitors(withdrew.data, {})["visitor"] == {"name": "", "org": None}
    assert domain.with_visitors({"offer": {}}, visitors) == {"offer": {}}


def test_an_approval_request_is_its_own_kind() -> None:
    request = builders.request().model_copy(update={"template": "approval_requested"})
    assert domain.from_request(request).kind == "approval_requested"
