"""Streamed writers of the exports (issue 11): rows from a server-side cursor become CSV or JSON bytes
in chunks of `CHUNK_ROWS` rows, so an edition is never held in memory whole. CSV: UTF-8 with a BOM
(Excel reads it as UTF-8), a header row, lists joined by `;`. JSON: one array of objects, written as
it is read."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal

import orjson

ExportFormat = Literal["csv", "json"]
CHUNK_ROWS = 500
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    return value


def _csv_safe(value: Any) -> Any:
    """A text a spreadsheet would run as a formula (=, +, -, @ first) is prefixed with a quote."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


async def csv_chunks(columns: Sequence[str], rows: AsyncIterator[Sequence[Any]]) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    count = 0
    async for row in rows:
        writer.writerow([_csv_safe(_csv_value(v)) for v in row])
        count += 1
        if count % CHUNK_ROWS == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.time):
        return value.isoformat()
    raise TypeError


async def json_chunks(columns: Sequence[str], rows: AsyncIterator[Sequence[Any]]) -> AsyncIterator[bytes]:
    parts: list[bytes] = [b"["]
    first = True
    async for row in rows:
        item = orjson.dumps(dict(zip(columns, row, strict=True)), default=_json_default)
        parts.append(item if first else b"," + item)
        first = False
        if len(parts) >= CHUNK_ROWS:
            yield b"".join(parts)
            parts = []
    parts.append(b"]")
    yield b"".join(parts)


async def chunks(fmt: ExportFormat, columns: Sequence[str], rows: AsyncIterator[Sequence[Any]]) -> AsyncIterator[bytes]:
    """The export's bytes; the BOM first for CSV. `rows` is closed when the stream ends or is dropped (a
    client that goes away releases the cursor's transaction at once)."""
    try:
        if fmt == "csv":
            yield b"\xef\xbb\xbf"
            async for chunk in csv_chunks(columns, rows):
                yield chunk
        else:
            async for chunk in json_chunks(columns, rows):
                yield chunk
    finally:
        aclose = getattr(rows, "aclose", None)
        if aclose is not None:
            await aclose()
