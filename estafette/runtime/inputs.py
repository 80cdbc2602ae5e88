"""Input types every API uses, so that no input can reach the database in a shape it cannot hold.

- Text never carries NUL or other control characters (Postgres text cannot hold NUL; CR/LF in a name
  or a title would break e-mail headers): `Line` (one line) and `Paragraphs` (newlines and tabs allowed).
- Ids follow the contracts' `Id` pattern, path segments too (`PathId`); every integer and every list is
  bounded by its model (at most what its column holds).
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Path, Query
from pydantic import AfterValidator, Field

from schemas.events import Id

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_EXCEPT_NEWLINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"


def _one_line(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters (line breaks, tabs, NUL)")
    return value


def _paragraphs(value: str) -> str:
    if _CONTROL_EXCEPT_NEWLINES.search(value):
        raise ValueError("must not contain control characters other than line breaks and tabs")
    return value


def Line(max_length: int, min_length: int = 1) -> type[str]:  # noqa: N802 - a type factory
    """One line of text: no control characters at all; when required (min_length ≥ 1), not only spaces
    (the schema says so too: `pattern` `\\S`, so clients can check it before sending)."""
    required = {"pattern": r"\S"} if min_length >= 1 else {}
    return Annotated[str, Field(min_length=min_length, max_length=max_length, **required), AfterValidator(_one_line)]  # type: ignore[return-value]


def Paragraphs(max_length: int, min_length: int = 0) -> type[str]:  # noqa: N802 - a type factory
    """Free text: line breaks and tabs allowed, no other control characters."""
    return Annotated[str, Field(min_length=min_length, max_length=max_length), AfterValidator(_paragraphs)]  # type: ignore[return-value]


#: An id in a path segment: the contracts' id pattern (so NUL, slashes and the like are a 422).
PathId = Annotated[str, Path(min_length=1, max_length=64, pattern=ID_PATTERN)]
#: An id as a query parameter.
QueryId = Annotated[str | None, Query(min_length=1, max_length=64, pattern=ID_PATTERN)]

__all__ = ["ID_PATTERN", "Id", "Line", "Paragraphs", "PathId", "QueryId"]
