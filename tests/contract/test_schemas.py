"""Contract tests: v1 events change additively only, and the committed JSON Schemas are current."""

import copy
import uuid

import pytest

from schemas import ALL_EVENTS, TOPICS, decode_event, topic_for
from schemas.generate import check_additive, committed_schemas, current_schemas, render


def test_committed_v1_schemas_accept_the_current_models_additively():
    problems = check_additive(committed_schemas(), current_schemas())
    assert problems == [], "breaking change to a v1 event:\n" + "\n".join(problems)


def test_committed_schema_files_are_up_to_date():
    committed = committed_schemas()
    stale = [name for name, doc in current_schemas().items() if name not in committed or render(committed[name]) != render(doc)]
    assert stale == [], f"run `estafette schemas generate` and commit: {stale}"


@pytest.fixture
def signup_schema():
    return copy.deepcopy(current_schemas()["SignupSubmitted.json"])


def test_guard_rejects_a_removed_field(signup_schema):
    new = copy.deepcopy(signup_schema)
    del new["properties"]["email"]
    assert check_additive({"SignupSubmitted.json": signup_schema}, {"SignupSubmitted.json": new}) == [
        "SignupSubmitted.email: removed"
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
    names = [t.name for t in TOPICS]
    assert len(set(names)) == len(names)
    assert all(name.startswith("estafette.") and name.endswith(".v1") for name in names)


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
