"""Reporting's subscriptions: exactly the topics the service registry says it reads, and every event type
of each such topic in its dispatch table (handled, or explicitly ignored), so that a new event type on a
consumed topic is a decision, not an accident."""

from schemas import SignupChanged
from services.registry import SERVICES
from services.reporting import handlers
from services.reporting.handlers import SUBSCRIPTIONS


def test_reporting_subscribes_to_what_the_registry_says_it_reads():
    (spec,) = [s for s in SERVICES if s.name == "reporting"]
    assert set(SUBSCRIPTIONS) == set(spec.reads)


def test_every_event_type_of_a_consumed_topic_is_handled_or_explicitly_ignored():
    for topic, (_, table) in SUBSCRIPTIONS.items():
        assert set(table) == set(topic.events), topic.kind


def test_only_signup_changed_is_ignored():
    ignored = {cls for _, table in SUBSCRIPTIONS.values() for cls, handler in table.items() if handler is handlers.ignored}
    assert ignored == {SignupChanged}
