"""File interface of the matching engine: read an INSTANCE json, write a RESULT json.

INSTANCE::

    {"edition": "fr-2027",
     "offers": [{"id": "o-1", "host_org": "org-17", "date": "2027-05-31", "capacity": 12,
                 "max_per_org": 3}],
     "participants": [{"id": "p-1", "org": "org-3", "signed_up_at": "2027-03-02T09:14:00Z",
                       "choices": ["o-14", "o-2"], "available": ["2027-05-31"],
                       "max_visits": 1}],
     "pinned": [{"participant": "p-1", "offer": "o-14"}],
     "forbidden": [{"participant": "p-1", "offer": "o-2"}]}

`max_per_org`, `available`, `max_visits`, `pinned`, `forbidden` and `edition` are optional.
An offer's host organisation is `host_org`; `host`, the name older files use, is accepted as an
alias (one of the two, not both).
`signed_up_at` is an ISO 8601 timestamp with a time zone, dates are ISO dates.

RESULT::

    {"assignments": [{"participant": "p-1", "offer": "o-14", "rank": 1}],
     "unmatched": ["p-9"],
     "objective": {"assigned": 1, "rank_cost": 1},
     "explanations": {
        "p-1": {"code": "placed", "text": "Placed at choice 1.", "ranks": [1]},
        "p-9": {"code": "all_full", "text": "Every chosen offer was full.",
                "choices": [{"offer": "o-3", "rank": 1, "reason": "full"}]}}}

Validation is a single pass with plain dict/list checks (no per-record model objects, which
would cost seconds at 500,000 participants); the first problem found raises InstanceError
with a message naming the record, e.g.
`participants[41] (id "p-42"): choice "o-999" is not an offer of this instance`.

An unmatched participant's `code` is one of the published unmatched reasons (schemas/reasons.py:
all_full, own_org, unavailable, org_cap, forbidden, no_choices, mixed); each entry of `choices`
gives the reason of one choice (`full` there means that one offer was full).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import orjson

from services.matching.engine import Explanation, Offer, Participant, Problem, Result

OFFER_FIELDS = frozenset({"id", "host_org", "host", "date", "capacity", "max_per_org"})
HOST_ALIAS = "host"  # the older name of `host_org` in instance files, still accepted
PARTICIPANT_FIELDS = frozenset({"id", "org", "signed_up_at", "choices", "available", "max_visits"})
PAIR_FIELDS = frozenset({"participant", "offer"})
TOP_FIELDS = frozenset({"edition", "offers", "participants", "pinned", "forbidden"})


class InstanceError(ValueError):
    """The instance file is missing, malformed or inconsistent."""


def load_instance(path: Path) -> Problem:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InstanceError(f"{path}: file not found") from None
    except OSError as exc:
        raise InstanceError(f"{path}: cannot be read ({exc.strerror})") from None
    return parse_instance(data)


def parse_instance(data: bytes | str) -> Problem:
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InstanceError(f"not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InstanceError("the instance must be a JSON object")
    if not doc.keys() <= TOP_FIELDS:
        raise InstanceError(f'the instance has an unknown field "{sorted(doc.keys() - TOP_FIELDS)[0]}"')
    for key in ("offers", "participants"):
        if key not in doc:
            raise InstanceError(f'the instance has no "{key}" list')
        if not isinstance(doc[key], list):
            raise InstanceError(f'"{key}" must be a list')
    if not isinstance(doc.get("edition", ""), str):
        raise InstanceError('"edition" must be a string')

    dates: dict[str, dt.date] = {}
    offers = [_offer(k, rec, dates) for k, rec in enumerate(doc["offers"])]
    offer_at: dict[str, int] = {}
    for k, o in enumerate(offers):
        if offer_at.setdefault(o.id, k) != k:
            raise InstanceError(f'offers[{k}] (id "{o.id}"): duplicate id (also offers[{offer_at[o.id]}])')

    participants = [_participant(k, rec, dates, offer_at) for k, rec in enumerate(doc["participants"])]
    person_at: dict[str, int] = {}
    for k, p in enumerate(participants):
        if person_at.setdefault(p.id, k) != k:
            raise InstanceError(f'participants[{k}] (id "{p.id}"): duplicate id (also participants[{person_at[p.id]}])')

    return Problem(
        offers=offers,
        participants=participants,
        pinned=_pairs(doc, "pinned", person_at, offer_at),
        forbidden=_pairs(doc, "forbidden", person_at, offer_at),
    )


def result_to_json(result: Result) -> bytes:
    """RESULT document (compact json, newline-terminated)."""
    docs: dict[int, dict] = {}  # placed participants share Explanation objects: convert each once
    explanations = {}
    for pid, e in result.explanations.items():
        doc = docs.get(id(e))
        if doc is None:
            doc = docs[id(e)] = _explanation_doc(e)
        explanations[pid] = doc
    return orjson.dumps(
        {
            "assignments": [{"participant": a.participant, "offer": a.offer, "rank": a.rank} for a in result.assignments],
            "unmatched": result.unmatched,
            "objective": {"assigned": result.assigned, "rank_cost": result.rank_cost},
            "explanations": explanations,
        },
        option=orjson.OPT_APPEND_NEWLINE,
    )


def _explanation_doc(e: Explanation) -> dict:
    doc: dict = {"code": e.code, "text": e.text}
    if e.ranks:
        doc["ranks"] = e.ranks
    if e.choices:
        doc["choices"] = [{"offer": n.offer, "rank": n.rank, "reason": n.reason} for n in e.choices]
    return doc


def write_result(path: Path, result: Result) -> None:
    try:
        path.write_bytes(result_to_json(result))
    except OSError as exc:
        raise InstanceError(f"{path}: cannot be written ({exc.strerror})") from None


# ----------------------------------------------------------------------------- records
#
# Each helper takes the record's position `at` = (list name, index, record) and builds the
# human-readable location only when it raises: formatting it for every record would cost
# more than the checks themselves at 500,000 participants.


def _where(at: tuple[str, int, object]) -> str:
    kind, k, rec = at
    rid = rec.get("id") if isinstance(rec, dict) else None
    return f'{kind}[{k}] (id "{rid}")' if isinstance(rid, str) else f"{kind}[{k}]"


def _fail(at: tuple[str, int, object], message: str) -> InstanceError:
    return InstanceError(f"{_where(at)}: {message}")


def _json(value: object) -> str:
    return orjson.dumps(value).decode()


def _record(at: tuple[str, int, object], allowed: frozenset[str]) -> dict:
    rec = at[2]
    if not isinstance(rec, dict):
        raise _fail(at, "must be an object")
    if not rec.keys() <= allowed:
        unknown = sorted(rec.keys() - allowed)
        raise _fail(at, f'unknown field "{unknown[0]}" (allowed: {", ".join(sorted(allowed))})')
    return rec


def _required(rec: dict, key: str, at: tuple[str, int, object]):
    try:
        return rec[key]
    except KeyError:
        raise _fail(at, f'missing field "{key}"') from None


def _text(rec: dict, key: str, at: tuple[str, int, object]) -> str:
    value = _required(rec, key, at)
    if type(value) is not str or not value:
        raise _fail(at, f'"{key}" must be a non-empty string, got {_json(value)}')
    return value


def _count(value: object, key: str, at: tuple[str, int, object], minimum: int) -> int:
    if type(value) is not int or value < minimum:
        raise _fail(at, f'"{key}" must be an integer >= {minimum}, got {_json(value)}')
    return value


def _date(value: object, key: str, at: tuple[str, int, object], dates: dict[str, dt.date]) -> dt.date:
    """ISO date, strictly YYYY-MM-DD; `dates` caches the few distinct values."""
    found = dates.get(value) if type(value) is str else None
    if found is not None:
        return found
    if type(value) is str and len(value) == 10:
        try:
            dates[value] = dt.date.fromisoformat(value)
            return dates[value]
        except ValueError:
            pass
    raise _fail(at, f'"{key}" must be a date like "2027-05-31", got {_json(value)}')


def _offer(k: int, rec: object, dates: dict[str, dt.date]) -> Offer:
    at = ("offers", k, rec)
    rec = _record(at, OFFER_FIELDS)
    max_per_org = rec.get("max_per_org")
    return Offer(
        id=_text(rec, "id", at),
        host_org=_text(rec, _host_key(rec, at), at),
        date=_date(_required(rec, "date", at), "date", at, dates),
        capacity=_count(_required(rec, "capacity", at), "capacity", at, 0),
        max_per_org=None if max_per_org is None else _count(max_per_org, "max_per_org", at, 0),
    )


def _host_key(rec: dict, at: tuple[str, int, object]) -> str:
    """`host_org`, or its alias `host` in older files; never both."""
    if HOST_ALIAS not in rec:
        return "host_org"
    if "host_org" in rec:
        raise _fail(at, f'give "host_org" or its older name "{HOST_ALIAS}", not both')
    return HOST_ALIAS


def _participant(k: int, rec: object, dates: dict[str, dt.date], offer_at: dict[str, int]) -> Participant:
    at = ("participants", k, rec)
    rec = _record(at, PARTICIPANT_FIELDS)
    pid = _text(rec, "id", at)
    org = _text(rec, "org", at)

    stamp = _required(rec, "signed_up_at", at)
    try:
        signed_up_at = dt.datetime.fromisoformat(stamp) if type(stamp) is str else None
    except ValueError:
        signed_up_at = None
    if signed_up_at is None or signed_up_at.tzinfo is None:
        raise _fail(at, f'"signed_up_at" must be a timestamp with time zone like "2027-03-02T09:14:00Z", got {_json(stamp)}')

    choices = _required(rec, "choices", at)
    if type(choices) is not list:
        raise _fail(at, '"choices" must be a list of offer ids')
    if not all(type(c) is str and c in offer_at for c in choices):
        unknown = next(c for c in choices if type(c) is not str or c not in offer_at)
        raise _fail(at, f"choice {_json(unknown)} is not an offer of this instance")
    if len(set(choices)) != len(choices):
        repeated = next(c for n, c in enumerate(choices) if c in choices[:n])
        raise _fail(at, f'choice "{repeated}" is listed more than once')

    available = rec.get("available")
    if available is not None:
        if type(available) is not list:
            raise _fail(at, '"available" must be a list of dates')
        available = frozenset([_date(d, "available", at, dates) for d in available])

    max_visits = rec.get("max_visits")
    return Participant(
        id=pid,
        org=org,
        signed_up_at=signed_up_at,
        choices=tuple(choices),
        available=available,
        max_visits=1 if max_visits is None else _count(max_visits, "max_visits", at, 1),
    )


def _pairs(doc: dict, key: str, person_at: dict[str, int], offer_at: dict[str, int]) -> frozenset[tuple[str, str]]:
    records = doc.get(key, [])
    if type(records) is not list:
        raise InstanceError(f'"{key}" must be a list of {{"participant": ..., "offer": ...}} objects')
    pairs = set()
    for k, rec in enumerate(records):
        at = (key, k, rec)
        rec = _record(at, PAIR_FIELDS)
        pid, oid = _text(rec, "participant", at), _text(rec, "offer", at)
        if pid not in person_at:
            raise _fail(at, f'participant "{pid}" is not a participant of this instance')
        if oid not in offer_at:
            raise _fail(at, f'offer "{oid}" is not an offer of this instance')
        pairs.add((pid, oid))
    return frozenset(pairs)
