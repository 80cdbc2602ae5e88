"""A missing translation fails here: every text the templates and the code mark for translation is in
the nl, de and en catalogs, translated (non-empty, not fuzzy), with the same placeholders; and the
catalogs hold nothing else (no obsolete or stale entries). Fix with `make i18n-update`, then translate."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from services.notifications import rendering

ROOT = Path(__file__).resolve().parents[3]
SERVICE = ROOT / "services" / "notifications"
LANGUAGES = ("nl", "de", "en")


@pytest.fixture(scope="module")
def extracted() -> set[str]:
    """The message ids `pybabel extract -F babel.cfg` finds in the service (templates and code)."""
    with (ROOT / "babel.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f)
    ids = {message for _, _, message, _, _ in extract_from_dir(SERVICE, method_map, options_map)}
    return {m if isinstance(m, str) else m[0] for m in ids}


def catalog(language: str) -> Catalog:
    with (rendering.LOCALE / language / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return read_po(f, locale=language)


def test_texts_are_extracted_from_templates_and_code(extracted: set[str]) -> None:
    assert "Dear %(name)s," in extracted  # a template
    assert set(rendering.UNMATCHED_SENTENCES.values()) | set(rendering.FORMAT_LABELS.values()) <= extracted  # code


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_text_is_translated(extracted: set[str], language: str) -> None:
    po = catalog(language)
    messages = {m.id: m for m in po if m.id}
    assert not po.fuzzy, f"the {language} catalog is fuzzy (no header?): pybabel compile would skip it"

    assert sorted(extracted - set(messages)) == [], f"missing in {language}: run `make i18n-update`, then translate"
    assert sorted(set(messages) - extracted) == [], f"stale in {language}: run `make i18n-update`"
    assert not po.obsolete, f"obsolete entries in {language}: remove them"
    assert [m.id for m in messages.values() if not m.string] == [], f"untranslated in {language}"
    assert [m.id for m in messages.values() if m.fuzzy] == [], f"fuzzy in {language}: check and clear the flag"
    assert [(m.id, errors) for m, errors in po.check()] == [], f"placeholders differ in {language}"


@pytest.mark.parametrize("language", ("nl", "de"))
def test_the_other_languages_are_not_english(language: str) -> None:
    po = catalog(language)
    same = [m.id for m in po if m.id and m.string == m.id and " " in m.id]
    assert same == [], f"copied from English in {language}"
