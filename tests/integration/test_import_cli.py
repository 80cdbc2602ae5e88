"""`estafette import` (the real command, as a process) against a running registration: a CSV of offers
with one bad row is refused as a whole (exit code 1, the row and its column named, in Dutch; nothing
stored), a dry run of the corrected file stores nothing, the corrected file is imported (exit code 0,
created), the same file again changes nothing (unchanged); a key of another region gets one red line."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import ROOT, Infra, services

pytestmark = pytest.mark.integration

REGION = "twente"
EDITION = {"region": REGION, "name": "Import week (CLI)", "signup_deadline": "2099-04-01T00:00:00+00:00",
           "starts_on": "2099-05-01", "ends_on": "2099-05-05", "languages": ["nl", "de", "en"]}
HEADER = "host_org,title,date,capacity,location\n"
GOOD = ("org-h1,Roosters plannen in de zorg,2099-05-02,10,Markt 1\n"
        "org-h2,Een dag bij de ICT-afdeling,2099-05-03,8,Stationsplein 2\n"
        "org-h3,Lassen voor beginners,2099-05-04,6,Haven 3\n")


@pytest.fixture(scope="module")
def keys(infra: Infra) -> dict[str, str]:
    return {"twente": infra.key("organiser", REGION), "groningen": infra.key("organiser", "groningen")}


@pytest.fixture(scope="module")
def registration(infra: Infra, keys: dict[str, str]) -> Iterator[str]:
    """Registration's URL, started after the keys exist."""
    with services(infra, "registration") as svc:
        yield svc["registration"].url


def estafette_import(url: str, key: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ESTAFETTE_API_KEY": key, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "estafette.tools.cli", "import", *args, "--url", url],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )


def table_rows(text: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.strip("│ ").split("│")] for line in text.splitlines() if line.startswith("│")]


def test_a_bad_row_is_named_then_the_fixed_file_is_imported_once(registration, keys, tmp_path: Path):
    edition = f"cli-{uuid.uuid4().hex[:8]}"
    auth = {"Authorization": f"Bearer {keys['twente']}"}
    r = httpx.post(f"{registration}/editions", json={"id": edition, **EDITION}, headers=auth, timeout=30)
    assert r.status_code == 201, r.text

    def offers() -> list[dict[str, object]]:
        return httpx.get(f"{registration}/editions/{edition}/offers", timeout=30).json()

    bad = tmp_path / "aanbod.csv"
    bad.write_text(HEADER + GOOD.replace("2099-05-03", "2099-05-33"), encoding="utf-8")
    refused = estafette_import(registration, keys["twente"], "offers", str(bad), "--edition", edition, "--lang", "nl")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert table_rows(refused.stdout) == [["3", "date", "Dit is geen datum (gebruik JJJJ-MM-DD)."]]
    assert "nothing was stored" in refused.stdout
    assert offers() == []

    fixed = tmp_path / "aanbod-verbeterd.csv"
    fixed.write_text(HEADER + GOOD, encoding="utf-8")
    dry = estafette_import(registration, keys["twente"], "offers", str(fixed), "-e", edition, "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "3 offer(s) would be created, 0 unchanged. Nothing was stored." in dry.stdout
    assert offers() == []

    first = estafette_import(registration, keys["twente"], "offers", str(fixed), "-e", edition)
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"imported aanbod-verbeterd.csv into edition {edition}: 3 offer(s) created, 0 unchanged." in first.stdout
    assert sorted(o["title"] for o in offers()) == [
        "Een dag bij de ICT-afdeling", "Lassen voor beginners", "Roosters plannen in de zorg"]

    again = estafette_import(registration, keys["twente"], "offers", str(fixed), "-e", edition)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "0 offer(s) created, 3 unchanged." in again.stdout
    assert len(offers()) == 3

    other_region = estafette_import(registration, keys["groningen"], "offers", str(fixed), "-e", edition)
    assert other_region.returncode == 2
    assert other_region.stdout == ""
    (line,) = other_region.stderr.strip().splitlines()
    assert "HTTP 404 unknown_edition" in line and edition in line
