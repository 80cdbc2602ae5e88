"""The instance file interface and `estafette match solve`: bad input gives one clear line
naming the record and exit code 2, never a traceback; good input writes the RESULT."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from services.matching.instance import InstanceError, parse_instance
from estafette.tools.cli import app as estafette_app

ROOT = Path(__file__).resolve().parents[3]


def valid() -> dict:
    return {
        "edition": "test-2027",
        "offers": [
            {"id": "o-1", "host": "org-1", "date": "2027-05-31", "capacity": 2, "max_per_org": 1},
            {"id": "o-2", "host": "org-2", "date": "2027-06-01", "capacity": 1},
        ],
        "participants": [
            {"id": "p-1", "org": "org-3", "signed_up_at": "2027-03-02T09:14:00Z", "choices": ["o-1", "o-2"]},
            {"id": "p-2", "org": "org-3", "signed_up_at": "2027-03-02T09:15:00+01:00", "choices": ["o-1"],
             "available": ["2027-05-31"], "max_visits": 1},
        ],
    }


def broken(path: str, value: object, delete: bool = False) -> dict:
    """valid() with the field at dotted `path` (list indexes as numbers) replaced or removed."""
    doc = valid()
    *parents, last = [int(k) if k.isdigit() else k for k in path.split(".")]
    target = doc
    for key in parents:
        target = target[key]
    if delete:
        del target[last]
    else:
        target[last] = value
    return doc


BAD = [
    (broken("participants.1.choices", ["o-999"]), 'participants[1] (id "p-2"): choice "o-999" is not an offer of this instance'),
    (broken("participants.1.id", "p-1"), 'participants[1] (id "p-1"): duplicate id (also participants[0])'),
    (broken("offers.1.id", "o-1"), 'offers[1] (id "o-1"): duplicate id (also offers[0])'),
    (broken("offers.0.capacity", -1), 'offers[0] (id "o-1"): "capacity" must be an integer >= 0, got -1'),
    (broken("offers.0.capacity", "12"), 'offers[0] (id "o-1"): "capacity" must be an integer >= 0, got "12"'),
    (broken("offers.0.date", "2027-02-30"), 'offers[0] (id "o-1"): "date" must be a date like "2027-05-31", got "2027-02-30"'),
    (broken("participants.0.available", ["31/05/2027"]), 'participants[0] (id "p-1"): "available" must be a date'),
    (broken("participants.0.signed_up_at", "2027-03-02T09:14:00"), 'participants[0] (id "p-1"): "signed_up_at" must be a timestamp with time zone'),
    (broken("participants.0.choices", ["o-1", "o-2", "o-1"]), 'participants[0] (id "p-1"): choice "o-1" is listed more than once'),
    (broken("participants.0.org", None, delete=True), 'participants[0] (id "p-1"): missing field "org"'),
    (broken("participants.0.max_visits", 0), 'participants[0] (id "p-1"): "max_visits" must be an integer >= 1, got 0'),
    (broken("participants.0.maxvisits", 2), 'participants[0] (id "p-1"): unknown field "maxvisits"'),
    (broken("offers.1", "o-2"), "offers[1]: must be an object"),
    (broken("offers.0.host_org", "org-1"), 'offers[0] (id "o-1"): give "host_org" or its older name "host", not both'),
    (broken("offers.0.host", None, delete=True), 'offers[0] (id "o-1"): missing field "host_org"'),
    (broken("participants", {}), '"participants" must be a list'),
    (broken("offers", None, delete=True), 'the instance has no "offers" list'),
    (broken("pinned", [{"participant": "p-7", "offer": "o-1"}]), 'pinned[0]: participant "p-7" is not a participant of this instance'),
    (broken("forbidden", [{"participant": "p-1", "offer": "o-9"}]), 'forbidden[0]: offer "o-9" is not an offer of this instance'),
]


@pytest.mark.parametrize("doc, message", BAD, ids=[m[:40] for _, m in BAD])
def test_parse_errors_name_the_record(doc: dict, message: str) -> None:
    with pytest.raises(InstanceError) as caught:
        parse_instance(orjson.dumps(doc))
    assert str(caught.value).startswith(message)


def test_valid_instance_parses() -> None:
    problem = parse_instance(orjson.dumps(valid()))
    assert [p.id for p in problem.participants] == ["p-1", "p-2"]
    assert problem.participants[1].available is not None and len(problem.participants[1].available) == 1
    assert problem.offers[0].max_per_org == 1 and problem.offers[1].max_per_org is None


def test_host_org_is_the_name_and_host_its_accepted_older_name() -> None:
    doc = valid()
    for o in doc["offers"]:
        o["host_org"] = o.pop("host")
    assert parse_instance(orjson.dumps(doc)) == parse_instance(orjson.dumps(valid()))
    assert parse_instance(orjson.dumps(doc)).offers[0].host_org == "org-1"


@pytest.fixture
def run(tmp_path: Path):
    """Invoke `estafette match solve` through typer (the --help path and in-process callers)."""

    def invoke(content: bytes | None, *extra: str):
        instance = tmp_path / "instance.json"
        if content is not None:
            instance.write_bytes(content)
        args = ["match", "solve", str(instance), "--out", str(tmp_path / "result.json"), *extra]
        return CliRunner().invoke(estafette_app, args)

    return invoke


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "instance.json: file not found"),
        (b'{"offers": [', "not valid JSON"),
        (b"[]", "the instance must be a JSON object"),
        (orjson.dumps(BAD[0][0]), BAD[0][1]),
        (orjson.dumps(broken("pinned", [{"participant": "p-2", "offer": "o-2"}])), 'pinned pair (participant "p-2", offer "o-2")'),
    ],
)
def test_cli_errors_exit_2_with_one_line(run, content: bytes | None, message: str) -> None:
    outcome = run(content)
    assert outcome.exit_code == 2
    assert message in outcome.output
    assert "Traceback" not in outcome.output
    assert outcome.output.count("\n") == 1


def test_cli_writes_result_and_summary(run, tmp_path: Path) -> None:
    outcome = run(orjson.dumps(valid()))
    assert outcome.exit_code == 0, outcome.output
    assert "assigned 2 · unmatched 0 · rank cost 5" in outcome.output  # o-1 takes one of org-3
    result = orjson.loads((tmp_path / "result.json").read_bytes())
    assert result["objective"] == {"assigned": 2, "rank_cost": 5}
    assert {(a["participant"], a["offer"], a["rank"]) for a in result["assignments"]} == {("p-1", "o-2", 2), ("p-2", "o-1", 1)}


def test_estafette_command_end_to_end(tmp_path: Path) -> None:
    """The real `estafette match solve` process (the console script's fast path, no typer):
    exit code 2 and a single line, then success."""
    estafette = [sys.executable, "-c", "from estafette.tools.entry import main; main()", "match", "solve"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    bad = tmp_path / "bad.json"
    bad.write_bytes(orjson.dumps(BAD[0][0]))
    done = subprocess.run([*estafette, str(bad), "--out", str(tmp_path / "r.json")], capture_output=True, text=True, env=env, cwd=ROOT)
    assert done.returncode == 2 and done.stderr == f"error: {BAD[0][1]}\n" and not done.stdout
    good = tmp_path / "good.json"
    good.write_bytes(orjson.dumps(valid()))
    done = subprocess.run([*estafette, str(good), "--out", str(tmp_path / "r.json")], capture_output=True, text=True, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert orjson.loads((tmp_path / "r.json").read_bytes())["objective"]["assigned"] == 2
