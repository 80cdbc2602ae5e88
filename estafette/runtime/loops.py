"""Helpers for background loops: pause until woken, stopped or timed out; wake on a Postgres NOTIFY."""

from __future__ import annotations

import asyncio

import asyncpg


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
    """Set `wake` on every NOTIFY on `channel`; release the returned connection to stop listening."""
    conn = await pool.acquire()
    await conn.add_listener(channel, lambda *_: wake.set())
    return conn
