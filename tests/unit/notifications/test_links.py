"""The seat offer e-mail's links: matching's participant link pages, each with a token for one answer."""

from __future__ import annotations

import re

import pytest

from estafette.runtime.auth import LinkInvalid
from tests.unit.notifications import builders

LINK = re.compile(r"^https://matching\.example\.org/links/seat-offers/(?P<token>[A-Za-z0-9_.-]+)/(?P<answer>accept|decline)$")


@pytest.mark.parametrize("answer", ["accept", "decline"])
def test_each_answer_has_its_own_signed_link_to_matchings_page(answer: str) -> None:
    url = builders.answer_links()(answer, "s-1", "e-1", "o-1")  # type: ignore[arg-type]

    found = LINK.match(url)
    assert found is not None and found["answer"] == answer, url  # the base URL's trailing slash is dropped
    claims = builders.LINKS.read(found["token"], f"seat_offer_{answer}", 3600)
    assert (claims.signup_id, claims.edition_id, claims.ref) == ("s-1", "e-1", "o-1")  # bound to the offer


def test_a_token_for_one_answer_is_invalid_for_the_other() -> None:
    accept = LINK.match(builders.answer_links()("accept", "s-1", "e-1", "o-1"))
    assert accept is not None
    with pytest.raises(LinkInvalid):
        builders.LINKS.read(accept["token"], "seat_offer_decline", 3600)


def test_my_sign_up_and_feedback_links_lead_to_registrations_pages_with_tokens_for_that_purpose_only() -> None:
    from services.notifications.links import ParticipantLinks

    links = ParticipantLinks(builders.LINKS, "https://registration.example.org/")
    signup = re.fullmatch(r"https://registration\.example\.org/links/signup/(?P<token>[A-Za-z0-9_.-]+)", links.signup("s-1", "e-1"))
    feedback = re.fullmatch(
        r"https://registration\.example\.org/links/feedback/(?P<token>[A-Za-z0-9_.-]+)", links.feedback("s-1", "e-1", "o-1")
    )
    assert signup is not None and feedback is not None
    mine = builders.LINKS.read(signup["token"], "signup", 3600)
    visit = builders.LINKS.read(feedback["token"], "feedback", 3600)
    assert (mine.signup_id, mine.edition_id, mine.ref) == ("s-1", "e-1", None)
    assert (visit.signup_id, visit.edition_id, visit.ref) == ("s-1", "e-1", "o-1")  # bound to the visit
    with pytest.raises(LinkInvalid):
        builders.LINKS.read(signup["token"], "feedback", 3600)
    with pytest.raises(LinkInvalid):
        builders.LINKS.read(feedback["token"], "signup", 3600)
