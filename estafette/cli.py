"""The `estafette` operator command.

Sub-commands import their (possibly heavy) modules lazily, so that a quick command such as
`estafette match solve` does not pay for FastStream, FastAPI or database drivers at start-up.
"""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="Estafette operator commands.")
match_app = typer.Typer(no_args_is_help=True, help="Matching: solve instance files, run an edition's match.")
app.add_typer(match_app, name="match")


def _register() -> None:
    from services.matching.solve_cli import solve

    match_app.command("solve")(solve)


def main() -> None:
    _register()
    app()


if __name__ == "__main__":
    main()
