"""Contract tests: events change additively only within their version (v2), the committed JSON Schemas
are current, and topic names follow the one scheme of schemas/topics.py."""

import copy
import uuid

import pytest

from schemas import ALL_EVENTS, TOPICS, decode_event, topic_for, topic_name
from schemas.generate import SCHEMA_DIR, check_additive, committed_schemas, current_schemas, render
from schemas.topics import (
    DEAD_LETTERS,
    MATCHES,
    NATIONAL,
    NATIONAL_DEAD_LETTERS,
    PARTICIPANTS,
    REGIONAL,
    RELAY,
    VERSION,
    dead_letters_for,
    parse,
    subscription_pattern,
)


def test_committed_schemas_of_the_current_version_accept_the_current_models_additively():
    assert SCHEMA_DIR.name == f"v{VERSION}"
    problems = check_additive(committed_schemas(), current_schemas())
    assert problems == [], f"breaking change to a v{VERSION} event:\n" + "\n".join(problems)


def test_the_published_v1_contract_is_kept_as_it_was():
    v1 = committed_schemas(SCHEMA_DIR.parent / "v1")
    assert "SignupSubmitted.json" in v1 and "email" in v1["SignupSubmitted.json"]["properties"]


def test_committed_schema_files_are_up_to_date():
    committed = committed_schemas()
    stale = [name for name, doc in current_schemas().items() if name not in committed or render(committed[name]) != render(doc)]
    assert stale == [], f"run `estafette schemas generate` and commit: {stale}"


@pytest.fixture
def signup_schema():
    return copy.deepcopy(current_schemas()["SignupSubmitted.json"])


def test_guard_rejects_a_removed_field(signup_schema):
    new = copy.deepcopy(signup_schema)
    del new["properties"]["org"]
    assert check_additive({"SignupSubmitted.json": signup_schema}, {"SignupSubmitted.json": new}) == [
        "SignupSubmitted.org: removed"
    ]


def test_guard_rejects_a_changed_type(signup_schema):
    new = copy.deepcopy(signup_schema)
    new["properties"]["max_visits"] = {"type": "string"}
    assert check_additive({"SignupSubmitted.json": signup_schema}, {"SignupSubmitted.json": new}) == [
        "SignupSubmitted.max_visits: schema changed"
    ]


def test_guard_rejects_a_new_required_field_but_accepts_a_new_optional_one(signup_schema):
    required = copy.deepcopy(signup_schema)
    required["properties"]["phone"] = {"type": "string"}
    required["required"].append("phone")
    optional = copy.deepcopy(required)
    optional["required"].remove("phone")
    old = {"SignupSubmitted.json": signup_schema}
    assert check_additive(old, {"SignupSubmitted.json": required}) == [
        "SignupSubmitted.phone: newly required (new fields must be optional)"
    ]
    assert check_additive(old, {"SignupSubmitted.json": optional}) == []


def test_guard_rejects_a_removed_event(signup_schema):
    assert check_additive({"SignupSubmitted.json": signup_schema}, {}) == ["SignupSubmitted: event removed"]


def test_every_event_has_exactly_one_topic_and_a_key_field():
    for event in ALL_EVENTS:
        topic = topic_for(event)
        assert event.key_field in event.model_fields, event.__name__
        assert [t for t in TOPICS if event in t.events] == [topic]


def test_topic_names_are_unique_and_versioned():
    names = [t.name_in("twente") for t in REGIONAL] + [t.name for t in NATIONAL]
    assert len(set(names)) == len(names)
    assert all(name.startswith("estafette.") and name[-3:] in (".v1", ".v2") for name in names)
    assert MATCHES.name_in("twente") == "estafette.twente.matches.v2"
    assert RELAY.name == "estafette.relay.v2"


