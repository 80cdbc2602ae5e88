"""Dispatch tables: one use case per event type; other event types of the topic are ignored; opt-in
bulk handling (`many`)."""

import uuid
from datetime import UTC, datetime

import structlog
from prometheus_client import CollectorRegistry

from estafette.runtime import consumer as consumer_module
from estafette.runtime.consumer import BatchConsumer, ConsumerMetrics, dispatch, many
from estafette.runtime.settings import ServiceSettings
from schemas import EditionClosed, EditionOpened, MatchAssigned, MatchWaitlisted, OfferSummary, SignupWithdrawn
from schemas.topics import MATCHES
from tests.unit.fakes import FakeRecord, FakeUnitOfWork

ENVELOPE = {"region": "twente", "edition": "tw-2027"}


async def test_each_event_type_reaches_its_use_case_and_others_are_ignored():
    calls: list[tuple[str, str]] = []

    async def opened(tx, event):
        calls.append(("opened", event.edition))

    async def closed(tx, event):
        calls.append(("closed", event.reason))

    handle = dispatch({EditionOpened: opened, EditionClosed: closed})
    await handle(None, EditionOpened(**ENVELOPE, name="Week", signup_deadline=datetime(2027, 5, 1, tzinfo=UTC),
                                     starts_on=datetime(2027, 5, 31).date(), ends_on=datetime(2027, 6, 4).date()))
    await handle(None, EditionClosed(**ENVELOPE, reason="corona"))
    await handle(None, SignupWithdrawn(**ENVELOPE, signup_id="s-1"))
    assert calls == [("opened", "tw-2027"), ("closed", "corona")]
    assert handle.__doc__ == "Handles: EditionClosed, EditionOpened"


# --- opt-in bulk handling: `many(use_case)` --------------------------------------------------------
TOPIC = MATCHES.name_in("twente")
RUN = uuid.UUID("00000000-0000-4000-8000-000000000001")


class ShopSettings(ServiceSettings):
    model_config = {"env_prefix": "SHOP_"}
    service_name: str = "shop"




class DeadLetters:
    """The `dead_letters` insert on a transaction's connection: the offsets dead-lettered."""

    def __init__(self) -> None:
        self.offsets: list[int] = []

    async def fetchval(self, sql: str, consumer: str, topic: str, partition: int, offset: int, *rest: object) -> int:
        self.offsets.append(offset)
        return 1


class NoRepository:
    """This consumer's use cases keep nothing."""


class Uow(FakeUnitOfWork[NoRepository]):
    """The fake unit of work, with a connection for the consumer's dead letters."""

    def __init__(self) -> None:
        super().__init__(NoRepository())
        self.dead = DeadLetters()

    def transaction(self):  # type: ignore[override]
        outer = super().transaction()
        dead = self.dead

        class WithConn:
            async def __aenter__(self):
                tx = await outer.__aenter__()
                tx.conn = dead
                return tx

            async def __aexit__(self, *exc):
                return await outer.__aexit__(*exc)

        return WithConn()


def assigned(signup_id: str) -> MatchAssigned:
    offer = OfferSummary(offer_id="o-1", host_org="acme", title="Visit", date=datetime(2026, 9, 15).date())
    return MatchAssigned(**ENVELOPE, signup_id=signup_id, run_id=RUN, rank=1, offer=offer)


def waitlisted(signup_id: str) -> MatchWaitlisted:
    return MatchWaitlisted(**ENVELOPE, signup_id=signup_id, run_id=RUN, position=1, reason_code="all_full")


def records(*items: object) -> list[FakeRecord]:
    """Events (as JSON), None (a tombstone) or bytes (a record that cannot be decoded), in offset order."""
    made = []
    for offset, item in enumerate(items):
        value = item if isinstance(item, bytes) or item is None else item.model_dump_json().encode()  # type: ignore[attr-defined]
        made.append(FakeRecord(TOPIC, value, b"k", offset=offset))
    return made


class LogRecorder:
    """The consumer module's logger in a test: each line with the context bound at the time."""

    def __init__(self) -> None:
        self.lines: list[dict[str, object]] = []

    def _line(self, event: str, **fields: object) -> None:
        self.lines.append({**structlog.contextvars.get_contextvars(), **fields, "event": event})

    info = warning = error = _line


