"""`estafette import offers|signups FILE --edition E`: upload an organiser's spreadsheet (CSV or XLSX) to
registration's import route (`POST /editions/{id}/imports/{kind}`, services/registration/README.md).

The file is gzip-compressed (`Content-Encoding: gzip`: registration takes bodies up to 1 MiB as sent and
up to 50 MB decompressed) and uploaded with a progress bar in bytes; a spinner runs while registration
checks the whole file and stores it. Then the result: the created and unchanged counts (a dry run says
that nothing was stored), or a table of every row error (row, column, message in the organiser's
language) and exit code 1: nothing was stored. Anything else that stops the import (no key, a file
that is not .csv/.xlsx, registration unreachable, 401/403/404/409/413) is one red line and exit code 2.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.table import Table

KINDS = ("offers", "signups")
LANGUAGES = ("nl", "de", "en")
#: The content type of each file type, chosen by the file's extension.
CONTENT_TYPES = {
    ".csv": "text/csv",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
#: The upload is sent in chunks of this size (the progress bar moves per chunk).
CHUNK_BYTES = 64 * 1024
#: How long registration may take to check and store a file (10,000 rows take seconds).
TIMEOUT = httpx.Timeout(connect=10.0, read=600.0, write=60.0, pool=10.0)

#: What a refusal of the whole request means for the organiser, by status (the service's message follows).
_HINTS = {
    401: "the API key was refused",
    403: "this key may not import: it needs an organiser's key of the edition's region (or an admin's)",
    404: "not found",
    409: "the edition does not take this import now",
    413: "the file is too large, even compressed: split it into smaller files",
}

ClientFactory = Callable[[str], httpx.Client]


def make_client(url: str) -> httpx.Client:
    """The HTTP client of the upload (tests replace it with one on an `httpx.MockTransport`)."""
    return httpx.Client(base_url=url, timeout=TIMEOUT)


def run(
    kind: str, path: Path, edition: str, key: str, *, url: str = "http://127.0.0.1:8001", dry_run: bool = False,
    lang: str | None = None, client: ClientFactory | None = None, out: Console | None = None,
    err: Console | None = None,
) -> int:
    """Import `path` into the edition; the exit code: 0 imported (or a clean dry run), 1 row errors (nothing
    stored), 2 not imported for another reason (one red line)."""
    out = out or Console()
    err = err or Console(stderr=True)

    def fail(message: str) -> int:
        err.print(message, style="red", markup=False, highlight=False, soft_wrap=True)
        return 2

    if kind not in KINDS:
        return fail(f"unknown import {kind!r}: offers or signups")
    if lang is not None and lang not in LANGUAGES:
        return fail(f"unknown language {lang!r}: nl, de or en")
    if not key.strip():
        return fail("an API key is needed: --key KEY or ESTAFETTE_API_KEY (estafette keys create --role organiser)")
    content_type = CONTENT_TYPES.get(path.suffix.lower())
    if content_type is None:
        return fail(f"{path}: only .csv and .xlsx files can be imported")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return fail(f"{path}: cannot be read ({exc.strerror or exc})")
    body = gzip.compress(raw, compresslevel=6)
    headers = {
        "Authorization": f"Bearer {key.strip()}", "Content-Type": content_type, "Content-Encoding": "gzip",
        "Content-Length": str(len(body)), "Accept": "application/json",
    }
    params: dict[str, str] = {"dry_run": "true" if dry_run else "false"}
    if lang:
        params["lang"] = lang
        headers["Accept-Language"] = lang

    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeElapsedColumn(),
        console=err, transient=True,
    )
    upload = progress.add_task(f"uploading {path.name}", total=len(body))
    waiting = err.status("registration checks the file" + ("" if dry_run else " and stores it"))

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), CHUNK_BYTES):
            yield body[start:start + CHUNK_BYTES]
            progress.advance(upload, min(CHUNK_BYTES, len(body) - start))
        # every byte is sent: the bar gives way to a spinner while registration checks (and stores) the file
        progress.stop()
        waiting.start()

    base = url.rstrip("/")
    try:
        with progress, (client or make_client)(base) as http:
            response = http.post(f"/editions/{edition}/imports/{kind}", content=chunks(), headers=headers, params=params)
    except httpx.TimeoutException:
        return fail(f"registration at {base} did not answer in time; the import may still complete: "
                    "run it again with --dry-run to see (rows stored already count as unchanged)")
    except httpx.HTTPError as exc:
        return fail(f"registration not reachable at {base}: {exc}")
    finally:
        waiting.stop()
    return _report(response, kind, edition, path, dry_run, out, fail)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _report(
    response: httpx.Response, kind: str, edition: str, path: Path, dry_run: bool, out: Console,
    fail: Callable[[str], int],
) -> int:
    data = _json(response)
    if response.status_code == 200 and "created" in data:
        created, unchanged = data["created"], data.get("unchanged", 0)
        noun = "offer" if kind == "offers" else "sign-up"
        if dry_run:
            out.print(f"dry run of {path.name} for edition {edition}: {created} {noun}(s) would be created, "
                      f"{unchanged} unchanged. Nothing was stored.", highlight=False, soft_wrap=True)
        else:
            out.print(f"imported {path.name} into edition {edition}: {created} {noun}(s) created, "
                      f"{unchanged} unchanged.", highlight=False, soft_wrap=True)
        return 0
    if response.status_code == 422 and isinstance(data.get("errors"), list) and data["errors"]:
        errors = data["errors"]
        table = Table(title=f"{path.name}: {len(errors)} row error(s)", title_justify="left")
        table.add_column("row", justify="right")
        table.add_column("column")
        table.add_column("message")
        for e in errors:
            table.add_row(str(e.get("row", "")), e.get("column") or "", str(e.get("message", "")))
        out.print(table)
        out.print(f"[red]the file was refused as a whole: nothing was stored[/red]"
                  f"{' (dry run)' if dry_run else ''}. Correct the rows and upload it again.", highlight=False, soft_wrap=True)
        return 1
    code = data.get("error")
    message = data.get("message") or response.text.strip() or response.reason_phrase
    hint = _HINTS.get(response.status_code, "the import failed")
    return fail(f"{hint} (HTTP {response.status_code}{f' {code}' if code else ''}): {message}")


__all__ = ["CONTENT_TYPES", "KINDS", "make_client", "run"]
