"""Connection pool and migrations.

Each service owns one schema (named after the service) and one role that may touch only that schema;
the role's password comes from the service's settings (never a default).
Migrations: the runtime's own tables first (inbox, outbox, dead letters), then the service's
`migrations/NNN_name.sql` files, each applied once, in order, in its own transaction.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg
import structlog

log = structlog.get_logger(__name__)
RUNTIME_MIGRATIONS = Path(__file__).parent / "migrations"


class NoDatabaseUrl(RuntimeError):
    """The service was given neither a database URL nor its role's password."""


class PooledConnection(asyncpg.Connection):  # type: ignore[misc]
    """A pool's connection that knows whether its last user held only a transaction."""

    #: Set by `transaction_only` (the unit of work, the outbox relay); cleared when it is released.
    held_only_a_transaction = False


def transaction_only(conn: Any) -> None:
    """Say that `conn` (acquired from a pool of `create_pool`) was used for nothing that outlives its
    transaction: no session settings, session advisory locks, LISTEN or open cursors. Its release then
    skips the reset statement (`RESET ALL; UNLISTEN *; ...`): one round trip less per transaction.
    Any other use of a pool connection (a listener, a migration, `pool.fetchval`) is reset as usual."""
    con = getattr(conn, "_con", conn)  # through the pool's proxy
    if isinstance(con, PooledConnection):
        con.held_only_a_transaction = True


async def _reset(conn: asyncpg.Connection) -> None:
    """The pool's reset on release (after asyncpg's own: a transaction left open is rolled back and the
    listeners are dropped client-side): the full reset unless the connection held only a transaction."""
    if getattr(conn, "held_only_a_transaction", False):
        conn.held_only_a_transaction = False
        return
    if query := conn.get_reset_query():
        await conn.execute(query)


async def create_pool(dsn: str, schema: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    if not dsn:
        prefix = schema.upper()
        raise NoDatabaseUrl(
            f"no database for {schema}: set {prefix}_DATABASE_URL, or {prefix}_DATABASE_PASSWORD for the local "
            f"cluster (`estafette up` reads the passwords `deploy/local/postgres.sh bootstrap` keeps in "
            f"<state>/pg/passwords.env)"
        )
    return await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        # jit off: the services' statements are short OLTP ones, and the few aggregates (reporting's
        # figures) cost the planner enough to be compiled, which took 0.32 s of a 0.35 s statement
        # (EXPLAIN ANALYZE, 40,000 sign-ups), on every dashboard refresh (issue 13).
        server_settings={"search_path": schema, "application_name": schema, "jit": "off"},
        connection_class=PooledConnection,
        reset=_reset,
    )


async def migrate(pool: asyncpg.Pool, schema: str, service_migrations: Path) -> list[str]:
    """Apply pending migrations; return the names applied. Safe to run from several processes."""
    files = [("runtime", p) for p in sorted(RUNTIME_MIGRATIONS.glob("*.sql"))]
    files += [("service", p) for p in sorted(service_migrations.glob("*.sql"))]
    applied: list[str] = []
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"{schema}.migrate")
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
        for origin, path in files:
            name = f"{origin}/{path.name}"
            if name in done:
                continue
            await conn.execute(path.read_text())
            await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
            applied.append(name)
    if applied:
        log.info("migrations applied", schema=schema, migrations=applied)
    return applied
