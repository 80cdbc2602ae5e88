"""Helpers for background loops: pause until woken, stopped or timed out; wake on a Postgres NOTIFY,
or in-process (`wake_local`: the unit of work wakes this process's outbox relay without a round trip)."""

from __future__ import annotations

import asyncio
import weakref

import asyncpg

#: The wake-up events of this process's listeners, by channel.
_LOCAL: dict[str, weakref.WeakSet[asyncio.Event]] = {}


async def pause(stopping: asyncio.Event, seconds: float, wake: asyncio.Event | None = None) -> None:
    """Wait up to `seconds`; return early when `stopping` or `wake` is set. Clears `wake`."""
    events = [stopping] if wake is None else [stopping, wake]
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        if wake is not None:
            wake.clear()


async def listen(pool: asyncpg.Pool, channel: str, wake: asyncio.Event) -> asyncpg.Connection:
    """Set `wake` on every NOTIFY on `channel`, and on every `wake_local(channel)` in this process;
    release the returned connection (and call `unlisten`) to stop listening."""
    conn = await pool.acquire()
    await conn.add_listener(channel, lambda *_: wake.set())
    _LOCAL.setdefault(channel, weakref.WeakSet()).add(wake)
    return conn


def unlisten(channel: str, wake: asyncio.Event) -> None:
    """Stop `wake_local(channel)` from setting `wake`."""
    if channel in _LOCAL:
        _LOCAL[channel].discard(wake)


def wake_local(channel: str) -> None:
    """Set the wake-up event of every listener on `channel` in this process (no NOTIFY needed for them)."""
    for wake in list(_LOCAL.get(channel, ())):
        wake.set()
