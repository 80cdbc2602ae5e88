"""The link pages' texts are found by the extraction (the completeness of every catalog is checked
in tests/contract/test_catalogs.py)."""

from services.matching import link_pages
from services.matching.domain import SEAT_OFFER_STATES
from tests.catalogs import extracted


def test_texts_are_extracted_from_the_code() -> None:
    texts = {t for pair in link_pages.TEXTS.values() for t in pair} | set(link_pages.BUTTONS.values())
    texts |= set(link_pages.NOT_OPEN.values()) | {*link_pages.LINK_EXPIRED, *link_pages.LINK_INVALID, *link_pages.NO_SEAT_OFFER}
    assert texts <= extracted("matching")
    assert {"Offer", "Held for you until"} <= extracted("matching")  # labels written inline


def test_every_state_a_seat_offer_can_end_in_has_a_sentence() -> None:
    assert set(link_pages.NOT_OPEN) == set(SEAT_OFFER_STATES) - {"open"}
