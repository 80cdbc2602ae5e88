"""`estafette regions ...`: the region registry (deploy/regions.toml) applied to Kafka — apply, list, remove.

Kafka's address and principal as for `estafette keys` (``--kafka``/``ESTAFETTE_KAFKA_BOOTSTRAP``; the
operator principal from ``ESTAFETTE_KAFKA_USERNAME/PASSWORD`` or the local broker's admin).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from estafette.tools.cli_kafka import KAFKA, fail, run

regions_app = typer.Typer(no_args_is_help=True, help="Regions: apply the registry file, list, remove.")


@regions_app.command("apply")
def apply(
    file: Path = typer.Option(None, "--file", "-f", help="Registry file (default deploy/regions.toml)."),
    only: str = typer.Option("", "--only", help="Apply only these region ids (comma-separated)."),
    topics: bool = typer.Option(True, "--topics/--no-topics",
                                help="Create missing topics (--no-topics: an operator makes them, e.g. Strimzi)."),
    grants: bool = typer.Option(True, "--grants/--no-grants",
                                help="Grant the services' ACLs (--no-grants: an operator makes them, e.g. Strimzi)."),
    replication_factor: int = typer.Option(1, "--replication-factor", min=1, help="Copies of each topic created."),
    min_insync_replicas: int = typer.Option(0, "--min-insync-replicas", min=0,
                                            help="min.insync.replicas of each topic created (0: the broker's default)."),
    kafka: str = KAFKA,
) -> None:
    """Create each region's topics, grant the services access, publish the registry (idempotent)."""
    from estafette.tools import regions
    from estafette.tools.devserver import operator_kafka

    try:
        records = regions.load(file or regions.REGISTRY_FILE)
    except regions.RegistryError as exc:
        fail(str(exc))
    wanted = {r.strip() for r in only.split(",") if r.strip()}
    if unknown := wanted - {r.id for r in records}:
        fail(f"--only names region(s) not in the file: {', '.join(sorted(unknown))}")
    chosen = [r for r in records if not wanted or r.id in wanted]
    created: Any = run(kafka, regions.apply(
        operator_kafka(kafka), chosen, topics=topics, grants=grants,
        replication=replication_factor, min_insync_replicas=min_insync_replicas or None))
    for region in chosen:
        new = created[region.id]
        typer.echo(f"{region.id:<16} {region.partitions} partitions, {region.retention_days} days"
                   + (f", {len(new)} topic(s) created" if new else ", topics present" if topics else ""))
    typer.echo(f"{len(chosen)} region(s) published on the registry topic.")


@regions_app.command("list")
def list_(kafka: str = KAFKA) -> None:
    """The registry as the services see it."""
    from estafette.tools import regions
    from estafette.tools.devserver import operator_kafka

    found = run(kafka, regions.published(operator_kafka(kafka)))
    if not found:
        typer.echo("no regions published (run: estafette regions apply)")
    for record in sorted(found.values(), key=lambda r: r.id):
        typer.echo(f"{record.id:<16} {record.names.nl:<18} {record.timezone:<18} {','.join(record.languages):<9}"
                   f" {record.partitions} partitions, {record.retention_days} days")


@regions_app.command("remove")
def remove(
    region: str = typer.Argument(..., help="The region id."),
    delete_topics: bool = typer.Option(False, "--delete-topics", help="Also delete the region's topics (its data)."),
    kafka: str = KAFKA,
) -> None:
    """Remove a region from the registry (a tombstone) and its Kafka grants; its topics stay unless --delete-topics."""
    from estafette.tools import regions
    from estafette.tools.devserver import operator_kafka

    deleted = run(kafka, regions.remove(operator_kafka(kafka), region, delete_topics))
    typer.echo(f"{region} removed from the registry" + (f"; {len(deleted)} topic(s) deleted" if deleted else ""))
