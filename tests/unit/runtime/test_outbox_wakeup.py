"""After a commit that wrote outbox rows, the relay of the same process is woken in-process, and the
other instances' relays by a NOTIFY: at most one per interval, never none for a commit (the last
commits of an interval are covered by one NOTIFY at its end)."""

import asyncio
import time

from estafette.runtime.db import PooledConnection, _reset, transaction_only
from estafette.runtime.loops import listen, unlisten, wake_local
from estafette.runtime.uow import UnitOfWork


class FakeConnection:
    """Records the statements sent (the committing transaction's connection, or the pool)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, tuple[object, ...]]] = []
        self.listeners: list[str] = []

    async def execute(self, query: str, *args: object) -> str:
        self.sent.append((query, args))
        return "SELECT 1"

    async def add_listener(self, channel: str, callback: object) -> None:
        self.listeners.append(channel)


class FakePool(FakeConnection):
    async def acquire(self) -> FakeConnection:
        return FakeConnection()


async def _until(check, timeout: float = 5.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not within the timeout"
        await asyncio.sleep(0.01)


async def test_commits_within_an_interval_send_one_notify_at_once_and_one_at_its_end():
    uow = UnitOfWork("svc", notify_interval=0.2)
    uow.pool = pool = FakePool()  # type: ignore[assignment]
    conns = [FakeConnection() for _ in range(5)]
    for conn in conns:
        await uow._announce(conn)  # type: ignore[arg-type]
    assert [len(c.sent) for c in conns] == [1, 0, 0, 0, 0]  # the first at once, on its own connection
    assert conns[0].sent == [("SELECT pg_notify($1, '')", ("svc_outbox",))]
    await _until(lambda: pool.sent)
    assert pool.sent == [("SELECT pg_notify($1, '')", ("svc_outbox",))]  # one more, for the other four
    await asyncio.sleep(0)
    assert uow._trailing is not None and uow._trailing.done()


async def test_a_commit_after_a_quiet_interval_notifies_at_once():
    uow = UnitOfWork("svc", notify_interval=0.05)
    uow.pool = FakePool()  # type: ignore[assignment]
    first, later = FakeConnection(), FakeConnection()
    await uow._announce(first)  # type: ignore[arg-type]
    await asyncio.sleep(0.06)
    await uow._announce(later)  # type: ignore[arg-type]
    assert len(first.sent) == len(later.sent) == 1
    assert uow.pool.sent == []  # type: ignore[attr-defined]


async def test_a_commit_wakes_the_relay_of_its_own_process_without_a_round_trip():
    uow = UnitOfWork("svc", notify_interval=3600)
    uow.pool = FakePool()  # type: ignore[assignment]
    wake, other = asyncio.Event(), asyncio.Event()
    await listen(uow.pool, "svc_outbox", wake)  # type: ignore[arg-type]
    await listen(uow.pool, "another_outbox", other)  # type: ignore[arg-type]
    try:
        await uow._announce(FakeConnection())  # type: ignore[arg-type]
        assert wake.is_set() and not other.is_set()
        wake.clear()
        quiet = FakeConnection()
        await uow._announce(quiet)  # within the interval: no NOTIFY now, but the local relay wakes
        assert quiet.sent == [] and wake.is_set()
    finally:
        unlisten("svc_outbox", wake)
        unlisten("another_outbox", other)
        if uow._trailing is not None:
            uow._trailing.cancel()
    wake.clear()
    wake_local("svc_outbox")
    assert not wake.is_set()  # unlistened


class ResetRecorder(PooledConnection):
    """A PooledConnection without a server: records the reset statement it would send."""

    def __init__(self) -> None:  # no asyncpg connection set-up
        self.sent: list[str] = []
        self._aborted, self._protocol = True, None  # what asyncpg's __del__ looks at: closed

    def is_closed(self) -> bool:
        return True

    def get_reset_query(self) -> str:
        return "RESET ALL;"

    async def execute(self, query: str, *args: object) -> str:  # type: ignore[override]
        self.sent.append(query)
        return ""


async def test_a_connection_that_held_only_a_transaction_skips_the_reset_once():
    conn = ResetRecorder()
    transaction_only(conn)
    await _reset(conn)
    assert conn.sent == []
    await _reset(conn)  # the next user did not say so: reset as usual
    assert conn.sent == ["RESET ALL;"]


async def test_transaction_only_ignores_connections_of_other_pools():
    transaction_only(FakeConnection())  # no error, nothing to mark
