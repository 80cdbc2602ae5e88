"""No input gets a 500, and every answer is documented: schemathesis (PyPI) against every service's
OpenAPI, on the running services (real Kafka and Postgres), with an admin key.

Each service is fuzzed by its own `st run` process, all four at once: the coverage phase (boundary
and malformed values of every parameter and body: NUL bytes, control characters, huge integers,
wrong types, wrong content types, ...), the fuzzing phase and the stateful phase (sequences that
follow the links between operations, e.g. create an edition, then add offers to it). The run is
seeded, bounded by `--max-examples`, and checked from schemathesis' JSON report: at least
`MIN_CASES` generated cases in total, no server error, no undocumented status code, and no other
failure of the checks below (response bodies, content types and headers as documented).

A longer run: `ESTAFETTE_FUZZ_EXAMPLES=250 ESTAFETTE_TEST_SLOT=1 .venv/bin/pytest -q -s tests/e2e/test_fuzz.py`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import SERVICES, Infra, services

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

#: Cases per operation and phase; 50 gives about 3,000 cases over the four services in ~2 minutes.
MAX_EXAMPLES = int(os.environ.get("ESTAFETTE_FUZZ_EXAMPLES", "50"))
SEED = int(os.environ.get("ESTAFETTE_FUZZ_SEED", "20270501"))
MIN_CASES = 2000
#: Seconds one service's run may take before the test gives up on it.
RUN_TIMEOUT = float(os.environ.get("ESTAFETTE_FUZZ_TIMEOUT", "900"))
CHECKS = ",".join((
    "not_a_server_error",  # ST101/ST102: a 5xx
    "status_code_conformance",  # ST103: a status the operation does not document
    "response_schema_conformance",
    "content_type_conformance",
    "response_headers_conformance",
))
SERVER_ERRORS = {"ST101", "ST102"}
UNDOCUMENTED_STATUS = "ST103"
ST = Path(sys.executable).parent / "st"


@dataclass
class Run:
    service: str
    proc: subprocess.Popen[bytes]
    report: Path
    output: Path

    def result(self) -> dict:
        try:
            self.proc.wait(RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"schemathesis on {self.service} did not finish within {RUN_TIMEOUT:.0f} s; see {self.output}")
        assert self.report.is_file(), f"no report from schemathesis on {self.service}:\n{self.output.read_text()[-3000:]}"
        return json.loads(self.report.read_text())


def fuzz(service: str, url: str, key: str, out: Path) -> Run:
    out.mkdir(parents=True, exist_ok=True)
    report, output = out / "report.json", out / "output.txt"
    command = [
        str(ST), "run", f"{url}/openapi.json", "--header", f"Authorization: Bearer {key}",
        "--checks", CHECKS, "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED),
        "--workers", "1",  # more workers share hypothesis' caches between threads, which is not safe
        "--generation-database", "none",  # nothing remembered from earlier runs: the seed decides
        "--request-timeout", "20", "--no-color", "--output-truncate", "false",
        # A server-sent-events stream never ends: every case would wait for the request timeout. Its
        # behaviour is tested in a browser (tests/e2e/test_dashboard_browser.py).
        "--exclude-path", "/dashboard/events",
        "--report", "json", "--report-json-path", str(report),
    ]
    return Run(service, subprocess.Popen(command, stdout=output.open("wb"), stderr=subprocess.STDOUT, cwd=out),
               report, output)


def test_schemathesis_finds_no_server_error_and_no_undocumented_status(infra: Infra, tmp_path: Path) -> None:
    t0 = time.monotonic()
    with services(infra, *SERVICES) as procs:
        key = infra.key("admin")
        runs = [fuzz(name, proc.url, key, tmp_path / name) for name, proc in procs.items()]
        reports = {run.service: run.result() for run in runs}
    seconds = time.monotonic() - t0

    cases = {name: r["test_cases"]["generated"] for name, r in reports.items()}
    failures = {name: r["failures"] for name, r in reports.items() if r["failures"]}
    count = lambda codes: sum(f["count"] for fs in failures.values() for f in fs if f["code"] in codes)  # noqa: E731
    summary = (f"schemathesis: {sum(cases.values())} cases ({', '.join(f'{n} {c}' for n, c in cases.items())}), "
               f"{count(SERVER_ERRORS)} server errors, {count({UNDOCUMENTED_STATUS})} undocumented status codes, "
               f"seed {SEED}, max examples {MAX_EXAMPLES}, {seconds:.0f} s")
    print(summary)
    details = "\n".join(
        f"{name}: {f['code']} {f['title']} x{f['count']} in {', '.join(f['operations'])}; see {tmp_path / name / 'output.txt'}"
        for name, fs in failures.items() for f in fs
    )

    assert sum(cases.values()) >= MIN_CASES, summary
    assert count(SERVER_ERRORS) == 0, f"{summary}\n{details}"
    assert count({UNDOCUMENTED_STATUS}) == 0, f"{summary}\n{details}"
    assert not failures, f"{summary}\n{details}"
    errors = {name: r["errors"] for name, r in reports.items() if r["errors"]}
    assert not errors, f"schemathesis could not run everything: {errors}"
    assert all(r["operations"]["tested"] == r["operations"]["selected"] > 0 for r in reports.values()), reports
