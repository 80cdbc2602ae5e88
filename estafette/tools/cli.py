"""The `estafette` operator command (typer).

Sub-commands import their (possibly heavy) modules lazily, so that a quick command does not pay
for FastStream, FastAPI or database drivers at start-up. The console script enters through
`estafette/entry.py`, which sends `estafette match solve` past typer (see there).
"""

from __future__ import annotations

from pathlib import Path

import typer

from estafette.tools.chart import chart_app
from estafette.tools.kafka_cli import kafka_app
from estafette.tools.keys_cli import keys_app
from estafette.tools.mail_cli import mail_app
from estafette.tools.regions_cli import regions_app
from services.registry import NAMES

app = typer.Typer(no_args_is_help=True, help="Estafette operator commands.")
match_app = typer.Typer(no_args_is_help=True, help="Matching: solve instance files, run an edition's match.")
schemas_app = typer.Typer(no_args_is_help=True, help="Event contracts: JSON Schema and AsyncAPI documents.")
app.add_typer(match_app, name="match")
app.add_typer(schemas_app, name="schemas")
app.add_typer(mail_app, name="mail")
app.add_typer(keys_app, name="keys")
app.add_typer(regions_app, name="regions")
app.add_typer(kafka_app, name="kafka")
app.add_typer(chart_app, name="chart")


@app.command()
def serve(
    service: str = typer.Argument(..., help=" | ".join(NAMES)),
    regions: str = typer.Option(
        "", "--regions", help="Serve only these regions (comma-separated ids; matching and notifications). "
        "Default: every region, also ones added later.",
    ),
    part: str = typer.Option(
        "", "--part", help="all (default) | main (without the service's workers) | a worker alone, at a lower "
        "CPU priority (notifications: sender). Give a second instance its own port (e.g. NOTIFICATIONS_HTTP_PORT).",
    ),
) -> None:
    """Run one service in the foreground (port from its settings, e.g. REGISTRATION_HTTP_PORT)."""
    from estafette.tools.serve import serve as run

    run(service, regions, part)


@app.command()
def up(keep_infra: bool = typer.Option(False, help="Leave Kafka, Postgres and the mail sink running on exit.")) -> None:
    """Start the whole platform locally (what `make run` does); Ctrl-C stops it."""
    from estafette.tools.devserver import up as start

    start(keep_infra)


@schemas_app.command("generate")
def schemas_generate() -> None:
    """Write schemas/jsonschema/v1/*.json from the event models (refuses non-additive changes)."""
    from schemas.generate import generate

    try:
        written = generate()
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{len(written)} file(s) written" + (f": {', '.join(written)}" if written else ""))


@match_app.command("run")
def match_run(
    edition: str = typer.Option(..., "--edition", "-e", help="Edition id, e.g. tw-2027."),
    url: str = typer.Option("http://127.0.0.1:8002", envvar="ESTAFETTE_MATCHING_URL", help="Matching service."),
    wait: bool = typer.Option(True, help="Follow the run's progress until it is done."),
    key: str = typer.Option(..., envvar="ESTAFETTE_API_KEY", help="An organiser's (or admin's) API key."),
) -> None:
    """Run the match of an edition on the matching service and show its progress and figures."""
    from estafette.tools.match_run import run

    raise typer.Exit(run(edition, url, wait, key))


@app.command("import")
def import_file(
    kind: str = typer.Argument(..., metavar="offers|signups", help="What the file holds: offers or signups."),
    file: Path = typer.Argument(..., metavar="FILE", help="The spreadsheet: a .csv (UTF-8, , or ;) or .xlsx file, header in row 1."),
    edition: str = typer.Option(..., "--edition", "-e", help="Edition id, e.g. twente-2027."),
    key: str = typer.Option(..., envvar="ESTAFETTE_API_KEY", help="An organiser's (or admin's) API key."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check the file and show what would happen; store nothing."),
    url: str = typer.Option("http://127.0.0.1:8001", envvar="ESTAFETTE_REGISTRATION_URL", help="Registration service."),
    lang: str = typer.Option(None, "--lang", help="The language of the row errors: nl, de or en."),
) -> None:
    """Import offers or sign-ups from a CSV or XLSX file into an edition (progress, then the counts or every
    row error). Exit code 1: row errors, nothing stored; 2: not imported for another reason."""
    from estafette.tools.imports import run

    raise typer.Exit(run(kind, file, edition, key, url=url, dry_run=dry_run, lang=lang))


@schemas_app.command("asyncapi")
def schemas_asyncapi() -> None:
    """Write schemas/asyncapi/<service>.json from the services' FastStream apps."""
    from estafette.tools.asyncapi import write

    written = write()
    typer.echo(f"{len(written)} file(s) written" + (f": {', '.join(written)}" if written else ""))


@match_app.command("solve")
def match_solve(
    instance: Path = typer.Argument(..., help="INSTANCE json file (offers, participants, choices)."),
    out: Path = typer.Option(..., "--out", help="Where to write the RESULT json."),
) -> None:
    """Match participants to offers optimally and write the result (exit code 2 on bad input)."""
    from services.matching.solve_cli import solve_file

    raise typer.Exit(solve_file(instance, out))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
