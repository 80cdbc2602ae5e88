"""Reading organisers' spreadsheets (issue 11's bulk import): CSV (the standard csv module; UTF-8, with
or without BOM; `,` or `;` as Excel writes it in Dutch and German) and XLSX (openpyxl, the first
sheet), header in row 1. Each row's shape is validated by a row model (the same input types as the
single routes) and every problem is a `RowError` (row, column, code); the texts of the codes are in the
gettext catalogs (nl, de, en), translated by `messages`.

Columns (any order; unknown columns are refused, blank cells take the default):
- offers: `id` (optional: without it the id derives from host_org + title + date), `host_org`, `title`,
  `date`, `capacity`, `max_per_org`, `format`, `location`, `themes` (separated by `;` or `,`),
  `attendance`, `part_of_day`, `starts_at`, `ends_at`, `join_url`, `what_to_bring`,
  `host_contact_name`, `host_contact_email`, `host_contact_language`;
- sign-ups: `org`, `name`, `email`, `language`, `choices` (offer ids in order, separated by `;`, `,` or
  spaces), `available` (dates), `max_visits`, `learning_goal`, `consent` (must be true: true, yes, ja,
  1 or x).
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationError, field_validator

from estafette.runtime.i18n import DEFAULT_LANGUAGE
from estafette.runtime.inputs import Line, Paragraphs
from schemas.events import Attendance, Id, Language, OfferFormat, PartOfDay
from services.registration import domain
from services.registration.people import ImportKind, RowError

#: At most this many data rows per file, and this many bytes once decompressed.
MAX_ROWS = 20_000
MAX_BYTES = 50 * 1024 * 1024
MAX_PLACES = 10_000
_XLSX_MAGIC = b"PK\x03\x04"
_SPLIT = re.compile(r"[;,]")
_SPLIT_IDS = re.compile(r"[;,\s]+")
_TRUE = {"true", "yes", "ja", "1", "x", "wahr"}
_FALSE = {"false", "no", "nee", "0", "nein", "falsch"}


def N_(message: str) -> str:  # noqa: N802 - the gettext convention: marks a text for extraction only
    return message


#: The organiser's text of each row error code (message ids in English; translated by the catalogs).
ROW_MESSAGES: dict[str, str] = {
    "required": N_("This column is required."),
    "invalid_value": N_("This value is not valid."),
    "too_long": N_("This value is too long."),
    "invalid_date": N_("This is not a date (use YYYY-MM-DD)."),
    "invalid_time": N_("This is not a time (use HH:MM)."),
    "invalid_number": N_("This is not a whole number."),
    "out_of_range": N_("This number is out of range."),
    "invalid_email": N_("This is not a valid e-mail address."),
    "invalid_choice": N_("This value is not one of the allowed values."),
    "invalid_id": N_("This is not a valid id (letters, digits, dots, dashes)."),
    "invalid_boolean": N_("Use true or false."),
    "unknown_column": N_("This column is unknown."),
    "missing_column": N_("This column is missing."),
    "empty_file": N_("The file has no rows."),
    "too_many_rows": N_("The file has too many rows."),
    "unreadable_file": N_("The file cannot be read (CSV in UTF-8, or XLSX)."),
    "date_outside_edition": N_("This date is not a day of the edition."),
    "unknown_theme": N_("This theme is not a theme of the edition."),
    "duplicate_theme": N_("A theme is listed twice."),
    "invalid_times": N_("The end time is not after the start time."),
    "consent_required": N_("The participant's consent is required (true)."),
    "language_not_offered": N_("The edition does not offer this language."),
    "unknown_offer": N_("This offer is not an offer of the edition."),
    "offer_cancelled": N_("This offer was cancelled."),
    "own_organisation": N_("This offer is hosted by the participant's own organisation."),
    "duplicate_choice": N_("An offer is chosen twice."),
    "unknown_organisation": N_("This organisation does not take part in the edition."),
    "offer_exists": N_("An offer with this id exists in another edition."),
    "offer_differs": N_("An offer with this key exists with other data."),
    "signup_differs": N_("This e-mail address has signed up with other data."),
    "signup_ended": N_("This e-mail address's imported sign-up has ended."),
    "duplicate_row": N_("Another row of the file has this key with other data."),
}

OFFER_COLUMNS = (
    "id", "host_org", "title", "date", "capacity", "max_per_org", "format", "location", "themes", "attendance",
    "part_of_day", "starts_at", "ends_at", "join_url", "what_to_bring", "host_contact_name", "host_contact_email",
    "host_contact_language",
)
SIGNUP_COLUMNS = ("org", "name", "email", "language", "choices", "available", "max_visits", "learning_goal", "consent")
COLUMNS: dict[str, tuple[str, ...]] = {"offers": OFFER_COLUMNS, "signups": SIGNUP_COLUMNS}
REQUIRED: dict[str, tuple[str, ...]] = {
    "offers": ("host_org", "title", "date", "capacity"), "signups": ("org", "name", "email", "choices", "consent"),
}


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _split(value: Any, pattern: re.Pattern[str] = _SPLIT) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in pattern.split(value) if part.strip()]
    return value


class OfferRow(_Row):
    id: Id | None = None
    host_org: Id
    title: Line(200)
    date: dt.date
    capacity: int = Field(ge=1, le=MAX_PLACES)
    max_per_org: int | None = Field(default=None, ge=1, le=MAX_PLACES)
    format: OfferFormat = "visit"
    location: Line(300, min_length=0) = ""
    themes: list[Id] = Field(default=[], max_length=domain.MAX_THEMES)
    attendance: Attendance = "on_site"
    part_of_day: PartOfDay = "whole_day"
    starts_at: dt.time | None = None
    ends_at: dt.time | None = None
    join_url: str | None = Field(default=None, max_length=500, pattern=r"^https?://[^\s/]+\S*$")
    what_to_bring: Paragraphs(1000) = ""
    host_contact_name: Line(200) | None = None
    host_contact_email: EmailStr | None = None
    host_contact_language: Language = "nl"

    _themes = field_validator("themes", mode="before")(classmethod(lambda cls, v: _split(v)))

    def offer(self, edition_id: str, offer_id: str) -> domain.Offer:
        contact = (
            domain.Contact(self.host_contact_name, self.host_contact_email, self.host_contact_language)
            if self.host_contact_name and self.host_contact_email else None
        )
        fields = self.model_dump(exclude={"id", "host_contact_name", "host_contact_email", "host_contact_language"})
        return domain.Offer(id=offer_id, edition_id=edition_id, host_contact=contact, **fields)


def _boolean(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE or text == "":
            return False
        raise ValueError("not a boolean")
    return value


class SignupRow(_Row):
    org: Id
    name: Line(200)
    email: EmailStr
    language: Language = "nl"
    choices: list[Id] = Field(min_length=1, max_length=10)
    available: list[dt.date] | None = Field(default=None, min_length=1, max_length=366)
    max_visits: int = Field(default=1, ge=1, le=5)
    learning_goal: Paragraphs(1000) = ""
    consent: bool

    _choices = field_validator("choices", mode="before")(classmethod(lambda cls, v: _split(v, _SPLIT_IDS)))
    _available = field_validator("available", mode="before")(classmethod(lambda cls, v: _split(v, _SPLIT_IDS)))
    _consent = field_validator("consent", mode="before")(classmethod(lambda cls, v: _boolean(v)))


ROW_MODELS: dict[str, type[_Row]] = {"offers": OfferRow, "signups": SignupRow}


@dataclass(frozen=True)
class Table:
    """A spreadsheet's rows: each data row's number (the header is row 1) and its non-blank cells."""

    header: list[str]
    rows: list[tuple[int, dict[str, str]]]


class UnreadableFile(Exception):
    def __init__(self, error: RowError) -> None:
        super().__init__(error.message)
        self.error = error


def _file_error(code: str, message: str, column: str | None = None, row: int = 1) -> UnreadableFile:
    return UnreadableFile(RowError(row, column, code, message))


def decompress(body: bytes, encoding: str | None) -> bytes:
    """A body sent with `Content-Encoding: gzip` (bodies over the platform's 1 MiB limit: the CLI sends
    gzip), decompressed up to MAX_BYTES."""
    if (encoding or "").strip().lower() != "gzip":
        return body
    try:
        out = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(body, MAX_BYTES + 1)
    except zlib.error:
        raise _file_error("unreadable_file", "the gzip body cannot be decompressed") from None
    if len(out) > MAX_BYTES:
        raise _file_error("too_many_rows", f"the file is larger than {MAX_BYTES} bytes")
    return out


def compress(body: bytes) -> bytes:
    return gzip.compress(body, compresslevel=6)


def _cell(value: Any) -> str:
    """A spreadsheet cell as text (XLSX cells may be dates, numbers, booleans)."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat(timespec="minutes") if isinstance(value, dt.time) else value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _table(rows: Iterable[Sequence[Any]]) -> Table:
    it = iter(rows)
    header_cells = next(it, None)
    if header_cells is None:
        raise _file_error("empty_file", "the file has no header row")
    header = [_cell(c).strip().lower().lstrip("\ufeff") for c in header_cells]
    out: list[tuple[int, dict[str, str]]] = []
    for number, cells in enumerate(it, start=2):
        values = {name: text for name, text in ((h, _cell(c)) for h, c in zip(header, cells, strict=False))
                  if name and text != ""}
        if not values:
            continue  # a blank line
        if len(out) >= MAX_ROWS:
            raise _file_error("too_many_rows", f"at most {MAX_ROWS} rows per file", row=number)
        out.append((number, values))
    while header and header[-1] == "":
        header.pop()
    return Table(header, out)


