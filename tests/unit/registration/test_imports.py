"""Bulk import (issue 11): reading spreadsheets (services/registration/imports.py: CSV with `,` or `;`,
with or without BOM, XLSX, gzip bodies), row shapes and their error codes, the organiser's language of
the messages; and the use case `service.import_rows` against the fake repository: the whole file checked
first, nothing stored on any error, a dry run stores nothing, committing announces every new row in one
transaction, the same rows again change nothing."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import uuid
from typing import Any

import pytest
from openpyxl import Workbook

from estafette.runtime.errors import Conflict, Forbidden, NotFound
from estafette.runtime.i18n import load_translations
from schemas import NotificationRequested, OfferPublished, ParticipantRegistered, SignupSubmitted
from services.registration import imports, people, service
from services.registration.pages import LOCALE
from tests.unit.registration.builders import (
    AFTER_DEADLINE,
    DAY_IN,
    EDITION_ID,
    NATIONAL,
    NOW,
    ORGANISER,
    OTHER_ORGANISER,
    edition,
    offer,
    organisation,
    signup,
)
from tests.unit.registration.fakes import FakeRegistrationUow
from tests.unit.registration.people_fakes import PeopleFakeRepository

CORRELATION = uuid.UUID(int=11)


def csv_bytes(*lines: str, bom: bool = False) -> bytes:
    return (("\ufeff" if bom else "") + "\r\n".join(lines) + "\r\n").encode()


def xlsx_bytes(*rows: list[Any]) -> bytes:
    book = Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def shaped(kind: people.ImportKind, content: bytes) -> tuple[list[tuple[int, Any]], list[people.RowError]]:
    return imports.validate(kind, imports.read_table(content))


def codes(errors: list[people.RowError]) -> list[tuple[int, str | None, str]]:
    return [(e.row, e.column, e.code) for e in errors]


# --- reading files -------------------------------------------------------------------------------------
def test_csv_with_commas_semicolons_or_a_bom_reads_the_same():
    lines = ["host_org,title,date,capacity", "org-h1,Bakkerij,2027-06-01,4"]
    expected = imports.Table(["host_org", "title", "date", "capacity"],
                             [(2, {"host_org": "org-h1", "title": "Bakkerij", "date": "2027-06-01", "capacity": "4"})])
    assert imports.read_table(csv_bytes(*lines)) == expected
    assert imports.read_table(csv_bytes(*(line.replace(",", ";") for line in lines))) == expected
    assert imports.read_table(csv_bytes(*lines, bom=True)) == expected


def test_blank_lines_and_cells_are_skipped_but_row_numbers_are_the_spreadsheets():
    table = imports.read_table(csv_bytes("Host_Org,Title,,", ",,,", "org-h1, Bakkerij ,,", "", "org-h2,,,"))
    assert table.header == ["host_org", "title"]
    assert table.rows == [(3, {"host_org": "org-h1", "title": "Bakkerij"}), (5, {"host_org": "org-h2"})]


def test_a_semicolon_inside_quotes_does_not_make_the_file_semicolon_separated():
    table = imports.read_table(csv_bytes("org,name,email,choices,consent", 'org-a,"A; B",a@example.org,"o1;o2",ja'))
    assert table.rows[0][1]["choices"] == "o1;o2"
    assert table.rows[0][1]["name"] == "A; B"


def test_xlsx_cells_become_text():
    content = xlsx_bytes(["host_org", "title", "date", "capacity", "starts_at", "max_per_org"],
                         ["org-h1", "Bakkerij", dt.datetime(2027, 6, 1), 4.0, dt.time(9, 30), None],
                         [None, None, None, None, None, None],
                         ["org-h2", "Garage", dt.date(2027, 6, 2), 3, "13:00", 2])
    table = imports.read_table(content)
    assert table.rows == [
        (2, {"host_org": "org-h1", "title": "Bakkerij", "date": "2027-06-01", "capacity": "4", "starts_at": "09:30"}),
        (4, {"host_org": "org-h2", "title": "Garage", "date": "2027-06-02", "capacity": "3", "starts_at": "13:00",
             "max_per_org": "2"}),
    ]


@pytest.mark.parametrize(("content", "code"), [
    (b"", "empty_file"),
    ("host_org\n\xe9t\xe9\n".encode("latin-1"), "unreadable_file"),
    (b"PK\x03\x04 a broken workbook", "unreadable_file"),
])
def test_an_unreadable_file_is_one_error_of_row_1(content, code):
    with pytest.raises(imports.UnreadableFile) as refused:
        imports.read_table(content)
    assert (refused.value.error.row, refused.value.error.code) == (1, code)


def test_more_rows_than_allowed_are_refused_at_the_first_row_too_many(monkeypatch):
    monkeypatch.setattr(imports, "MAX_ROWS", 2)
    with pytest.raises(imports.UnreadableFile) as refused:
        imports.read_table(csv_bytes("org", "a", "b", "", "c"))
    assert (refused.value.error.row, refused.value.error.code) == (5, "too_many_rows")


def test_gzip_bodies_are_decompressed_and_others_passed_on(monkeypatch):
    body = csv_bytes("org", "a")
    assert imports.decompress(imports.compress(body), "gzip") == body
    assert imports.decompress(gzip.compress(body), " GZIP ") == body
    assert imports.decompress(body, None) == body
    with pytest.raises(imports.UnreadableFile) as broken:
        imports.decompress(b"not gzip at all", "gzip")
    assert broken.value.error.code == "unreadable_file"
    monkeypatch.setattr(imports, "MAX_BYTES", 10)
    with pytest.raises(imports.UnreadableFile) as big:
        imports.decompress(gzip.compress(b"x" * 11), "gzip")
    assert big.value.error.code == "too_many_rows"
    assert imports.decompress(gzip.compress(b"x" * 10), "gzip") == b"x" * 10


# --- row shapes ----------------------------------------------------------------------------------------
def test_unknown_and_missing_columns_refuse_the_file_before_any_row():
    rows, errors = shaped("offers", csv_bytes("host_org,title,colour", "org-h1,Bakkerij,red"))
    assert rows == []
    assert codes(errors) == [(1, "colour", "unknown_column"), (1, "date", "missing_column"),
                             (1, "capacity", "missing_column")]


def test_a_header_without_rows_is_an_empty_file():
    assert codes(shaped("signups", csv_bytes("org,name,email,choices,consent"))[1]) == [(1, None, "empty_file")]


def test_offer_rows_become_typed_rows_with_their_numbers():
    rows, errors = shaped("offers", csv_bytes(
        "host_org,title,date,capacity,themes,starts_at,ends_at,host_contact_name,host_contact_email,host_contact_language",
        "org-h1,Bakkerij,2027-06-01,4,care; ict,09:00,12:00,Bart,bart@example.org,de",
    ))
    assert errors == []
    ((number, row),) = rows
    assert number == 2
    made = row.offer(EDITION_ID, "o-1")
    assert (made.id, made.themes, made.starts_at, made.format, made.attendance) == ("o-1", ["care", "ict"], dt.time(9), "visit", "on_site")
    assert made.host_contact == people.domain.Contact("Bart", "bart@example.org", "de")


def test_an_offer_without_both_contact_fields_has_no_host_contact():
    rows, _ = shaped("offers", csv_bytes("host_org,title,date,capacity,host_contact_name", "org-h1,B,2027-06-01,4,Bart"))
    assert rows[0][1].offer(EDITION_ID, "o").host_contact is None


@pytest.mark.parametrize(("cells", "column", "code"), [
    ("org-h1,Bakkerij,2027-13-01,4", "date", "invalid_date"),
    ("org-h1,Bakkerij,1-6-2027,4", "date", "invalid_date"),
    ("org-h1,Bakkerij,2027-06-01,four", "capacity", "invalid_number"),
    ("org-h1,Bakkerij,2027-06-01,0", "capacity", "out_of_range"),
    ("org-h1,Bakkerij,2027-06-01,4.5", "capacity", "invalid_number"),
    ("Org H1!,Bakkerij,2027-06-01,4", "host_org", "invalid_id"),
    ("org-h1,,2027-06-01,4", "title", "required"),
])
def test_each_bad_offer_cell_is_a_row_error_naming_row_and_column(cells, column, code):
    rows, errors = shaped("offers", csv_bytes("host_org,title,date,capacity", "org-h1,Good,2027-06-01,4", cells))
    assert [n for n, _ in rows] == [2]
    assert codes(errors) == [(3, column, code)]


def test_a_bad_choice_of_format_or_time_is_named():
    _, errors = shaped("offers", csv_bytes("host_org,title,date,capacity,format,starts_at",
                                           "org-h1,B,2027-06-01,4,party,9 uur"))
    assert codes(errors) == [(2, "format", "invalid_choice"), (2, "starts_at", "invalid_time")]


def test_signup_rows_split_choices_and_read_consent_in_several_languages():
    rows, errors = shaped("signups", csv_bytes(
        "org,name,email,choices,available,consent",
        "org-a,Anna,anna@example.org,o1;o2 o3,2027-06-01;2027-06-02,ja",
        "org-a,Bert,bert@example.org,o1,,WAHR",
        "org-a,Cor,cor@example.org,o1,,x",
    ))
    assert errors == []
    first = rows[0][1]
    assert (first.choices, first.available, first.consent, first.language, first.max_visits) == (
        ["o1", "o2", "o3"], [dt.date(2027, 6, 1), dt.date(2027, 6, 2)], True, "nl", 1)
    assert [r.consent for _, r in rows] == [True, True, True]


@pytest.mark.parametrize(("cells", "column", "code"), [
    ("org-a,Anna,not-an-address,o1,true", "email", "invalid_email"),
    ("org-a,Anna,anna@example.org,o1,misschien", "consent", "invalid_boolean"),
    ("org-a,Anna,anna@example.org,,true", "choices", "required"),
    ("org-a,,anna@example.org,o1,true", "name", "required"),
])
def test_each_bad_signup_cell_is_a_row_error(cells, column, code):
    _, errors = shaped("signups", csv_bytes("org,name,email,choices,consent", cells))
    assert codes(errors) == [(2, column, code)]


def test_consent_no_is_read_as_false_for_the_rule_to_refuse():
    rows, errors = shaped("signups", csv_bytes("org,name,email,choices,consent", "org-a,Anna,anna@example.org,o1,nee"))
    assert errors == [] and rows[0][1].consent is False


def test_every_row_error_code_has_a_text_in_every_language():
    translations = load_translations(LOCALE)
    for language in ("nl", "de", "en"):
        for code, text in imports.ROW_MESSAGES.items():
            translated = imports.message(translations.get(language), code, "fallback")
            assert translated.strip(), (language, code)
            if language != "en":
                assert translated != text, (language, code)
    assert imports.message(translations.get("nl"), "invalid_date", "x") == "Dit is geen datum (gebruik JJJJ-MM-DD)."
    assert imports.message(None, "invalid_date", "x") == "This is not a date (use YYYY-MM-DD)."
    assert imports.message(translations.get("nl"), "import_conflict", "the English text") == "the English text"


# --- the use case: import_rows -------------------------------------------------------------------------
def make_uow(*, offers=(), signups=(), organisations=(), **edition_fields: Any) -> FakeRegistrationUow:
    return FakeRegistrationUow(PeopleFakeRepository(
        editions=[edition(themes=["care", "ict"], **edition_fields)], offers=offers, signups=signups,
        organisations=organisations,
    ))


async def run_import(uow: FakeRegistrationUow, kind: people.ImportKind, content: bytes, *, dry_run: bool = False,
                     now: dt.datetime = NOW, principal=ORGANISER) -> people.ImportResult:
    rows, shape_errors = shaped(kind, content)
    return await service.import_rows(uow, kind, EDITION_ID, rows, principal=principal, dry_run=dry_run, now=now,
                                     correlation_id=CORRELATION, approval_url=lambda s, e, o: f"https://x/{s}/{o}",
                                     shape_errors=shape_errors)


OFFERS_CSV = csv_bytes(
    "id,host_org,title,date,capacity,themes",
    ",org-h1,Roosters plannen,2027-06-01,10,care",
    "o-garage,org-h2,Garage,2027-06-02,8,",
    ",org-h3,Lassen,2027-06-03,6,ict",
)


async def test_offers_are_created_and_announced_in_one_transaction_with_ids_from_their_keys():
    uow = make_uow()
    result = await run_import(uow, "offers", OFFERS_CSV)
    assert (result.committed, result.created, result.unchanged, result.errors) == (True, 3, 0, [])
    derived = people.derived_offer_id(EDITION_ID, "org-h1", "Roosters plannen", dt.date(2027, 6, 1))
    assert [(r.row, r.id, r.action) for r in result.rows] == [
        (2, derived, "created"), (3, "o-garage", "created"),
        (4, people.derived_offer_id(EDITION_ID, "org-h3", "Lassen", dt.date(2027, 6, 3)), "created")]
    assert uow.commits == 1 and uow.repo.copies == [("offers", 3)]
    published = uow.of_type(OfferPublished)
    assert [e.offer_id for e in published] == [r.id for r in result.rows]
    assert {e.correlation_id for e in published} == {CORRELATION}
    assert uow.repo.offer_rows[derived].themes == ["care"]


async def test_the_same_offers_again_in_another_order_change_nothing():
    uow = make_uow()
    await run_import(uow, "offers", OFFERS_CSV)
    lines = OFFERS_CSV.decode().strip().split("\r\n")
    again = await run_import(uow, "offers", csv_bytes(lines[0], *reversed(lines[1:])))
    assert (again.committed, again.created, again.unchanged) == (True, 0, 3)
    assert len(uow.of_type(OfferPublished)) == 3
    assert uow.repo.copies == [("offers", 3)]


async def test_a_dry_run_says_what_would_happen_and_stores_nothing():
    uow = make_uow()
    result = await run_import(uow, "offers", OFFERS_CSV, dry_run=True)
    assert (result.dry_run, result.committed, result.created) == (True, False, 3)
    assert uow.repo.offer_rows == {} and uow.published == []


async def test_any_row_error_refuses_the_whole_file_with_every_error_in_row_order():
    uow = make_uow()
    content = csv_bytes(
        "host_org,title,date,capacity,themes",
        "org-h1,Goed,2027-06-01,10,",
        "org-h2,Buiten de week,2027-07-01,8,",  # a date outside the edition: a rule, found by the service
        "org-h3,Kapot,2027-06-40,6,",  # a shape error, found by the reader
        "org-h4,Onbekend thema,2027-06-02,6,sport",
    )
    result = await run_import(uow, "offers", content)
    assert result.committed is False
    assert codes(result.errors) == [(3, "date", "date_outside_edition"), (4, "date", "invalid_date"),
                                    (5, "themes", "unknown_theme")]
    assert uow.repo.offer_rows == {} and uow.published == []


async def test_an_existing_key_with_other_data_is_a_row_error_and_repeated_rows_are_unchanged():
    existing = offer("o-garage", host_org="org-h2", title="Garage", date=DAY_IN, capacity=8)
    uow = make_uow(offers=[existing])
    result = await run_import(uow, "offers", csv_bytes(
        "id,host_org,title,date,capacity",
        "o-garage,org-h2,Garage,2027-06-01,9",
        ",org-h1,Twee keer,2027-06-02,5",
        ",org-h1,Twee keer,2027-06-02,5",
        ",org-h1, twee  KEER ,2027-06-02,6",
    ))
    assert codes(result.errors) == [(2, "capacity", "offer_differs"), (5, "id", "duplicate_row")]
    again = await run_import(uow, "offers", csv_bytes(
        "id,host_org,title,date,capacity", "o-garage,org-h2,Garage,2027-06-01,8", ",org-h1,X,2027-06-02,5",
        ",org-h1,X,2027-06-02,5"))
    assert [(r.row, r.action) for r in again.rows] == [(2, "unchanged"), (3, "created"), (4, "unchanged")]


async def test_an_offer_id_of_another_edition_or_a_cancelled_offer_is_refused():
    uow = make_uow(offers=[offer("o-else", edition_id="e2"), offer("o-gone", status="cancelled")])
    result = await run_import(uow, "offers", csv_bytes(
        "id,host_org,title,date,capacity", "o-else,host-a,A,2027-06-01,4", "o-gone,host-a,B,2027-06-01,4"))
    assert codes(result.errors) == [(2, "id", "offer_exists"), (3, "id", "offer_cancelled")]


@pytest.mark.parametrize(("fields", "code"), [({"status": "closed"}, "edition_closed"),
                                              ({"status": "cancelled"}, "edition_cancelled")])
async def test_a_closed_or_cancelled_edition_refuses_the_whole_import(fields, code):
    uow = make_uow(**fields)
    with pytest.raises(Conflict) as refused:
        await run_import(uow, "offers", OFFERS_CSV)
    assert refused.value.code == code


@pytest.mark.parametrize(("principal", "error"), [(OTHER_ORGANISER, NotFound), (NATIONAL, Forbidden)])
async def test_only_the_editions_region_may_import(principal, error):
    uow = make_uow()
    with pytest.raises(error):
        await run_import(uow, "offers", OFFERS_CSV, principal=principal)
    assert uow.repo.offer_rows == {}


SIGNUPS_HEADER = "org,name,email,language,choices,learning_goal,consent"


def signups_csv(*rows: str) -> bytes:
    return csv_bytes(SIGNUPS_HEADER, *rows)


async def test_signups_are_created_with_ids_from_their_addresses_and_announced():
    uow = make_uow(offers=[offer("o1"), offer("o2", host_org="host-b")])
    result = await run_import(uow, "signups", signups_csv(
        "org-z,Anna de Vries,Anna@Example.org,nl,o1;o2,plannen,true", "org-y,Bert,bert@example.org,de,o2,,ja"))
    assert (result.committed, result.created, result.errors) == (True, 2, [])
    anna = people.derived_signup_id(EDITION_ID, "anna@example.org")
    assert [r.id for r in result.rows] == [anna, people.derived_signup_id(EDITION_ID, "BERT@example.org")]
    assert [e.signup_id for e in uow.of_type(SignupSubmitted)] == [r.id for r in result.rows]
    registered = uow.of_type(ParticipantRegistered)
    assert [(e.name, e.email, e.learning_goal) for e in registered] == [
        ("Anna de Vries", "Anna@example.org", "plannen"), ("Bert", "bert@example.org", "")]
    stored = uow.repo.signup_rows[anna]
    assert (stored.choices, stored.signed_up_at, stored.consented_at) == (["o1", "o2"], NOW, NOW)


async def test_the_same_signups_again_change_nothing_and_other_data_is_refused():
    uow = make_uow(offers=[offer("o1"), offer("o2", host_org="host-b")])
    first = signups_csv("org-z,Anna,anna@example.org,nl,o1,,true", "org-z,Bert,bert@example.org,nl,o1,,true")
    await run_import(uow, "signups", first)
    again = await run_import(uow, "signups", signups_csv(
        "org-z,Bert,BERT@example.org,nl,o1,,ja", "org-z,Anna,anna@example.org,nl,o1,,true"))
    assert (again.created, again.unchanged, again.errors) == (0, 2, [])
    changed = await run_import(uow, "signups", signups_csv("org-z,Anna,anna@example.org,nl,o2;o1,,true"))
    assert codes(changed.errors) == [(2, "choices", "signup_differs")]
    assert len(uow.of_type(SignupSubmitted)) == 2


async def test_signup_rules_are_row_errors_naming_the_column():
    uow = make_uow(offers=[offer("o1"), offer("o-own", host_org="org-z"), offer("o-gone", status="cancelled")])
    result = await run_import(uow, "signups", signups_csv(
        "org-z,A,a@example.org,nl,o1,,false",
        "org-z,B,b@example.org,fr,o1,,true",
        "org-z,C,c@example.org,nl,o1;nope,,true",
        "org-z,D,d@example.org,nl,o-own,,true",
        "org-z,E,e@example.org,nl,o-gone,,true",
        "org-z,F,f@example.org,nl,o1;o1,,true",
        "org-z,G,g@example.org,nl,o1,,true",
        "org-z,G2,G@example.org,nl,o1,,true",
    ))
    assert codes(result.errors) == [
        (2, "consent", "consent_required"), (3, "language", "invalid_choice"), (4, "choices", "unknown_offer"),
        (5, "choices", "own_organisation"), (6, "choices", "offer_cancelled"), (7, "choices", "duplicate_choice"),
        (9, "email", "duplicate_row"),
    ]
    assert uow.repo.signup_rows == {} and uow.published == []


async def test_a_language_the_edition_does_not_offer_is_a_row_error():
    uow = make_uow(offers=[offer("o1")], languages=["nl"])
    result = await run_import(uow, "signups", signups_csv("org-z,A,a@example.org,de,o1,,true"))
    assert codes(result.errors) == [(2, "language", "language_not_offered")]


async def test_an_imported_signup_that_was_withdrawn_cannot_be_imported_again():
    withdrawn = signup(people.derived_signup_id(EDITION_ID, "anna@example.org"), status="withdrawn")
    uow = make_uow(offers=[offer("o1")], signups=[withdrawn])
    result = await run_import(uow, "signups", signups_csv("org-z,Anna,anna@example.org,nl,o1,,true"))
    assert codes(result.errors) == [(2, "email", "signup_ended")]


async def test_a_person_who_signed_up_themselves_with_the_same_data_is_unchanged():
    own = signup("s-own", email="anna@example.org", name="Anna", choices=["o1"])
    uow = make_uow(offers=[offer("o1")], signups=[own])
    result = await run_import(uow, "signups", signups_csv("org-z,Anna,ANNA@example.org,nl,o1,,true"))
    assert [(r.id, r.action) for r in result.rows] == [("s-own", "unchanged")]


async def test_signups_after_the_deadline_are_refused_as_a_whole():
    uow = make_uow(offers=[offer("o1")])
    with pytest.raises(Conflict) as refused:
        await run_import(uow, "signups", signups_csv("org-z,A,a@example.org,nl,o1,,true"), now=AFTER_DEADLINE)
    assert refused.value.code == "deadline_passed"


async def test_in_an_edition_that_requires_approval_the_organisation_must_take_part_and_is_asked():
    uow = make_uow(offers=[offer("o1")], organisations=[organisation("org-z")], requires_approval=True)
    refused = await run_import(uow, "signups", signups_csv("org-q,A,a@example.org,nl,o1,,true"))
    assert codes(refused.errors) == [(2, "org", "unknown_organisation")]
    result = await run_import(uow, "signups", signups_csv("org-z,A,a@example.org,nl,o1,,true"))
    assert result.committed
    (request,) = uow.of_type(NotificationRequested)
    assert request.recipient.email == "carla@example.org"
    assert request.context["approval_url"] == f"https://x/{result.rows[0].id}/org-z"
    assert uow.of_type(SignupSubmitted)[0].approval == "pending"
