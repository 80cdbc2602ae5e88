"""Locale negotiation (Babel) and catalogs that must be compiled."""

from pathlib import Path

import pytest

from estafette.runtime.i18n import MissingCatalog, load_translations, negotiate


@pytest.mark.parametrize(
    ("requested", "header", "expected"),
    [
        ("de", "en", "de"),
        ("EN", None, "en"),
        ("fr", None, "nl"),
        (None, "de-DE,de;q=0.9,en;q=0.8", "de"),
        (None, "fr-FR, en;q=0.3, nl;q=0.9", "nl"),
        (None, "en-GB", "en"),
        (None, "fr, es;q=0.5", "nl"),
        (None, "de;q=0, en;q=0.1", "en"),
        (None, "nl;q=abc, en;q=0.2", "en"),
        (None, "", "nl"),
    ],
)
def test_negotiation_takes_the_parameter_then_the_best_accept_language(requested, header, expected):
    assert negotiate(requested, header) == expected


def test_a_catalog_that_was_not_compiled_is_a_clear_error(tmp_path: Path):
    with pytest.raises(MissingCatalog, match="make install"):
        load_translations(tmp_path, ["nl"])