def test_every_topic_name_parses_back_to_its_topic_and_region():
    for region in ("twente", "noord-holland", "a1"):
        for topic in REGIONAL:
            assert parse(topic.name_in(region)) == (topic, region)
    for topic in NATIONAL:
        assert parse(topic.name) == (topic, None)
    for other in ("estafette.twente.matches.v1", "estafette.twente.unknown.v2", "other.twente.matches.v2", "__consumer_offsets"):
        with pytest.raises(ValueError):
            parse(other)


@pytest.mark.parametrize("bad", ["", "Twente", "twente.nl", "1twente", "-x", "a" * 41, "twente_2"])
def test_a_region_id_that_cannot_be_one_segment_of_a_topic_name_is_refused(bad):
    with pytest.raises(ValueError):
        MATCHES.name_in(bad)


def test_regional_and_national_topics_are_not_mixed_up():
    with pytest.raises(ValueError):
        MATCHES.name  # noqa: B018 - regional: needs a region
    with pytest.raises(ValueError):
        RELAY.name_in("twente")


def test_a_subscription_pattern_matches_its_topics_in_every_region_and_nothing_else():
    import re

    pattern = re.compile(subscription_pattern([MATCHES, RELAY]))
    assert pattern.match(MATCHES.name_in("twente")) and pattern.match(MATCHES.name_in("new-region"))
    assert pattern.match(RELAY.name)
    for other in (PARTICIPANTS.name_in("twente"), "estafette.twente.matches.v1", "estafette.matches.v2",
                  "xestafette.twente.matches.v2", "estafette.twente.matches.v2x"):
        assert not pattern.match(other), other


def test_events_go_to_their_regions_topic_and_dead_letters_stay_in_the_region():
    from schemas import ParticipantRegistered, RelayLegStarted

    person = ParticipantRegistered(region="twente", edition="e", signup_id="s-1", name="A", email="a@example.org")
    assert topic_name(person) == "estafette.twente.participants.v2" and person.key == "s-1"
    assert topic_name(RelayLegStarted(region="twente", edition="e", leg_id="l", starts_on="2027-11-01")) == RELAY.name
    assert dead_letters_for(MATCHES.name_in("twente")) == DEAD_LETTERS.name_in("twente")
    assert dead_letters_for(RELAY.name) == NATIONAL_DEAD_LETTERS.name
    assert PARTICIPANTS.compacted() and PARTICIPANTS.key == "signup_id"
    assert [t for t in TOPICS if t.personal_data] == [PARTICIPANTS]  # never copied into a dead letter


def test_personal_data_fields_are_only_on_the_participants_topic():
    for event in ALL_EVENTS:
        fields = set(event.model_fields)
        if topic_for(event) is PARTICIPANTS:
            assert {"name", "email"} <= fields
        elif event.__name__ != "NotificationRequested":  # another pipeline's request names its recipient
            assert not {"email", "recipient"} & fields, event.__name__
            if "signup_id" in fields:  # about a person: not even a name
                assert "name" not in fields, event.__name__


def test_events_round_trip_through_json_with_the_envelope():
    from schemas import OfferCancelled

    event = OfferCancelled(region="twente", edition="wvdu-2027", offer_id="o-1", reason="host ill")
    decoded = decode_event(event.model_dump_json())
    assert decoded == event
    assert isinstance(decoded.event_id, uuid.UUID) and decoded.occurred_at.tzinfo is not None
    assert decoded.key == "o-1"


def test_unknown_fields_from_a_newer_producer_are_ignored():
    from schemas import SignupWithdrawn

    raw = SignupWithdrawn(region="r", edition="e", signup_id="s-1").model_dump(mode="json")
    raw["added_in_a_later_minor"] = "x"
    assert decode_event(__import__("json").dumps(raw)).signup_id == "s-1"


def test_committed_asyncapi_documents_are_up_to_date():
    from estafette.tools.asyncapi import ASYNCAPI_DIR, documents

    stale = [name for name, text in documents().items() if not (ASYNCAPI_DIR / name).exists() or (ASYNCAPI_DIR / name).read_text() != text]
    assert stale == [], f"run `estafette schemas asyncapi` and commit: {stale}"
