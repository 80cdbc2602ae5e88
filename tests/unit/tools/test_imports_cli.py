"""`estafette import` (estafette/tools/imports.py) against a fake registration (httpx.MockTransport):
what it sends (gzip body, content type by extension, key, dry run, language) and what it shows and
returns for each answer (counts, a row-error table, one red line for refusals)."""

from __future__ import annotations

import gzip
import io
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console
from typer.testing import CliRunner

from estafette.tools import imports as cli_imports
from estafette.tools.cli import app

CSV = b"host_org,title,date,capacity\norg-h1,Bakkerij,2027-06-01,4\norg-h2,Garage,2027-06-02,3\n"


def ok(created: int = 2, unchanged: int = 0, *, dry_run: bool = False) -> dict[str, Any]:
    rows = [{"row": 2 + i, "id": f"o-{i}", "action": "created"} for i in range(created)]
    rows += [{"row": 2 + created + i, "id": f"o-u{i}", "action": "unchanged"} for i in range(unchanged)]
    return {"kind": "offers", "dry_run": dry_run, "committed": not dry_run, "created": created,
            "unchanged": unchanged, "rows": rows, "errors": []}


def refused(*errors: tuple[int, str | None, str]) -> dict[str, Any]:
    return {"kind": "offers", "dry_run": False, "committed": False, "created": 0, "unchanged": 0, "rows": [],
            "errors": [{"row": r, "column": c, "code": "invalid_date", "message": m} for r, c, m in errors]}


class FakeRegistration:
    """Answers every request with (status, JSON body) and keeps what it was sent."""

    def __init__(self, status: int = 200, body: Any = None) -> None:
        self.status = status
        self.body = ok() if body is None else body
        self.requests: list[httpx.Request] = []
        self.received: list[bytes] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.received.append(request.read())
        self.requests.append(request)
        return httpx.Response(self.status, json=self.body)

    def client(self, base_url: str) -> httpx.Client:
        return httpx.Client(base_url=base_url, transport=httpx.MockTransport(self))


def table_rows(text: str) -> list[list[str]]:
    """The body rows of a rich table as cells."""
    return [[cell.strip() for cell in line.strip("│ ").split("│")] for line in text.splitlines() if line.startswith("│")]


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    path = tmp_path / "offers.csv"
    path.write_bytes(CSV)
    return path


@pytest.fixture
def invoke(monkeypatch: pytest.MonkeyPatch) -> Callable[..., tuple[Any, FakeRegistration]]:
    """Run `estafette import ...` with the client on a fake registration."""

    def go(fake: FakeRegistration, *args: str, env: dict[str, str] | None = None) -> tuple[Any, FakeRegistration]:
        monkeypatch.setattr(cli_imports, "make_client", fake.client)
        result = CliRunner().invoke(app, ["import", *args], env={"ESTAFETTE_API_KEY": "", **(env or {})})
        return result, fake

    return go


def test_the_file_is_sent_gzip_compressed_with_its_type_the_key_and_the_edition(invoke, csv_file):
    result, fake = invoke(FakeRegistration(), "offers", str(csv_file), "--edition", "tw-2027", "--key", "est_k_s")
    assert result.exit_code == 0, result.output
    (request,) = fake.requests
    assert request.method == "POST"
    assert request.url.path == "/editions/tw-2027/imports/offers"
    assert request.url.params["dry_run"] == "false"
    assert "lang" not in request.url.params
    assert request.headers["authorization"] == "Bearer est_k_s"
    assert request.headers["content-type"] == "text/csv"
    assert request.headers["content-encoding"] == "gzip"
    assert int(request.headers["content-length"]) == len(fake.received[0])
    assert gzip.decompress(fake.received[0]) == CSV
    assert "2 offer(s) created, 0 unchanged" in result.stdout


def test_xlsx_by_extension_signups_dry_run_language_and_the_key_from_the_environment(invoke, tmp_path):
    path = tmp_path / "People.XLSX"
    path.write_bytes(b"PK\x03\x04 not really a workbook: the server reads it")
    fake = FakeRegistration(body={**ok(3, 1, dry_run=True), "kind": "signups"})
    result, _ = invoke(fake, "signups", str(path), "-e", "tw-2027", "--dry-run", "--lang", "de",
                       env={"ESTAFETTE_API_KEY": "est_env_key"})
    assert result.exit_code == 0, result.output
    (request,) = fake.requests
    assert request.url.path == "/editions/tw-2027/imports/signups"
    assert (request.url.params["dry_run"], request.url.params["lang"]) == ("true", "de")
    assert request.headers["authorization"] == "Bearer est_env_key"
    assert request.headers["content-type"] == cli_imports.CONTENT_TYPES[".xlsx"]
    assert gzip.decompress(fake.received[0]) == path.read_bytes()
    assert "3 sign-up(s) would be created, 1 unchanged. Nothing was stored." in result.stdout


