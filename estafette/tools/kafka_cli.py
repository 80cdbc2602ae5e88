"""`estafette kafka ...`: Kafka security — setup, a regional pipeline's credentials, the ACLs.

Kafka's address as for `estafette keys` (``--kafka``/``ESTAFETTE_KAFKA_BOOTSTRAP``); the operator
principal from ``ESTAFETTE_KAFKA_USERNAME/PASSWORD`` or the local broker's admin (<state>/kafka/credentials.env).
What is granted to whom: estafette/tools/kafka_security.py.
"""

from __future__ import annotations

from pathlib import Path

import typer

from estafette.tools.cli_kafka import KAFKA, fail, run

kafka_app = typer.Typer(no_args_is_help=True, help="Kafka security: setup, a regional pipeline's credentials, ACLs.")


@kafka_app.command("setup")
def setup(
    credentials: Path = typer.Option(
        None, "--credentials", help="The principals' passwords (default <state>/kafka/credentials.env, from kafka.sh)."
    ),
    kafka: str = KAFKA,
) -> None:
    """The services' SCRAM users, the national topics and the services' ACLs on them (idempotent;
    `deploy/local/kafka.sh start` runs it). Each region's topics and ACLs: `estafette regions apply`."""
    from estafette.tools import kafka_security
    from estafette.tools.devserver import STATE, kafka_passwords, operator_kafka

    if credentials is not None and not credentials.is_file():
        fail(f"--credentials: no file {credentials}")
    passwords = _read(credentials) if credentials is not None else kafka_passwords(STATE)
    done = run(kafka, kafka_security.setup(operator_kafka(kafka), passwords))
    created = done["topics_created"]
    typer.echo(f"kafka: {len(done['users'])} service users ({', '.join(done['users'])}), "
               f"{len(created)} national topic(s) created, {done['acls']} national ACLs")


def _read(path: Path) -> dict[str, str]:
    lines = (line.partition("=") for line in path.read_text().splitlines() if not line.startswith("#"))
    return {key.removesuffix("_KAFKA_PASSWORD").lower(): value for key, sep, value in lines if sep}


@kafka_app.command("credentials")
def credentials(
    region: str = typer.Option(..., "--region", help="The region whose pipeline gets credentials, e.g. twente."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the password."),
    kafka: str = KAFKA,
) -> None:
    """Make (or rotate) a regional pipeline's principal `pipeline-<region>`: it may read that region's
    topics, in its own consumer groups, and nothing else. The password is shown once; running this
    again gives a new one and the old one stops working."""
    from estafette.tools import kafka_security, regions
    from estafette.tools.devserver import operator_kafka

    try:
        kafka_security.pipeline_user(region)
    except ValueError as exc:
        fail(f"--region: {exc}")
    access = operator_kafka(kafka)

    async def work() -> tuple[str, str]:
        known = await regions.published(access)
        if region not in known:
            listed = ", ".join(sorted(known)) or "none"
            raise kafka_security.KafkaSecurityError(
                f"region {region!r} is not in the registry (published: {listed}); see: estafette regions list"
            )
        return await kafka_security.pipeline_credentials(access, region)

    if not access.secured:
        fail("no admin password: set ESTAFETTE_KAFKA_PASSWORD (the local broker's is in <state>/kafka/credentials.env)", 1)
    username, password = run(kafka, work())
    if quiet:
        typer.echo(password)
        return
    config = kafka_security.client_properties(type(access)(access.bootstrap, username, password))
    prefix, group = kafka_security.topic_prefix(region), username
    typer.echo(f"principal: User:{username}")
    typer.echo(f"password:  {password}")
    typer.echo(f"\n# Kafka client configuration of {username}")
    for key, value in config.items():
        typer.echo(f"{key}={value}")
    typer.echo(f"# it may read the topics {prefix}* (e.g. {prefix}participants.v2) and nothing else;")
    typer.echo(f"# its consumer group must be {group} or start with {group}.")
    typer.secho(
        f"This password is shown once: store it now. `estafette kafka credentials --region {region}` again "
        "makes a new one (the old one stops working).", err=True, fg="yellow",
    )


@kafka_app.command("acls")
def acls(
    principal: str = typer.Option("", "--principal", "-p", help="Only this principal's (e.g. matching or User:pipeline-twente)."),
    kafka: str = KAFKA,
) -> None:
    """The ACLs on the broker (principal, operation, resource)."""
    from estafette.tools import kafka_security
    from estafette.tools.devserver import operator_kafka

    access = operator_kafka(kafka)
    if not access.secured:
        fail("no admin password: set ESTAFETTE_KAFKA_PASSWORD (the local broker's is in <state>/kafka/credentials.env)", 1)
    found = run(kafka, kafka_security.describe_acls(access, principal or None))
    if not found:
        typer.echo("no ACLs" + (f" for {principal}" if principal else ""))
    for acl in found:
        typer.echo(str(acl))
