"""The link pages' texts are found by the extraction (the completeness of every catalog is checked in
tests/contract/test_catalogs.py)."""

from services.registration import pages
from tests.catalogs import extracted


def test_texts_are_extracted_from_the_code() -> None:
    tables = (pages.STATUS_TEXTS, pages.APPROVAL_TEXTS, pages.CHANGE_REFUSED, pages.PART_OF_DAY, pages.RATINGS)
    texts = {text for table in tables for text in table.values()}
    assert {"Your sign-up", "Withdraw my sign-up", "This link has expired", "Approve a sign-up", "Your feedback",
            "Change your choices"} | texts <= extracted("registration")
