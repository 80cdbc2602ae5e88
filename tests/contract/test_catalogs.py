"""A missing translation fails here: for every service with catalogs and every language, each text the
code and templates mark for translation is in the catalog, translated, not fuzzy, with the same
placeholders, and the catalog holds nothing else. Fix with `make i18n-update`, then translate."""

import pytest

from estafette.runtime.i18n import LANGUAGES
from tests.catalogs import SERVICES_WITH_CATALOGS, extracted, problems


def test_the_services_that_speak_to_people_have_catalogs():
    assert {"matching", "notifications", "registration", "reporting"} <= set(SERVICES_WITH_CATALOGS)


@pytest.mark.parametrize("service", SERVICES_WITH_CATALOGS)
def test_texts_are_found_in_code_and_templates(service):
    assert len(extracted(service)) >= 10


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("service", SERVICES_WITH_CATALOGS)
def test_every_text_is_translated(service, language):
    assert problems(service, language) == []