def read_table(content: bytes) -> Table:
    """The rows of a CSV or XLSX file (XLSX recognised by its zip signature)."""
    if content.startswith(_XLSX_MAGIC):
        return _xlsx(content)
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _file_error("unreadable_file", "the CSV file is not UTF-8") from None
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    return _table(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


def _xlsx(content: bytes) -> Table:
    from openpyxl import load_workbook  # only when an XLSX file comes

    try:
        book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception:  # noqa: BLE001 - any unreadable workbook is the sender's problem
        raise _file_error("unreadable_file", "the XLSX file cannot be read") from None
    try:
        sheet = book.worksheets[0]
        return _table(sheet.iter_rows(values_only=True))
    finally:
        book.close()


_PYDANTIC_CODES = {
    "missing": "required", "string_too_long": "too_long", "too_long": "too_long", "date_from_datetime_parsing": "invalid_date",
    "date_parsing": "invalid_date", "date_from_datetime_inexact": "invalid_date", "date_type": "invalid_date",
    "time_parsing": "invalid_time", "time_type": "invalid_time", "int_parsing": "invalid_number",
    "int_from_float": "invalid_number", "int_type": "invalid_number", "greater_than_equal": "out_of_range",
    "less_than_equal": "out_of_range", "literal_error": "invalid_choice", "bool_parsing": "invalid_boolean",
    "too_short": "required", "string_too_short": "required",
}


def _row_error(row: int, error: Any) -> RowError:
    loc = error.get("loc") or ()
    column = str(loc[0]) if loc else None
    kind = error.get("type", "")
    code = _PYDANTIC_CODES.get(kind)
    if code is None:
        if kind == "string_pattern_mismatch" and column in ("host_org", "org", "id", "themes", "choices"):
            code = "invalid_id"
        elif kind == "value_error" and column in ("email", "host_contact_email"):
            code = "invalid_email"
        elif kind == "value_error" and column == "consent":
            code = "invalid_boolean"
        else:
            code = "invalid_value"
    return RowError(row, column, code, str(error.get("msg", "")))


def validate(kind: ImportKind, table: Table) -> tuple[list[tuple[int, Any]], list[RowError]]:
    """Each row's shape: the typed rows (row number, OfferRow | SignupRow) and every row error."""
    errors: list[RowError] = []
    known = COLUMNS[kind]
    for name in table.header:
        if name and name not in known:
            errors.append(RowError(1, name, "unknown_column", f"unknown column {name}"))
    for name in REQUIRED[kind]:
        if name not in table.header:
            errors.append(RowError(1, name, "missing_column", f"column {name} is missing"))
    if errors:
        return [], errors
    if not table.rows:
        return [], [RowError(1, None, "empty_file", "the file has no rows")]
    model = ROW_MODELS[kind]
    rows: list[tuple[int, Any]] = []
    for number, values in table.rows:
        try:
            rows.append((number, model.model_validate(values)))
        except ValidationError as exc:
            errors.extend(_row_error(number, e) for e in exc.errors())
    return rows, errors


def message(translations: Any, code: str, fallback: str) -> str:
    """The text of a row error code in the organiser's language (`translations`: a gettext catalog)."""
    text = ROW_MESSAGES.get(code)
    if text is None:
        return fallback
    return translations.gettext(text) if translations is not None else text


Format = Literal["csv", "xlsx"]
__all__ = ["DEFAULT_LANGUAGE", "MAX_ROWS", "OfferRow", "SignupRow", "Table", "UnreadableFile", "read_table", "validate"]
