"""The e-mails' texts are found by the extraction (the completeness of every catalog is checked in
tests/contract/test_catalogs.py)."""

from services.notifications import rendering
from tests.catalogs import extracted


def test_texts_are_extracted_from_templates_and_code() -> None:
    assert "Dear %(name)s," in extracted("notifications")  # a template
    assert set(rendering.UNMATCHED_SENTENCES.values()) | set(rendering.FORMAT_LABELS.values()) <= extracted("notifications")
