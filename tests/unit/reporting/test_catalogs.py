"""The dashboard's translations are complete: every text marked in the templates and the code
(extracted as `pybabel extract -F babel.cfg` does) is in the nl, de and en catalog, translated, not
fuzzy, and no catalog keeps texts that are no longer used."""

from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from estafette.runtime.i18n import LANGUAGES

ROOT = Path(__file__).resolve().parents[3]
SERVICE = ROOT / "services" / "reporting"


def extracted_ids() -> set[str]:
    with (ROOT / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    found = set()
    for _filename, _lineno, message, _comments, _context in extract_from_dir(SERVICE, method_map, options_map):
        found.add(message if isinstance(message, str) else message[0])
    return found


def catalog(lang: str) -> Catalog:
    with (SERVICE / "locale" / lang / "LC_MESSAGES" / "messages.po").open("rb") as po:
        return read_po(po, locale=lang)


def test_the_extraction_finds_the_texts_of_templates_and_code():
    ids = extracted_ids()
    assert {"Sign-ups", "Relay legs", "closed"} <= ids  # a template text and a text marked in dashboard.py
    assert len(ids) >= 30


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_text_is_translated_in_every_language(lang):
    cat, ids = catalog(lang), extracted_ids()
    entries = {m.id: m for m in cat if m.id}
    assert sorted(ids - set(entries)) == [], f"missing from the {lang} catalog: run the i18n workflow (README)"
    untranslated = sorted(m.id for m in entries.values() if not m.string or m.fuzzy)
    assert untranslated == [], f"untranslated or fuzzy in {lang}"
    assert sorted(set(entries) - ids) == [] and not cat.obsolete, f"texts no longer used in the {lang} catalog"
    assert [(m.id, errors) for m, errors in cat.check()] == []


def test_the_catalogs_differ_where_the_languages_do():
    nl, de, en = (catalog(lang) for lang in ("nl", "de", "en"))
    assert nl["Sign-ups"].string == "Aanmeldingen" and de["Sign-ups"].string == "Anmeldungen"
    assert all(m.string == m.id for m in en if m.id)  # English texts are the message ids
