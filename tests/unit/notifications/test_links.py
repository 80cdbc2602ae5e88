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
