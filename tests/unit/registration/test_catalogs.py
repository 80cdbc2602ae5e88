"""The link page's texts are found by the extraction (the completeness of every catalog is checked in
tests/contract/test_catalogs.py)."""

from services.registration import pages
from tests.catalogs import extracted


def test_texts_are_extracted_from_the_code() -> None:
    assert {"Your sign-up", "Withdraw my sign-up", "This link has expired"} | set(pages.STATUS_TEXTS.values()) <= extracted("registration")