def consumer(uow: Uow, calls: list[object], *, fail_on: str | None = None, attempts: int = 3) -> BatchConsumer:
    """MatchAssigned in bulk, MatchWaitlisted one at a time, each also "tapped" per event afterwards (as
    notifications' webhooks wrap every handler); tombstones recorded. A bulk call holding `fail_on`
    raises."""

    async def assigned_all(tx, events):
        if fail_on in [e.signup_id for e in events]:
            raise RuntimeError("bad data")
        calls.append(("many", [e.signup_id for e in events]))

    async def one(tx, event):
        calls.append(("one", event.signup_id))

    def tapped(own):
        async def handle(tx, event):
            await own(tx, event)
            calls.append(("tap", event.signup_id))
        return handle

    async def erase(tx, key):
        calls.append(("tombstone", key.decode() if isinstance(key, bytes) else key))

    handler = dispatch({MatchAssigned: tapped(many(assigned_all)), MatchWaitlisted: tapped(one)})
    return BatchConsumer("shop.matches", handler, uow, ShopSettings(handler_attempts=attempts),
                         ConsumerMetrics(CollectorRegistry()), erase)


async def test_consecutive_events_of_a_bulk_type_reach_it_in_one_call_and_every_other_record_ends_the_run(monkeypatch):
    uow, calls = Uow(), []
    a1, a2, a3, a4, a5, a6 = (assigned(f"a{i}") for i in range(1, 7))
    w1 = waitlisted("w1")
    batch = records(a1, a2, w1, a3, a1, a4, None, a5, b"{not json", a6)
    # A recorder, not structlog's capture_logs: a logger cached by an earlier test of the session
    # (cache_logger_on_first_use) would not be captured.
    logs = LogRecorder()
    monkeypatch.setattr(consumer_module, "log", logs)
    await consumer(uow, calls).handle(batch)

    assert calls == [
        ("tap", "a1"), ("tap", "a2"), ("many", ["a1", "a2"]),  # handed over before the next record
        ("one", "w1"), ("tap", "w1"),
        ("tap", "a3"), ("many", ["a3"]),  # a redelivered a1 follows: the run ends there
        ("tap", "a4"), ("many", ["a4"]),  # a tombstone follows
        ("tombstone", "k"),
        ("tap", "a5"), ("many", ["a5"]),  # an undecodable record follows (dead-lettered)
        ("tap", "a6"), ("many", ["a6"]),  # the end of the batch
    ]
    assert uow.dead.offsets == [8] and uow.commits == 1
    handled = [(e["event_type"], e["event_id"]) for e in logs.lines if e["event"] == "event handled"]
    assert handled == [("MatchAssigned", str(a1.event_id)), ("MatchAssigned", str(a2.event_id)),
                       ("MatchWaitlisted", str(w1.event_id))] + [("MatchAssigned", str(e.event_id)) for e in (a3, a4, a5, a6)]


async def test_the_handled_metric_counts_each_event_of_a_bulk_call():
    uow, calls = Uow(), []
    c = consumer(uow, calls)
    await c.handle(records(assigned("a1"), assigned("a2"), assigned("a3")))
    assert calls[-1] == ("many", ["a1", "a2", "a3"])
    assert c.metrics.handled.labels("shop.matches", "MatchAssigned")._value.get() == 3


async def test_a_failing_bulk_call_falls_back_one_by_one_each_event_a_list_of_one_in_order():
    uow, calls = Uow(), []
    a1, bad, a3 = assigned("a1"), assigned("bad"), assigned("a3")
    await consumer(uow, calls, fail_on="bad", attempts=1).handle(records(a1, bad, waitlisted("w1"), a3))

    assert calls == [
        ("tap", "a1"), ("tap", "bad"),  # the batch: its bulk call fails, its transaction is rolled back
        ("tap", "a1"), ("many", ["a1"]),  # then record by record, in order
        ("tap", "bad"),  # fails again: dead-lettered
        ("one", "w1"), ("tap", "w1"),
        ("tap", "a3"), ("many", ["a3"]),
    ]
    assert uow.rollbacks == 2 and uow.commits == 4  # 3 records + the dead letter
    assert uow.dead.offsets == [1]


async def test_outside_a_consumer_a_bulk_handler_gets_a_list_of_one():
    got = []

    async def assigned_all(tx, events):
        got.append([e.signup_id for e in events])

    handle = dispatch({MatchAssigned: many(assigned_all)})
    await handle(None, assigned("a1"))
    await handle(None, assigned("a2"))
    assert got == [["a1"], ["a2"]]
