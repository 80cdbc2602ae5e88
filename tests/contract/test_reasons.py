"""Unmatched reason codes: the published list (schemas/reasons.py) is what the matching engine emits
and what every participant-facing text explains, in every language.

This is the test that would have caught the engine emitting `full` while the contract and the e-mail
texts said `all_full`: the participant then got the generic sentence instead of the reason.
"""

from __future__ import annotations

import pytest

from schemas.reasons import REASON_TEXTS, UNMATCHED_REASONS
from services.matching.engine import UNMATCHED_CODES
from services.notifications.rendering import UNMATCHED_FALLBACK, Renderer

LANGUAGES = ("nl", "de", "en")


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def test_every_code_the_engine_emits_is_published() -> None:
    assert sorted(set(UNMATCHED_CODES) - set(UNMATCHED_REASONS)) == []


def test_every_published_code_has_an_english_explanation() -> None:
    assert set(REASON_TEXTS) == set(UNMATCHED_REASONS)


@pytest.mark.parametrize("code", UNMATCHED_REASONS)
def test_every_published_code_has_its_own_sentence_in_every_language(renderer: Renderer, code: str) -> None:
    sentences = {}
    for language in LANGUAGES:
        sentence = renderer.unmatched_reason(code, language)
        fallback = renderer.unmatched_reason("not-a-published-code", language)
        assert sentence != fallback, f"{code!r} gets the generic sentence in {language}"
        out = renderer.render("unmatched", language, "Sam", {"reason_code": code})
        assert sentence in out.text and fallback not in out.text
        sentences[language] = sentence
    assert len(set(sentences.values())) == len(LANGUAGES), f"{code!r} is not translated: {sentences}"


def test_an_unknown_code_gets_the_kind_general_sentence(renderer: Renderer) -> None:
    assert renderer.unmatched_reason("something_new", "en") == UNMATCHED_FALLBACK
