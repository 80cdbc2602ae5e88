"""Contract: what each service consumes and publishes is what services/registry.py declares (its Kafka
principal is granted exactly that), and the region registry file is valid."""

import re

import pytest

from estafette.tools import regions
from schemas.topics import DEAD_LETTERS, NATIONAL_DEAD_LETTERS, REGION_ID_PATTERN
from services.registry import SERVICES


@pytest.mark.parametrize("spec", SERVICES, ids=lambda s: s.name)
def test_a_services_subscriptions_and_publications_are_what_the_registry_grants(spec):
    app = spec.create_app()
    assert set(app.consumed_topics) == set(spec.reads)
    # A consumer may dead-letter what it cannot handle: in the region of the record, or nationally.
    dead_letters = set()
    if any(t.regional for t in app.consumed_topics):
        dead_letters.add(DEAD_LETTERS)
    if any(not t.regional for t in app.consumed_topics):
        dead_letters.add(NATIONAL_DEAD_LETTERS)
    assert set(app.produced_topics) | dead_letters == set(spec.writes)


def test_only_regional_services_can_be_started_for_some_regions():
    by_name = {s.name: s for s in SERVICES}
    assert by_name["matching"].regional and by_name["notifications"].regional
    assert not by_name["registration"].regional and not by_name["reporting"].regional


def test_the_registry_file_is_valid_and_every_id_can_name_topics():
    records = regions.load()
    assert records and all(re.fullmatch(REGION_ID_PATTERN, r.id) for r in records)
    assert len({r.id for r in records}) == len(records)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no [[region]] entries"),
        ('[[region]]\nid = "Twente"\nnames = { nl = "T", de = "T", en = "T" }\n', "region[0] ('Twente') id"),
        ('[[region]]\nid = "x"\nnames = { nl = "X", de = "X", en = "X" }\ntimezone = "Mars/Base"\n', "unknown time zone"),
        ('[[region]]\nid = "x"\nnames = { nl = "X", de = "X", en = "X" }\n[[region]]\nid = "x"\nnames = { nl = "X", de = "X", en = "X" }\n', "listed twice: x"),
        ("[[region]\n", "not valid TOML"),
    ],
)
def test_a_wrong_registry_file_is_refused_naming_the_entry(tmp_path, text, message):
    path = tmp_path / "regions.toml"
    path.write_text(text)
    with pytest.raises(regions.RegistryError, match=re.escape(message)):
        regions.load(path)

