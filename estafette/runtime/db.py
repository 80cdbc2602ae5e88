"""Connection pool and migrations.

Each service owns one schema (named after the service) and one role that may touch only that schema;
the role's password comes from the service's settings (never a default).
Migrations: the runtime's own tables first (inbox, outbox, dead letters), then the service's
`migrations/NNN_name.sql` files, each applied once, in order, in its own transaction.
"""

from __future__ import annotations

from pathlib import Path

import asyncpg
import structlog

log = structlog.get_logger(__name__)
RUNTIME_MIGRATIONS = Path(__file__).parent / "migrations"


class NoDatabaseUrl(RuntimeError):
    """The service was given neither a database URL nor its role's password."""


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
        server_settings={"search_path": schema, "application_name": schema},
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
