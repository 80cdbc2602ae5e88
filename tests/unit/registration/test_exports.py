"""Streamed exports (issue 11): services/registration/exports.py writes rows as CSV (BOM, header, lists
joined by `;`, formula-like texts defused) or a JSON array, in chunks of CHUNK_ROWS rows, and closes the
row source when done or dropped; `service.export` checks access before the first row and yields the
columns first."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from estafette.runtime.errors import Forbidden, NotFound
from services.registration import exports, service
from services.registration.people_repository import EXPORTS
from tests.unit.registration.builders import EDITION_ID, NATIONAL, ORGANISER, OTHER_ORGANISER, edition
from tests.unit.registration.fakes import FakeRegistrationUow
from tests.unit.registration.people_fakes import PeopleFakeRepository

COLUMNS = ("id", "name", "choices", "when", "day", "at", "share", "rating", "note")
ROW = ("s1", "Anna", ["o1", "o2"], dt.datetime(2027, 6, 1, 9, 30, tzinfo=dt.UTC), dt.date(2027, 6, 1), dt.time(9, 0),
       True, 4, None)


class Rows:
    """An async row source that records whether it was closed (a server-side cursor's transaction)."""

    def __init__(self, rows: Sequence[Sequence[Any]]) -> None:
        self.rows = list(rows)
        self.closed = False
        self.read = 0

    def __aiter__(self) -> Rows:
        return self

    async def __anext__(self) -> Sequence[Any]:
        if self.read >= len(self.rows):
            raise StopAsyncIteration
        self.read += 1
        return self.rows[self.read - 1]

    async def aclose(self) -> None:
        self.closed = True


async def collect(chunks: AsyncIterator[bytes]) -> list[bytes]:
    return [chunk async for chunk in chunks]


async def test_csv_has_a_bom_a_header_and_spreadsheet_friendly_values():
    source = Rows([ROW])
    body = b"".join(await collect(exports.chunks("csv", COLUMNS, source)))
    assert body.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))
    assert lines == [list(COLUMNS),
                     ["s1", "Anna", "o1;o2", "2027-06-01T09:30:00+00:00", "2027-06-01", "09:00:00", "true", "4", ""]]
    assert body.endswith(b"\r\n")
    assert source.closed


@pytest.mark.parametrize("text", ["=HYPERLINK(\"http://x\")", "+31 6 1234", "-1+1", "@SUM(A1)", "\tx", "\rx"])
def test_texts_a_spreadsheet_would_run_as_formulas_are_prefixed_with_a_quote(text):
    assert exports._csv_safe(text) == "'" + text


def test_ordinary_texts_and_numbers_are_left_alone():
    assert [exports._csv_safe(v) for v in ("Anna", "o-1", -1, 3.5, "")] == ["Anna", "o-1", -1, 3.5, ""]


async def test_json_is_one_array_of_objects_by_column():
    body = b"".join(await collect(exports.chunks("json", COLUMNS, Rows([ROW, ROW]))))
    items = json.loads(body)
    assert len(items) == 2
    assert items[0] == {"id": "s1", "name": "Anna", "choices": ["o1", "o2"], "when": "2027-06-01T09:30:00+00:00",
                        "day": "2027-06-01", "at": "09:00:00", "share": True, "rating": 4, "note": None}


@pytest.mark.parametrize("fmt", ["csv", "json"])
async def test_no_rows_is_still_a_valid_document(fmt):
    body = b"".join(await collect(exports.chunks(fmt, ("a", "b"), Rows([]))))
    assert body == (b"\xef\xbb\xbfa,b\r\n" if fmt == "csv" else b"[]")


@pytest.mark.parametrize("fmt", ["csv", "json"])
async def test_rows_are_written_in_chunks_as_they_are_read(fmt, monkeypatch):
    monkeypatch.setattr(exports, "CHUNK_ROWS", 10)
    source = Rows([(i, f"name {i}") for i in range(25)])
    stream = exports.chunks(fmt, ("id", "name"), source)
    chunks = []
    async for chunk in stream:
        chunks.append(chunk)
        assert source.read <= len(chunks) * 10 + 10  # never the whole source ahead of what was written
    body = b"".join(chunks)
    if fmt == "csv":
        assert len(chunks) == 4  # BOM, 10, 10, 5 (+ the header in the first)
        assert len(body.decode("utf-8-sig").splitlines()) == 26
    else:
        assert len(chunks) >= 3
        assert [item["id"] for item in json.loads(body)] == list(range(25))


async def test_a_client_that_goes_away_closes_the_row_source():
    source = Rows([(i,) for i in range(5000)])
    stream = exports.chunks("csv", ("id",), source)
    await anext(stream)
    await anext(stream)
    await stream.aclose()
    assert source.closed
    assert source.read < 5000


# --- the use case ------------------------------------------------------------------------------------
def make_uow(**data: Sequence[tuple[Any, ...]]) -> FakeRegistrationUow:
    return FakeRegistrationUow(PeopleFakeRepository(editions=[edition()], export_data=data))


@pytest.mark.parametrize("kind", list(EXPORTS))
async def test_an_export_yields_its_columns_then_its_rows(kind):
    columns = EXPORTS[kind][0]
    rows = [tuple(f"{c}-{i}" for c in columns) for i in range(3)]
    uow = make_uow(**{kind: rows})
    got = [row async for row in service.export(uow, kind, EDITION_ID, principal=ORGANISER)]
    assert got == [columns, *rows]
    assert uow.repo.export_closed


async def test_the_streamed_export_of_the_use_case_reads_as_csv():
    uow = make_uow(signups=[("s1", "org-a", "Anna", "anna@example.org", "nl", "submitted", "not_required", "o1;o2",
                             None, 1, "=plannen", dt.datetime(2027, 4, 1, tzinfo=dt.UTC), "assigned", "o1")])
    rows = service.export(uow, "signups", EDITION_ID, principal=ORGANISER)
    columns = await anext(rows)
    body = b"".join(await collect(exports.chunks("csv", columns, rows)))
    header, line = list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))
    assert dict(zip(header, line, strict=True))["learning_goal"] == "'=plannen"
    assert uow.repo.export_closed


@pytest.mark.parametrize(("principal", "error"), [(OTHER_ORGANISER, NotFound), (NATIONAL, Forbidden)])
async def test_another_regions_export_is_refused_before_any_row(principal, error):
    uow = make_uow(signups=[("s1",)])
    rows = service.export(uow, "signups", EDITION_ID, principal=principal)
    with pytest.raises(error):
        await anext(rows)
    assert not uow.repo.export_closed  # the rows were never read


async def test_an_unknown_edition_is_not_found():
    with pytest.raises(NotFound):
        await anext(service.export(make_uow(), "feedback", "nope", principal=ORGANISER))
