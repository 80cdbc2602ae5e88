"""`estafette keys ...`: API keys for portals (estafette/tools/keys.py) — create, list, revoke.

Kafka's address: ``--kafka``, else ``ESTAFETTE_KAFKA_BOOTSTRAP`` (default 127.0.0.1:9092, the one
`make run` starts); the principal: ``ESTAFETTE_KAFKA_USERNAME``/``ESTAFETTE_KAFKA_PASSWORD``, else the
local broker's admin (<state>/kafka/credentials.env). A key is printed once; only its SHA-256 is kept,
on the compacted key topic that every service reads whole, so a revocation reaches every service
within seconds.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import typer

from estafette.tools.cli_kafka import KAFKA, fail, run

keys_app = typer.Typer(no_args_is_help=True, help="API keys for portals: create (shown once), list, revoke.")


class KeyRoleOption(str, Enum):
    organiser = "organiser"
    national = "national"
    admin = "admin"


def _time(at: datetime | None) -> str:
    return at.astimezone().strftime("%Y-%m-%d %H:%M:%S %z") if at else ""


@keys_app.command("create")
def create(
    role: KeyRoleOption = typer.Option(..., "--role", help="organiser (needs --region), national or admin."),
    region: str | None = typer.Option(None, "--region", help="The organiser's region, e.g. twente."),
    name: str = typer.Option("", "--name", help="Whose key this is, e.g. the portal's name (shown by `list`)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the key (for KEY=$(estafette keys create ...))."),
    kafka: str = KAFKA,
) -> None:
    """Make a key and print it ONCE: only its SHA-256 is stored. Send it as `Authorization: Bearer <key>`."""
    from pydantic import ValidationError

    from estafette.tools import keys
    from estafette.tools.devserver import operator_kafka

    try:
        record, key = run(kafka, keys.create(operator_kafka(kafka), role.value, region, name))
    except ValueError as exc:  # ValidationError is one too
        if isinstance(exc, ValidationError):
            first = exc.errors()[0]
            fail(f"--{first['loc'][0] if first['loc'] else 'input'}: {first['msg']}")
        fail(str(exc))
    if quiet:
        typer.echo(key)
        return
    scope = f" of {record.region}" if record.region else ""
    typer.echo(f"id:  {record.key_id}  ({record.role}{scope}{', ' + record.name if record.name else ''})")
    typer.echo(f"key: {key}")
    typer.secho(
        f"This key is shown once: store it now. Send it as 'Authorization: Bearer <key>'; "
        f"revoke it with: estafette keys revoke {record.key_id}", err=True, fg="yellow",
    )


@keys_app.command("list")
def list_keys(
    kafka: str = KAFKA,
    show_revoked: bool = typer.Option(True, "--revoked/--no-revoked", help="Include revoked keys."),
) -> None:
    """Every key: id, role, region, name, created, revoked (never the key or its hash)."""
    from rich.console import Console
    from rich.table import Table

    from estafette.tools import keys
    from estafette.tools.devserver import operator_kafka

    found = sorted(run(kafka, keys.records(operator_kafka(kafka))).values(), key=lambda r: r.created_at)
    shown = [r for r in found if show_revoked or not r.revoked]
    console = Console()
    if not shown:
        console.print("No keys.")
        return
    table = Table(show_edge=False, header_style="bold")
    for column in ("id", "role", "region", "name", "created", "revoked"):
        table.add_column(column, no_wrap=column in ("id", "created", "revoked"))
    for r in shown:
        table.add_row(r.key_id, r.role, r.region or "", r.name, _time(r.created_at), _time(r.revoked_at),
                      style="dim" if r.revoked else None)
    console.print(table)


@keys_app.command("revoke")
def revoke(key_id: str = typer.Argument(..., metavar="ID", help="The key's id (see `list`)."), kafka: str = KAFKA) -> None:
    """Revoke a key: every service refuses it (401) within seconds."""
    from estafette.tools import keys
    from estafette.tools.devserver import operator_kafka

    try:
        record = run(kafka, keys.revoke(operator_kafka(kafka), key_id))
    except KeyError:
        fail(f"no key with id {key_id!r} (see: estafette keys list)")
    typer.echo(f"key {record.key_id} revoked at {_time(record.revoked_at)}")