def test_unchanged_rows_are_counted(invoke, csv_file):
    result, _ = invoke(FakeRegistration(body=ok(0, 2)), "offers", str(csv_file), "-e", "e", "--key", "k")
    assert result.exit_code == 0
    assert "0 offer(s) created, 2 unchanged." in result.stdout


def test_row_errors_are_a_table_and_exit_code_1(invoke, csv_file):
    fake = FakeRegistration(422, refused((3, "date", "Dit is geen datum (gebruik JJJJ-MM-DD)."),
                                         (7, None, "Het bestand heeft te veel rijen.")))
    result, _ = invoke(fake, "offers", str(csv_file), "-e", "e", "--key", "k", "--lang", "nl")
    assert result.exit_code == 1
    assert "offers.csv: 2 row error(s)" in result.stdout
    assert table_rows(result.stdout) == [
        ["3", "date", "Dit is geen datum (gebruik JJJJ-MM-DD)."], ["7", "", "Het bestand heeft te veel rijen."],
    ]
    assert "nothing was stored" in result.stdout


@pytest.mark.parametrize(("status", "code", "message", "hint"), [
    (401, "invalid_credentials", "this API key is not valid", "the API key was refused"),
    (403, "forbidden", "the national role may not do this", "it needs an organiser's key"),
    (404, "unknown_edition", "edition nope does not exist", "not found"),
    (409, "deadline_passed", "the sign-up deadline of edition e has passed", "does not take this import now"),
])
def test_a_refusal_is_one_red_line_and_exit_code_2(invoke, csv_file, status, code, message, hint):
    fake = FakeRegistration(status, {"error": code, "message": message, "field": None, "details": []})
    result, _ = invoke(fake, "offers", str(csv_file), "-e", "nope", "--key", "k")
    assert result.exit_code == 2
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert hint in line and f"HTTP {status} {code}" in line and message in line


def test_a_body_over_the_limit_says_so(invoke, csv_file):
    fake = FakeRegistration(413, {"error": "body_too_large", "message": "the request body is larger than 1048576 bytes"})
    result, _ = invoke(fake, "offers", str(csv_file), "-e", "e", "--key", "k")
    assert result.exit_code == 2
    assert "split it into smaller files" in result.stderr


def test_an_answer_that_is_not_json_is_still_one_line(invoke, csv_file):
    fake = FakeRegistration(502, "upstream gone")
    result, _ = invoke(fake, "offers", str(csv_file), "-e", "e", "--key", "k")
    assert result.exit_code == 2
    assert "HTTP 502" in result.stderr and "upstream gone" in result.stderr


def test_registration_unreachable_is_one_red_line(csv_file):
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    err = Console(file=io.StringIO(), width=200)
    code = cli_imports.run("offers", csv_file, "e", "k", url="http://127.0.0.1:1", err=err,
                           client=lambda base: httpx.Client(base_url=base, transport=httpx.MockTransport(down)))
    assert code == 2
    assert err.file.getvalue().strip() == "registration not reachable at http://127.0.0.1:1: connection refused"


def test_the_upload_moves_the_progress_bar_to_the_file_size(csv_file, monkeypatch):
    big = csv_file.with_name("big.csv")
    big.write_bytes(random.Random(6).randbytes(5 * cli_imports.CHUNK_BYTES))  # does not compress: 6 chunks
    advanced: list[float] = []
    real_advance = cli_imports.Progress.advance
    monkeypatch.setattr(cli_imports.Progress, "advance",
                        lambda self, task, amount=1: (advanced.append(amount), real_advance(self, task, amount))[1])
    fake = FakeRegistration()
    code = cli_imports.run("offers", big, "e", "k", client=fake.client)
    assert code == 0
    assert len(advanced) == 6
    assert sum(advanced) == len(fake.received[0])


@pytest.mark.parametrize(("args", "message"), [
    (["offers", "{csv}", "-e", "e", "--key", " "], "an API key is needed"),
    (["visits", "{csv}", "-e", "e", "--key", "k"], "unknown import 'visits'"),
    (["offers", "{csv}", "-e", "e", "--key", "k", "--lang", "fr"], "unknown language 'fr'"),
    (["offers", "{txt}", "-e", "e", "--key", "k"], "only .csv and .xlsx files"),
    (["offers", "{missing}", "-e", "e", "--key", "k"], "cannot be read"),
])
def test_what_is_refused_before_anything_is_sent(invoke, csv_file, args, message):
    txt = csv_file.with_suffix(".txt")
    txt.write_bytes(CSV)
    paths = {"{csv}": str(csv_file), "{txt}": str(txt), "{missing}": str(csv_file.with_name("gone.csv"))}
    result, fake = invoke(FakeRegistration(), *[paths.get(a, a) for a in args])
    assert result.exit_code == 2
    assert message in result.stderr
    assert fake.requests == []
