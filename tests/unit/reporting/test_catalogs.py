"""The dashboard's texts are found by the extraction and differ where the languages do (the
completeness of every catalog is checked in tests/contract/test_catalogs.py)."""

from tests.catalogs import catalog, extracted


def test_the_extraction_finds_the_texts_of_templates_and_code():
    assert {"Sign-ups", "Relay legs", "closed"} <= extracted("reporting")  # a template text and one marked in dashboard.py


def test_the_catalogs_differ_where_the_languages_do():
    nl, de, en = (catalog("reporting", lang) for lang in ("nl", "de", "en"))
    assert nl["Sign-ups"].string == "Aanmeldingen" and de["Sign-ups"].string == "Anmeldungen"
    assert all(m.string == m.id for m in en if m.id)  # English texts are the message ids
