"""Issue 9 use cases against the fake unit of work: editions with themes and approval, cancelling an
edition, editing offers, participating organisations and the employer's approval, sign-ups with consent
and a learning goal in the edition's languages, changing choices, feedback, and the placements kept from
the matches topic. Milliseconds, no infrastructure."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest

from estafette.runtime.errors import Conflict, NotFound, RuleViolation
from schemas import (
    EditionCancelled,
    EditionClosed,
    EditionOpened,
    FeedbackSubmitted,
    NotificationRequested,
    OfferChanged,
    OfferPublished,
    ParticipantRegistered,
    SignupApproved,
    SignupChanged,
    SignupRefused,
    SignupSubmitted,
    SignupWithdrawn,
)
from services.registration import domain, service
from tests.unit.registration.builders import (
    ADMIN,
    AFTER_DEADLINE,
    DAY_IN,
    DAY_OUT,
    EDITION_ID,
    NATIONAL,
    NOW,
    ORGANISER,
    OTHER_ORGANISER,
    edition,
    offer,
    offer_request,
    organisation,
    participant,
    registry,
    signup,
    signup_request,
)
from tests.unit.registration.fakes import FakeRegistrationUow, FakeRepository
from tests.unit.registration.test_service import CID, refused

HOST = domain.Contact("Henk Host", "henk@example.org", "nl")


def given(*, editions: tuple = (edition(themes=["digital", "care"]),), offers: tuple = (offer(), offer("o2", host_org="host-b")),
          signups: tuple = (), organisations: tuple = (), placements: tuple = ()) -> FakeRegistrationUow:
    return FakeRegistrationUow(FakeRepository(editions, offers, signups, organisations, placements))


def approval_url(signup_id: str, edition_id: str, org_id: str) -> str:
    return f"https://r.example/links/approval/{signup_id}.{edition_id}.{org_id}"


def submit(uow: FakeRegistrationUow, now: datetime = NOW, **changes: Any):  # noqa: ANN201
    return service.submit_signup(uow, EDITION_ID, **signup_request(**changes), correlation_id=CID, now=now,
                                 approval_url=approval_url)


# --- editions ---------------------------------------------------------------------------------------
async def test_an_edition_opens_with_themes_approval_and_a_match_at_the_deadline():
    uow = given(editions=())
    new = edition(id="e2", themes=["digital"], requires_approval=True, match_at_deadline=True)
    await service.open_edition(uow, new, registry=registry(), principal=ORGANISER, correlation_id=CID)
    [event] = uow.of_type(EditionOpened)
    assert (event.themes, event.requires_approval, event.match_at_deadline) == (["digital"], True, True)


@pytest.mark.parametrize(("themes", "code"), [([f"t{i}" for i in range(31)], "too_many_themes"), (["a", "a"], "duplicate_theme")])
async def test_an_editions_themes_are_bounded_and_distinct(themes, code):
    uow = given(editions=())
    await refused(uow, lambda: service.open_edition(uow, edition(id="e2", themes=themes), registry=registry(),
                                                    principal=ORGANISER, correlation_id=CID), RuleViolation, code)


async def test_cancelling_an_edition_announces_it_once_with_the_reason():
    uow = given()
    for _ in range(2):
        await service.cancel_edition(uow, EDITION_ID, principal=ORGANISER, reason="Corona", correlation_id=CID)
    [event] = uow.of_type(EditionCancelled)
    assert (event.edition, event.region, event.reason, event.correlation_id) == (EDITION_ID, "twente", "Corona", CID)
    assert uow.repo.edition_rows[EDITION_ID].status == "cancelled"
    await service.close_edition(uow, EDITION_ID, principal=ORGANISER, correlation_id=CID)  # nothing: it stays cancelled
    assert uow.repo.edition_rows[EDITION_ID].status == "cancelled" and uow.of_type(EditionClosed) == []


async def test_a_closed_edition_can_be_cancelled():
    uow = given(editions=(edition(status="closed"),))
    await service.cancel_edition(uow, EDITION_ID, principal=ADMIN, reason="storm", correlation_id=CID)
    assert len(uow.of_type(EditionCancelled)) == 1


@pytest.mark.parametrize(("principal", "error", "code"), [(OTHER_ORGANISER, NotFound, "unknown_edition"), (NATIONAL, Exception, "forbidden")])
async def test_cancelling_is_for_the_regions_organiser(principal, error, code):
    uow = given()
    await refused(uow, lambda: service.cancel_edition(uow, EDITION_ID, principal=principal, reason="x", correlation_id=CID),
                  error, code)


async def test_a_cancelled_edition_refuses_signups_offers_edits_and_approvals():
    uow = given(editions=(edition(status="cancelled"),), signups=(signup("s1"),), organisations=(organisation(),))
    cases = [
        lambda: submit(uow, email="new@example.org"),
        lambda: service.publish_offer(uow, EDITION_ID, principal=ORGANISER, **offer_request(), correlation_id=CID),
        lambda: service.change_offer(uow, EDITION_ID, "o1", principal=ORGANISER, changes={"capacity": 9}, correlation_id=CID),
        lambda: service.cancel_offer(uow, EDITION_ID, "o1", principal=ORGANISER, correlation_id=CID),
        lambda: service.change_choices(uow, EDITION_ID, "s1", principal=participant("s1"), choices=["o2"], now=NOW,
                                       correlation_id=CID),
        lambda: service.register_organisation(uow, organisation("org-y"), principal=ORGANISER),
        lambda: service.submit_feedback(uow, EDITION_ID, "s1", "o1", principal=participant("s1"), rating=5, now=NOW,
                                        correlation_id=CID),
    ]
    for call in cases:
        await refused(uow, call, Conflict, "edition_cancelled")


# --- offers -----------------------------------------------------------------------------------------
async def test_an_offer_is_published_with_its_journey_fields():
    uow = given()
    new = await service.publish_offer(
        uow, EDITION_ID, principal=ORGANISER, **offer_request(offer_id="o9"), themes=["care"], attendance="online",
        part_of_day="morning", starts_at=time(9), ends_at=time(12), join_url="https://meet.example/x",
        what_to_bring="laptop", host_contact=HOST, correlation_id=CID,
    )
    assert uow.repo.offer_rows["o9"] == new and new.sequence == 0
    [event] = uow.of_type(OfferPublished)
    assert (event.themes, event.attendance, event.part_of_day, event.starts_at, event.ends_at) == (["care"], "online", "morning", time(9), time(12))
    assert (event.join_url, event.what_to_bring, event.sequence) == ("https://meet.example/x", "laptop", 0)
    assert event.host_contact is not None and (event.host_contact.name, event.host_contact.email) == (HOST.name, HOST.email)


@pytest.mark.parametrize(
    ("extra", "code", "field"),
    [({"themes": ["care", "sports"]}, "unknown_theme", "themes.1"),
     ({"starts_at": time(12), "ends_at": time(9)}, "invalid_times", "ends_at"),
     ({"starts_at": time(9), "ends_at": time(9)}, "invalid_times", "ends_at")],
)
async def test_an_offers_themes_come_from_the_edition_and_it_ends_after_it_starts(extra, code, field):
    uow = given()
    error = await refused(uow, lambda: service.publish_offer(uow, EDITION_ID, principal=ORGANISER, **offer_request(),
                                                             **extra, correlation_id=CID), RuleViolation, code)
    assert error.field == field


async def test_editing_an_offer_announces_the_whole_offer_one_sequence_higher_with_what_changed():
    uow = given()
    changed = await service.change_offer(
        uow, EDITION_ID, "o1", principal=ORGANISER, correlation_id=CID,
        changes={"starts_at": time(10), "ends_at": time(15), "title": "Een dag in de bakkerij", "capacity": 6},
    )
    assert changed.sequence == 1 and uow.repo.offer_rows["o1"] == changed
    [event] = uow.of_type(OfferChanged)
    assert event.changed == ["starts_at", "ends_at", "capacity"]  # the title is the same: not changed
    assert (event.sequence, event.capacity, event.starts_at, event.offer_id, event.title) == (1, 6, time(10), "o1", changed.title)
    await service.change_offer(uow, EDITION_ID, "o1", principal=ORGANISER, changes={"date": DAY_IN + timedelta(days=1)},
                               correlation_id=CID)
    assert [e.sequence for e in uow.of_type(OfferChanged)] == [1, 2]


async def test_an_edit_without_a_difference_publishes_nothing():
    uow = given()
    same = await service.change_offer(uow, EDITION_ID, "o1", principal=ORGANISER, changes={"capacity": 4, "title": offer().title},
                                      correlation_id=CID)
    assert same == offer() and uow.published == []


async def test_an_edit_in_a_closed_edition_is_allowed_but_not_of_a_cancelled_offer_or_outside_the_edition():
    uow = given(editions=(edition(status="closed"),), offers=(offer(), offer("o2", status="cancelled")))
    await service.change_offer(uow, EDITION_ID, "o1", principal=ORGANISER, changes={"location": "Hengelo"}, correlation_id=CID)
    assert uow.of_type(OfferChanged)[0].changed == ["location"]
    await refused(uow, lambda: service.change_offer(uow, EDITION_ID, "o2", principal=ORGANISER, changes={"capacity": 1},
                                                    correlation_id=CID), Conflict, "offer_cancelled")
    error = await refused(uow, lambda: service.change_offer(uow, EDITION_ID, "o1", principal=ORGANISER,
                                                            changes={"date": DAY_OUT}, correlation_id=CID),
                          RuleViolation, "date_outside_edition")
    assert error.field == "date"
    await refused(uow, lambda: service.change_offer(uow, EDITION_ID, "o1", principal=OTHER_ORGANISER, changes={"capacity": 1},
                                                    correlation_id=CID), NotFound, "unknown_edition")


async def test_an_offer_is_cancelled_with_a_reason():
    from schemas import OfferCancelled

    uow = given()
    await service.cancel_offer(uow, EDITION_ID, "o1", principal=ORGANISER, reason="host ill", correlation_id=CID)
    assert [e.reason for e in uow.of_type(OfferCancelled)] == ["host ill"]


# --- sign-ups ---------------------------------------------------------------------------------------
async def test_a_signup_needs_consent_and_a_language_of_the_edition():
    uow = given(editions=(edition(languages=["nl"]),))
    error = await refused(uow, lambda: submit(uow, consent=False), RuleViolation, "consent_required")
    assert error.field == "consent"
    error = await refused(uow, lambda: submit(uow, language="de"), RuleViolation, "language_not_offered")
    assert error.field == "language"


async def test_a_signup_keeps_consent_and_learning_goal_and_tells_them_on_the_participants_topic():
    uow = given()
    new = await submit(uow, learning_goal="Leren over zorgrobots", language="de")
    assert (new.consented_at, new.signed_up_at, new.approval) == (NOW, NOW, "not_required")
    [submitted], [registered] = uow.of_type(SignupSubmitted), uow.of_type(ParticipantRegistered)
    assert submitted.approval == "not_required" and "learning_goal" not in submitted.model_dump()
    assert (registered.org, registered.learning_goal, registered.language) == ("org-z", "Leren over zorgrobots", "de")
    assert uow.of_type(NotificationRequested) == []


async def test_in_an_edition_that_requires_approval_the_organisation_must_be_registered():
    uow = given(editions=(edition(requires_approval=True),))
    error = await refused(uow, lambda: submit(uow), RuleViolation, "unknown_organisation")
    assert error.field == "org"


async def test_a_signup_that_needs_approval_is_pending_and_its_contact_is_asked_once():
    uow = given(editions=(edition(requires_approval=True),), organisations=(organisation(),))
    new = await submit(uow, learning_goal="Zorg")
    assert new.approval == "pending" and uow.repo.signup_rows[new.id].approval == "pending"
    [submitted] = uow.of_type(SignupSubmitted)
    assert submitted.approval == "pending"
    [request] = uow.of_type(NotificationRequested)
    assert request.notification_id == uuid.uuid5(domain.NAMESPACE, f"approval:{new.id}")
    assert request.template == "approval_requested" and request.region == "twente" and request.edition == EDITION_ID
    assert (request.recipient.name, request.recipient.email, request.recipient.language) == ("Carla Chef", "carla@example.org", "de")
    assert request.context == {
        "participant_name": "Anna de Vries", "organisation_name": "Gemeente Zwolle", "edition_name": edition().name,
        "learning_goal": "Zorg", "approval_url": approval_url(new.id, EDITION_ID, "org-z"),
    }


async def test_an_organiser_withdraws_on_someones_behalf_with_a_reason():
    uow = given(signups=(signup("s1"),))
    await service.withdraw_signup(uow, EDITION_ID, "s1", principal=ORGANISER, reason="left the company", correlation_id=CID)
    assert [e.reason for e in uow.of_type(SignupWithdrawn)] == ["left the company"]


async def test_erasure_blanks_the_learning_goal_and_the_approval_request():
    uow = given(signups=(signup("s1", learning_goal="Zorg"),))
    await service.erase_personal_data(uow, "s1", principal=ORGANISER, now=AFTER_DEADLINE)
    erased = uow.repo.signup_rows["s1"]
    assert (erased.name, erased.email, erased.learning_goal, erased.erased_at) == ("", "", "", AFTER_DEADLINE)
    assert uow.repo.erased_requests == [str(domain.approval_request_id("s1"))]


# --- participating organisations --------------------------------------------------------------------
async def test_organisations_are_registered_once_by_the_regions_organiser():
    uow = given()
    await service.register_organisation(uow, organisation(), principal=ORGANISER)
    assert await service.organisations(uow, EDITION_ID, principal=ADMIN) == [organisation()]
    error = await refused(uow, lambda: service.register_organisation(uow, organisation(), principal=ORGANISER),
                          Conflict, "organisation_exists")
    assert error.field == "id"
    await refused(uow, lambda: service.register_organisation(uow, organisation("o-b"), principal=OTHER_ORGANISER),
                  NotFound, "unknown_edition")
    await refused(uow, lambda: service.organisations(uow, EDITION_ID, principal=NATIONAL), Exception, "forbidden")
    assert uow.published == []  # organisations are never on a topic


# --- the employer's approval ------------------------------------------------------------------------
def pending(**overrides: Any) -> FakeRegistrationUow:
    return given(editions=(edition(requires_approval=True),), organisations=(organisation(),),
                 signups=(signup("s1", approval="pending", learning_goal="Zorg", **overrides),))


async def test_approving_announces_it_once_and_the_other_answer_afterwards_is_refused():
    uow = pending()
    details = await service.approval_details(uow, EDITION_ID, "s1", "org-z")
    assert (details.signup.name, details.organisation.name, [o.id for o in details.choices]) == ("Anna de Vries", "Gemeente Zwolle", ["o1"])
    results = [
        (await service.answer_approval(uow, EDITION_ID, "s1", "org-z", answer=a, correlation_id=CID)).result
        for a in ("approve", "approve", "refuse")
    ]
    assert results == ["answer", "again", "already_answered"]
    assert [e.signup_id for e in uow.of_type(SignupApproved)] == ["s1"] and uow.of_type(SignupRefused) == []
    assert uow.repo.signup_rows["s1"].approval == "approved" and uow.repo.signup_rows["s1"].status == "submitted"


async def test_refusing_ends_the_signup_with_the_reason():
    uow = pending()
    outcome = await service.answer_approval(uow, EDITION_ID, "s1", "org-z", answer="refuse", reason="busy", correlation_id=CID)
    assert outcome.result == "answer" and outcome.details.signup.status == "refused"
    [event] = uow.of_type(SignupRefused)
    assert (event.signup_id, event.reason, event.region) == ("s1", "busy", "twente")
    assert (uow.repo.signup_rows["s1"].status, uow.repo.signup_rows["s1"].approval) == ("refused", "refused")
    again = await service.answer_approval(uow, EDITION_ID, "s1", "org-z", answer="refuse", correlation_id=CID)
    assert again.result == "again" and len(uow.published) == 1
    # a refused sign-up is not withdrawn again
    await service.withdraw_signup(uow, EDITION_ID, "s1", principal=participant("s1"), correlation_id=CID)
    assert uow.of_type(SignupWithdrawn) == [] and uow.repo.signup_rows["s1"].status == "refused"


async def test_an_approval_link_of_another_organisation_or_a_withdrawn_signup():
    uow = pending()
    await refused(uow, lambda: service.approval_details(uow, EDITION_ID, "s1", "org-y"), NotFound, "unknown_signup")
    uow = pending(status="withdrawn")
    outcome = await service.answer_approval(uow, EDITION_ID, "s1", "org-z", answer="approve", correlation_id=CID)
    assert outcome.result == "ended" and uow.published == []


# --- changing choices -------------------------------------------------------------------------------
async def test_the_participant_changes_choices_until_the_deadline():
    uow = given(signups=(signup("s1"),))
    details = await service.change_choices(uow, EDITION_ID, "s1", principal=participant("s1"), choices=["o2", "o1"],
                                           now=NOW, correlation_id=CID)
    assert [o.id for o in details.choices] == ["o2", "o1"] and uow.repo.signup_rows["s1"].choices == ["o2", "o1"]
    [event] = uow.of_type(SignupChanged)
    assert (event.signup_id, event.choices, event.max_visits, event.available) == ("s1", ["o2", "o1"], 1, None)
    await service.change_choices(uow, EDITION_ID, "s1", principal=participant("s1"), choices=["o2", "o1"], now=NOW,
                                 correlation_id=CID)
    assert len(uow.published) == 1  # the same choices: nothing


@pytest.mark.parametrize(
    ("overrides", "code"),
    [({"now": AFTER_DEADLINE}, "deadline_passed"),
     ({"placement": domain.Placement("s1", "assigned", NOW, offer_id="o1", rank=1)}, "already_placed"),
     ({"placement": domain.Placement("s1", "offered", NOW, seat_offer_id="o2", position=1)}, "already_placed"),
     ({"edition": edition(status="closed")}, "edition_closed"),
     ({"signup": signup("s1", status="withdrawn")}, "signup_ended")],
)
async def test_choices_do_not_change_after_the_deadline_or_once_placed(overrides, code):
    placements = (overrides["placement"],) if "placement" in overrides else ()
    uow = given(editions=(overrides.get("edition", edition()),), signups=(overrides.get("signup", signup("s1")),),
                placements=placements)
    await refused(uow, lambda: service.change_choices(uow, EDITION_ID, "s1", principal=participant("s1"), choices=["o2"],
                                                      now=overrides.get("now", NOW), correlation_id=CID), Conflict, code)


async def test_waiting_participants_may_still_change_and_new_choices_follow_the_rules():
    uow = given(signups=(signup("s1"),), placements=(domain.Placement("s1", "waitlisted", NOW, position=3),))
    error = await refused(uow, lambda: service.change_choices(uow, EDITION_ID, "s1", principal=participant("s1"),
                                                              choices=["o1", "o9"], now=NOW, correlation_id=CID),
                          RuleViolation, "unknown_offer")
    assert error.field == "choices.1"
    await refused(uow, lambda: service.change_choices(uow, EDITION_ID, "s1", principal=participant("s2"), choices=["o2"],
                                                      now=NOW, correlation_id=CID), NotFound, "unknown_edition")
    await service.change_choices(uow, EDITION_ID, "s1", principal=participant("s1"), choices=["o2"], now=NOW, correlation_id=CID)
    assert len(uow.of_type(SignupChanged)) == 1


async def test_the_signup_page_says_whether_choices_may_change():
    uow = given(signups=(signup("s1"), signup("s2", email="b@example.org", org="host-b")),
                placements=(domain.Placement("s2", "assigned", NOW, offer_id="o1", rank=1),))
    mine = await service.signup_details(uow, EDITION_ID, "s1", principal=participant("s1"), now=NOW)
    assert mine.change_refused is None and [o.id for o in mine.choosable] == ["o1", "o2"]
    placed = await service.signup_details(uow, EDITION_ID, "s2", principal=participant("s2"), now=NOW)
    assert placed.change_refused == "already_placed" and placed.choosable == [] and list(placed.placed_offers) == ["o1"]
    late = await service.signup_details(uow, EDITION_ID, "s1", principal=participant("s1"), now=AFTER_DEADLINE)
    assert late.change_refused == "deadline_passed"


# --- feedback ---------------------------------------------------------------------------------------
async def test_feedback_is_stored_and_announced_once():
    uow = given(signups=(signup("s1", language="en"),))
    moment = datetime(2027, 6, 1, 17, tzinfo=UTC)
    details, fresh = await service.submit_feedback(uow, EDITION_ID, "s1", "o1", principal=participant("s1"), rating=4,
                                                   learned="Bread needs time", share_publicly=True, now=moment,
                                                   correlation_id=CID)
    assert fresh and details.feedback is not None
    [event] = uow.of_type(FeedbackSubmitted)
    expected_id = "f-" + uuid.uuid5(domain.NAMESPACE, "s1:o1").hex[:20]
    assert (event.feedback_id, event.signup_id, event.offer_id, event.rating, event.learned) == (expected_id, "s1", "o1", 4, "Bread needs time")
    assert (event.share_publicly, event.language, event.submitted_at, event.region) == (True, "en", moment, "twente")
    assert uow.repo.feedback_rows["s1", "o1"].learned == "Bread needs time"
    details, fresh = await service.submit_feedback(uow, EDITION_ID, "s1", "o1", principal=participant("s1"), rating=1,
                                                   now=moment, correlation_id=CID)
    assert not fresh and details.feedback.rating == 4 and len(uow.published) == 1


async def test_feedback_is_only_through_the_participants_own_link_on_an_offer_of_the_edition():
    uow = given(signups=(signup("s1"),))
    await refused(uow, lambda: service.submit_feedback(uow, EDITION_ID, "s1", "o1", principal=participant("s2"), rating=3,
                                                       now=NOW, correlation_id=CID), NotFound, "unknown_edition")
    await refused(uow, lambda: service.submit_feedback(uow, EDITION_ID, "s1", "o9", principal=participant("s1"), rating=3,
                                                       now=NOW, correlation_id=CID), NotFound, "unknown_offer")


# --- placements (the matches topic) -----------------------------------------------------------------
async def test_placements_follow_what_matching_told_the_participant():
    uow = given()
    t = [NOW + timedelta(minutes=i) for i in range(6)]
    expires = NOW + timedelta(days=2)

    async def step(call: Any) -> domain.Placement | None:
        async with uow.transaction() as tx:
            await call(tx)
        return uow.repo.placement_rows.get("s1")

    p = await step(lambda tx: service.placement_waitlisted(tx, "s1", position=3, reason_code="all_full", at=t[0]))
    assert (p.outcome, p.position, p.reason_code) == ("waitlisted", 3, "all_full")
    p = await step(lambda tx: service.placement_seat_offered(tx, "s1", offer_id="o2", rank=2, expires_at=expires, at=t[1]))
    assert (p.outcome, p.position, p.seat_offer_id, p.seat_offer_rank, p.seat_offer_expires_at) == ("offered", 3, "o2", 2, expires)
    p = await step(lambda tx: service.placement_waitlisted(tx, "s1", position=1, reason_code="all_full", at=t[2]))
    assert (p.outcome, p.position, p.seat_offer_id) == ("offered", 1, "o2")  # the seat offer is still open
    p = await step(lambda tx: service.placement_seat_offer_ended(tx, "s1", offer_id="o9", at=t[3]))
    assert p.outcome == "offered"  # not that seat offer: nothing changes
    p = await step(lambda tx: service.placement_seat_offer_ended(tx, "s1", offer_id="o2", at=t[3]))
    assert (p.outcome, p.position, p.seat_offer_id) == ("waitlisted", 1, None)
    p = await step(lambda tx: service.placement_assigned(tx, "s1", offer_id="o1", rank=1, at=t[4]))
    assert (p.outcome, p.offer_id, p.rank, p.position, p.updated_at) == ("assigned", "o1", 1, None, t[4])
    p = await step(lambda tx: service.placement_unmatched(tx, "s1", reason_code="seat_offers_ended", at=t[5]))
    assert (p.outcome, p.offer_id, p.reason_code) == ("unmatched", None, "seat_offers_ended")
    assert uow.published == []


def test_an_edit_may_only_touch_changeable_fields():
    with pytest.raises(RuleViolation) as exc:
        domain.offer_change(edition(), offer(), {"host_org": "x"})
    assert exc.value.code == "not_changeable"
    change = domain.offer_change(edition(), replace(offer(), sequence=4), {"host_contact": HOST})
    assert (change.changed, change.offer.sequence) == (["host_contact"], 5)
