"""Issue 11's figures on the real platform (registration as a process, PostgreSQL, Kafka): the time of
an import of 10,000 sign-up rows (one transaction; target < 10 s), and the time and the service's peak
memory growth (VmHWM after minus VmRSS before, /proc) of a 50,000-row sign-ups export (target < 100 MB).

    ESTAFETTE_TEST_SLOT=2 KEEP_INFRA=1 .venv/bin/python -m bench.import_bench
"""

from __future__ import annotations

import csv
import io
import time
import uuid
from pathlib import Path

import httpx

from services.registration.imports import compress
from tests.support import services, start_infra

REGION = "twente"
EDITION = {"region": REGION, "name": "Bench week", "signup_deadline": "2027-04-01T00:00:00+00:00",
           "starts_on": "2027-05-01", "ends_on": "2027-05-05", "languages": ["nl"], "themes": ["care"]}


def _csv(header: list[str], rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


def _memory(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in found.read_text().split()] if found.exists() else []


def main() -> None:
    infra = start_infra()
    key = infra.key("organiser", REGION)
    auth = {"Authorization": f"Bearer {key}"}
    with services(infra, "registration") as svc, httpx.Client(base_url=svc["registration"].url, timeout=300) as http:
        edition = f"bench-{uuid.uuid4().hex[:8]}"
        assert http.post("/editions", json={"id": edition, **EDITION}, headers=auth).status_code == 201
        offers = _csv(["host_org", "title", "date", "capacity"],
                      [[f"host-{i}", f"Offer {i}", "2027-05-02", "100"] for i in range(20)])
        r = http.post(f"/editions/{edition}/imports/offers", content=offers, headers={**auth, "Content-Type": "text/csv"})
        ids = [row["id"] for row in r.json()["rows"]]
        for batch in range(5):  # 5 files of 10,000 rows (each timed): 50,000 sign-ups for the export
            base, total = batch * 10_000, 10_000
            rows = [[f"org-{i % 55}", f"Person {i}", f"p{i}@example.org", "nl", f"{ids[i % 20]};{ids[(i + 1) % 20]}",
                     "Plannen met roosters", "true"] for i in range(base, base + total)]
            body = compress(_csv(["org", "name", "email", "language", "choices", "learning_goal", "consent"], rows))
            started = time.perf_counter()
            r = http.post(f"/editions/{edition}/imports/signups", content=body,
                          headers={**auth, "Content-Type": "text/csv", "Content-Encoding": "gzip"})
            elapsed = time.perf_counter() - started
            assert r.status_code == 200, r.text[:500]
            print(f"import of {total} sign-up rows: {elapsed:.2f} s (created {r.json()['created']})")
        proc = svc["registration"].proc
        pids = [proc.pid, *_children(proc.pid)]
        pid = max(pids, key=lambda p: _memory(p, "VmRSS"))
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        before = _memory(pid, "VmRSS")
        for fmt in ("csv", "json"):
            started, size = time.perf_counter(), 0
            with http.stream("GET", f"/editions/{edition}/exports/signups", params={"format": fmt}, headers=auth) as r:
                for chunk in r.iter_bytes():
                    size += len(chunk)
            elapsed = time.perf_counter() - started
            peak = _memory(pid, "VmHWM")
            print(f"export of 50,000 sign-ups as {fmt}: {elapsed:.2f} s, {size / 1e6:.1f} MB; "
                  f"service peak memory growth {(peak - before) / 1e6:.1f} MB (RSS before {before / 1e6:.0f} MB)")


if __name__ == "__main__":
    main()
