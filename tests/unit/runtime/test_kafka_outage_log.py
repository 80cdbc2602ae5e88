"""The Kafka outage log filter (runtime/logging.py): a flood of aiokafka lines becomes a state change,
a summary a minute and a recovery line."""

from __future__ import annotations

import logging

import pytest

from estafette.runtime.logging import KafkaOutageLog


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _record(message: str, name: str = "aiokafka", level: int = logging.ERROR, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, args, None)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_an_outage_is_one_line_then_a_summary_a_minute(clock: Clock) -> None:
    outage = KafkaOutageLog(summary_seconds=60, clock=clock)
    passed = []
    for i in range(6000):  # 100 lines a second for a minute and a bit
        clock.now += 0.01 + (1.0 if i == 5999 else 0)
        record = _record("Unable connect to node with id %s: %s", "aiokafka", logging.ERROR, 1, "refused")
        if outage.filter(record):
            passed.append(record)
    assert [r.getMessage() for r in passed] == ["kafka unreachable", "kafka still unreachable"]
    first, summary = passed
    assert first.name == "estafette.runtime.kafka" and first.levelname == "WARNING"
    assert first.first_error == "Unable connect to node with id 1: refused"  # type: ignore[attr-defined]
    assert summary.suppressed == 5998 and summary.down_seconds == 61  # type: ignore[attr-defined]
    assert outage.unreachable


def test_an_outage_ends_when_kafka_answers_again(clock: Clock) -> None:
    outage = KafkaOutageLog(quiet_seconds=15, clock=clock)
    assert outage.filter(_record("Unable to update metadata from [1]"))
    assert not outage.filter(_record("Failed fetch messages from 1: NodeNotReadyError: ...", "aiokafka.consumer.fetcher"))
    clock.now += 10
    outage.tick()
    assert outage.unreachable  # errors may still come: not quiet long enough
    outage.reachable()
    assert not outage.unreachable
    # a new outage is a new state change
    assert outage.filter(_record("Unable connect to node with id 1: refused"))


def test_an_outage_without_error_lines_for_a_while_is_over(clock: Clock) -> None:
    outage = KafkaOutageLog(quiet_seconds=15, clock=clock)
    outage.filter(_record("Unable connect to node with id 1: refused"))
    clock.now += 16
    outage.tick()
    assert not outage.unreachable


def test_other_aiokafka_warnings_are_logged_once_a_minute_with_the_repeats_counted(clock: Clock) -> None:
    outage = KafkaOutageLog(summary_seconds=60, clock=clock)
    template = "Heartbeat failed for group %s because it is rebalancing"
    results = []
    for _ in range(30):
        clock.now += 3
        results.append(outage.filter(_record(template, "aiokafka.consumer.group_coordinator", logging.WARNING, "g")))
    assert results.count(True) == 2
    last = _record(template, "aiokafka.consumer.group_coordinator", logging.WARNING, "g")
    clock.now += 60
    assert outage.filter(last) and last.repeats == 9  # type: ignore[attr-defined]
    assert not outage.unreachable  # not an outage


def test_other_loggers_and_info_lines_pass_untouched(clock: Clock) -> None:
    outage = KafkaOutageLog(clock=clock)
    for _ in range(100):
        assert outage.filter(_record("Unable connect to the database", "services.registration", logging.ERROR))
        assert outage.filter(_record("Joined group", "aiokafka.consumer.group_coordinator", logging.INFO))
    assert not outage.unreachable
