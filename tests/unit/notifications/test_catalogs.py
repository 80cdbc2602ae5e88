"""The e-mails' texts are found by the extraction (the completeness of every catalog is checked in
tests/contract/test_catalogs.py), and no English text leaks into a Dutch or German e-mail."""

from __future__ import annotations

import re

import pytest

from services.notifications import rendering
from services.notifications.rendering import Renderer
from tests.catalogs import catalog, extracted
from tests.unit.notifications.test_rendering import JOURNEY, visible


def test_texts_are_extracted_from_templates_and_code() -> None:
    assert "Dear %(name)s," in extracted("notifications")  # a template
    in_code = (
        set(rendering.UNMATCHED_SENTENCES.values()) | set(rendering.FORMAT_LABELS.values())
        | set(rendering.PART_OF_DAY_LABELS.values()) | set(rendering.CHANGED_FIELD_LABELS.values())
        | {rendering.CHANGED_FALLBACK, rendering.UNMATCHED_FALLBACK}
    )
    assert in_code <= extracted("notifications")


def test_every_kind_has_both_templates() -> None:
    for kind in Renderer.kinds():
        for form in ("txt", "html"):
            assert (rendering.TEMPLATES / f"{kind}.{form}.j2").is_file(), f"{kind}.{form}.j2"


def english_phrases() -> set[str]:
    """The English texts of the catalog as a reader could meet them: the literal parts between
    placeholders that have at least two words (single words such as "online" or "Name" are the same
    in German or Dutch)."""
    phrases: set[str] = set()
    for message in catalog("notifications", "en"):
        if not message.id:
            continue
        for string in message.string if isinstance(message.string, tuple) else (message.string,):
            for part in re.split(r"%\(\w+\)[sd]|%%", string):
                part = part.strip(" ,.:;!?()\"'")
                if " " in part:
                    phrases.add(part)
    return phrases


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def leaks(renderer: Renderer, kind: str, language: str) -> list[str]:
    out = renderer.render(kind, language, "Piet", JOURNEY[kind])
    bodies = (out.subject, out.text, visible(out.html))
    return sorted(p for p in english_phrases() if any(p in body for body in bodies))


@pytest.mark.parametrize("language", ["nl", "de"])
@pytest.mark.parametrize("kind", sorted(JOURNEY))
def test_no_english_text_in_a_dutch_or_german_message(renderer: Renderer, kind: str, language: str) -> None:
    assert leaks(renderer, kind, language) == []


@pytest.mark.parametrize("kind", sorted(JOURNEY))
def test_the_english_message_is_made_of_those_phrases(renderer: Renderer, kind: str) -> None:
    """The check above can fail: the same phrases are found in the English message."""
    assert len(leaks(renderer, kind, "en")) >= 3
