"""Console-script entry of `estafette`.

`estafette match solve` goes straight to its argparse front end: importing typer alone costs
~0.2 s, a third of a region-sized solve. Everything else (and `--help`) goes through typer.
"""

from __future__ import annotations

import sys


def main() -> None:
    argv = sys.argv[1:]
    if argv[:2] == ["match", "solve"] and not {"-h", "--help"} & set(argv):
        from services.matching.solve_cli import main as solve

        raise SystemExit(solve(argv[2:]))
    from estafette.tools.cli import main as typer_main

    typer_main()


if __name__ == "__main__":
    main()
