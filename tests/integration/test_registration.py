"""Registration over HTTP on the real database and broker: bad input gets a clear 4xx and stores
nothing; the lifecycle's events; regions come from the region registry (also one added while the
service runs); a participant's name and e-mail address travel only on the region's participants topic,
and erasing them blanks them and leaves a tombstone there."""

from __future__ import annotations

import asyncio
import json
import uuid

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from estafette.runtime.kafka import KafkaAccess
from estafette.tools import regions
from schemas.topics import PARTICIPANTS, REGIONAL, SIGNUPS
from tests.support import Infra, eventually, region, services

pytestmark = pytest.mark.integration


async def _stored() -> tuple[int, int, int]:
    conn = await asyncpg.connect(Infra.dsn("registration"))
    try:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM registration.signups) s, (SELECT count(*) FROM registration.offers) o,"
            " (SELECT count(*) FROM registration.outbox) e"
        )
        return row["s"], row["o"], row["e"]
    finally:
        await conn.close()


def test_bad_input_is_refused_with_a_clear_message_and_nothing_is_stored(infra: Infra) -> None:
    admin = {"Authorization": f"Bearer {infra.key('admin')}"}
    with services(infra, "registration") as svc:
        api = svc["registration"].url
        open_e, past_e = f"ok-{uuid.uuid4().hex[:6]}", f"past-{uuid.uuid4().hex[:6]}"
        for edition, deadline in ((open_e, "2099-01-01T00:00:00Z"), (past_e, "2020-01-01T00:00:00Z")):
            r = httpx.post(f"{api}/editions", headers=admin, json={"id": edition, "region": "twente", "name": edition, "signup_deadline": deadline, "starts_on": "2099-05-01", "ends_on": "2099-05-05"})
            assert r.status_code == 201, r.text
            r = httpx.post(f"{api}/editions/{edition}/offers", headers=admin, json={"id": f"{edition}-o", "host_org": "org-h", "title": "Visit", "date": "2099-05-02", "capacity": 4})
            assert r.status_code == 201, r.text
        before = asyncio.run(_stored())
        signup = {"org": "org-a", "name": "Ann", "email": "ann@example.org", "choices": [f"{open_e}-o"], "consent": True}

        cases = [
            # (what, method, path, body or raw text, status, error code, field)
            ("malformed JSON", f"/editions/{open_e}/signups", '{"org": "org-a",', 422, "invalid_request", None),
            ("unknown edition", "/editions/no-such-edition/signups", signup, 404, "unknown_edition", None),
            ("after the deadline", f"/editions/{past_e}/signups", {**signup, "choices": [f"{past_e}-o"]}, 409, "deadline_passed", None),
            ("offer of another edition", f"/editions/{open_e}/signups", {**signup, "choices": [f"{past_e}-o"]}, 422, "unknown_offer", "choices.0"),
            ("bad e-mail", f"/editions/{open_e}/signups", {**signup, "email": "not-an-address"}, 422, "invalid_request", "email"),
            ("no choices", f"/editions/{open_e}/signups", {**signup, "choices": []}, 422, "invalid_request", "choices"),
            ("own organisation", f"/editions/{open_e}/signups", {**signup, "org": "org-h"}, 422, "own_organisation", "choices.0"),
            ("unknown field", f"/editions/{open_e}/signups", {**signup, "phone": "06"}, 422, "invalid_request", "phone"),
            ("offer outside the edition", f"/editions/{open_e}/offers", {"host_org": "h", "title": "t", "date": "2030-01-01", "capacity": 1}, 422, "date_outside_edition", "date"),
            ("negative capacity", f"/editions/{open_e}/offers", {"host_org": "h", "title": "t", "date": "2099-05-02", "capacity": -1}, 422, "invalid_request", "capacity"),
            ("capacity beyond the bound", f"/editions/{open_e}/offers", {"host_org": "h", "title": "t", "date": "2099-05-02", "capacity": 1, "max_per_org": 2**31}, 422, "invalid_request", "max_per_org"),
            ("NUL in a title", f"/editions/{open_e}/offers", {"host_org": "h", "title": "t\u0000", "date": "2099-05-02", "capacity": 1}, 422, "invalid_request", "title"),
            ("CR/LF in a name", f"/editions/{open_e}/signups", {**signup, "name": "Ann\r\nBcc: all@example.org"}, 422, "invalid_request", "name"),
        ]
        for what, path, body, status, code, field in cases:
            organiser = admin if path.endswith("/offers") else {}
            if isinstance(body, str):
                r = httpx.post(f"{api}{path}", content=body, headers={"content-type": "application/json"})
            else:
                r = httpx.post(f"{api}{path}", json=body, headers=organiser)
            assert r.status_code == status, (what, r.text)
            answer = r.json()
            assert answer["error"] == code, (what, answer)
            assert answer["message"], what
            if field:
                assert answer["field"] == field, (what, answer)
        assert asyncio.run(_stored()) == before

        ok = httpx.post(f"{api}/editions/{open_e}/signups", json=signup)
        assert ok.status_code == 201
        again = httpx.post(f"{api}/editions/{open_e}/signups", json=signup)
        assert again.status_code == 409 and again.json()["error"] == "already_signed_up"
        # one sign-up, announced twice: SignupSubmitted and the participant's ParticipantRegistered
        assert asyncio.run(_stored()) == (before[0] + 1, before[1], before[2] + 2)

        metrics = {
            line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in httpx.get(f"{api}/metrics").text.splitlines()
            if line.startswith("registration_")
        }
        assert metrics['registration_refused_total{code="deadline_passed"}'] == 1
        assert metrics['registration_refused_total{code="already_signed_up"}'] == 1
        assert metrics['registration_accepted_total{action="submit_signup"}'] == 1
        assert metrics['registration_accepted_total{action="open_edition"}'] == 2


async def _events(edition: str) -> list[tuple[str, str, uuid.UUID | None]]:
    """(event_type, key, correlation_id) of the edition's outbox rows, in order."""
    conn = await asyncpg.connect(Infra.dsn("registration"))
    try:
        rows = await conn.fetch(
            "SELECT event_type, key, correlation_id FROM registration.outbox WHERE payload->>'edition' = $1"
            " ORDER BY id", edition,
        )
        return [(r["event_type"], r["key"], r["correlation_id"]) for r in rows]
    finally:
        await conn.close()


def test_lifecycle_answers_typed_json_and_announces_each_ending_once(infra: Infra) -> None:
    admin = {"Authorization": f"Bearer {infra.key('admin')}"}
    with services(infra, "registration") as svc:
        api = svc["registration"].url
        edition, cid = f"lc-{uuid.uuid4().hex[:6]}", uuid.uuid4()
        headers = {"X-Correlation-ID": str(cid), **admin}
        r = httpx.post(f"{api}/editions", headers=headers, json={"id": edition, "region": "twente", "name": "Lifecycle", "signup_deadline": "2099-01-01T00:00:00Z", "starts_on": "2099-05-01", "ends_on": "2099-05-05"})
        assert r.status_code == 201 and r.json()["status"] == "open" and r.json()["languages"] == ["nl"], r.text
        offers = []
        for host in ("org-h", "org-i"):
            r = httpx.post(f"{api}/editions/{edition}/offers", headers=headers, json={"host_org": host, "title": "Visit", "date": "2099-05-02", "capacity": 2})
            assert r.status_code == 201, r.text
            assert {k: r.json()[k] for k in ("edition_id", "host_org", "capacity", "max_per_org", "format", "location", "status")} == {
                "edition_id": edition, "host_org": host, "capacity": 2, "max_per_org": None, "format": "visit", "location": "", "status": "published"}
            offers.append(r.json()["id"])
        r = httpx.post(f"{api}/editions/{edition}/signups", headers={"X-Correlation-ID": str(cid)}, json={"org": "org-a", "name": "Ann", "email": "ann@example.org", "choices": offers, "consent": True})
        assert r.status_code == 201, r.text
        signup = r.json()
        assert (signup["edition"], signup["status"], signup["choices"]) == (edition, "submitted", offers)
        assert "/links/signup/" in signup["manage_url"]

        for _ in range(2):  # the second time changes nothing and announces nothing
            assert httpx.delete(f"{api}/editions/{edition}/offers/{offers[0]}", headers=headers).status_code == 204
            assert httpx.delete(f"{api}/editions/{edition}/signups/{signup['signup_id']}", headers=headers).status_code == 204
        listed = httpx.get(f"{api}/editions/{edition}/offers").json()
        assert [(o["id"], o["status"]) for o in listed] == sorted([(offers[0], "cancelled"), (offers[1], "published")])
        overview = httpx.get(f"{api}/editions/{edition}").json()
        assert (overview["id"], overview["status"], overview["offers"], overview["signups"]) == (edition, "open", 1, 0)
        for _ in range(2):
            assert httpx.post(f"{api}/editions/{edition}/close", headers=headers, json={"reason": "done"}).status_code == 204
        assert httpx.get(f"{api}/editions/{edition}").json()["status"] == "closed"

        late = httpx.post(f"{api}/editions/{edition}/offers", headers=admin, json={"host_org": "h", "title": "t", "date": "2099-05-02", "capacity": 1})
        assert (late.status_code, late.json()["error"]) == (409, "edition_closed")
        for path, code in ((f"/editions/{edition}/offers/nope", "unknown_offer"), (f"/editions/{edition}/signups/nope", "unknown_signup")):
            r = httpx.delete(f"{api}{path}", headers=admin)
            assert (r.status_code, r.json()["error"]) == (404, code)

        assert asyncio.run(_events(edition)) == [
            ("EditionOpened", edition, cid), ("OfferPublished", offers[0], cid), ("OfferPublished", offers[1], cid),
            ("SignupSubmitted", signup["signup_id"], cid), ("ParticipantRegistered", signup["signup_id"], cid),
            ("OfferCancelled", offers[0], cid),
            ("SignupWithdrawn", signup["signup_id"], cid), ("EditionClosed", edition, cid),
        ]
        paths = httpx.get(f"{api}/openapi.json").json()["paths"]
        assert set(paths["/editions/{edition_id}/signups"]["post"]["responses"]) >= {"201", "404", "409", "422", "503"}


# --- regions come from the registry -----------------------------------------------------------------
EDITION = {"name": "Week", "signup_deadline": "2099-01-01T00:00:00Z", "starts_on": "2099-05-01", "ends_on": "2099-05-05"}
PUBLIC_FIELDS = {"id", "names", "timezone", "languages"}


async def _editions_stored(ids: list[str]) -> set[str]:
    conn = await asyncpg.connect(Infra.dsn("registration"))
    try:
        return {r["id"] for r in await conn.fetch("SELECT id FROM registration.editions WHERE id = ANY($1::text[])", ids)}
    finally:
        await conn.close()


def test_regions_come_from_the_registry_also_one_added_while_running(infra: Infra) -> None:
    admin = {"Authorization": f"Bearer {infra.key('admin')}"}
    later = f"later-{uuid.uuid4().hex[:6]}"
    with services(infra, "registration") as svc, httpx.Client(base_url=svc["registration"].url, timeout=10) as http:
        listed = http.get("/regions")  # public
        assert listed.status_code == 200, listed.text
        by_id = {r["id"]: r for r in listed.json()}
        assert [r["id"] for r in listed.json()] == sorted(by_id)
        for record in regions.load():  # the applied deploy/regions.toml, as portals see it
            assert by_id[record.id] == record.model_dump(mode="json", include=PUBLIC_FIELDS)
        assert by_id["twente"]["languages"] == ["nl", "de", "en"] and by_id["twente"]["names"]["de"] == "Twente"
        assert later not in by_id

        def open_edition(edition_id: str, region_id: str, languages: list[str] | None = None) -> httpx.Response:
            body = {"id": edition_id, "region": region_id, **EDITION, **({"languages": languages} if languages else {})}
            return http.post("/editions", json=body, headers=admin)

        e = f"reg-{uuid.uuid4().hex[:6]}"
        refusals = [  # (edition id, region, languages, code, field)
            (f"{e}-nowhere", f"nowhere-{uuid.uuid4().hex[:6]}", None, "unknown_region", "region"),
            (f"{e}-early", later, None, "unknown_region", "region"),  # not in the registry yet
            (f"{e}-achterhoek", "achterhoek", ["nl", "en"], "language_not_offered", "languages"),  # nl and de only
            (f"{e}-drenthe", "drenthe", ["de"], "language_not_offered", "languages"),  # nl only (deploy/regions.toml)
        ]
        for edition_id, region_id, languages, code, field in refusals:
            r = open_edition(edition_id, region_id, languages)
            assert r.status_code == 422, (edition_id, r.text)
            assert (r.json()["error"], r.json()["field"]) == (code, field), r.text
            assert r.json()["message"]

        infra.add_regions(region(later, languages=["nl"]))  # `estafette regions apply` while registration runs: no restart
        added = eventually(lambda: next((r for r in http.get("/regions").json() if r["id"] == later), None), timeout=30)
        assert added == {"id": later, "names": {"nl": later, "de": later, "en": later}, "timezone": "Europe/Amsterdam",
                         "languages": ["nl"]}
        r = open_edition(f"{e}-later-de", later, ["nl", "de"])
        assert (r.status_code, r.json()["error"], r.json()["field"]) == (422, "language_not_offered", "languages")
        r = open_edition(f"{e}-later", later)
        assert r.status_code == 201 and r.json()["region"] == later, r.text
        assert open_edition(f"{e}-achterhoek-ok", "achterhoek", ["nl", "de"]).status_code == 201

        tried = [edition_id for edition_id, *_ in refusals] + [f"{e}-later-de", f"{e}-later", f"{e}-achterhoek-ok"]
        assert asyncio.run(_editions_stored(tried)) == {f"{e}-later", f"{e}-achterhoek-ok"}  # refusals stored nothing


# --- personal data: only on the participants topic; erasure ------------------------------------------
async def _partitions(kafka: KafkaAccess, topic: str) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(**kafka.client_kwargs())
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
        return sorted(TopicPartition(topic, p["partition"]) for p in described["partitions"])
    finally:
        await admin.close()


async def _records(kafka: KafkaAccess, topic: str) -> list[tuple[str | None, bytes | None]]:
    """Every record (key, value) of `topic`, from its beginning to its end now."""
    partitions = await _partitions(kafka, topic)
    assert partitions, f"no topic {topic}"
    consumer = AIOKafkaConsumer(**kafka.client_kwargs(), group_id=None, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found: list[tuple[str | None, bytes | None]] = []
        async with asyncio.timeout(20):
            while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    found += [(m.key.decode() if m.key else None, m.value) for m in batch]
        return found
    finally:
        await consumer.stop()


def records(infra: Infra, topic: str) -> list[tuple[str | None, bytes | None]]:
    return asyncio.run(_records(infra.kafka, topic))


async def _signup_row(signup_id: str) -> tuple[dict, list[str]]:
    """The sign-up's row and the outbox payloads that name it."""
    conn = await asyncpg.connect(Infra.dsn("registration"))
    try:
        row = await conn.fetchrow("SELECT name, email, status, erased_at FROM registration.signups WHERE id = $1", signup_id)
        payloads = await conn.fetch(
            "SELECT payload::text AS p FROM registration.outbox WHERE key = $1 AND payload IS NOT NULL", signup_id
        )
        return dict(row), [r["p"] for r in payloads]
    finally:
        await conn.close()


def test_a_signups_name_and_email_travel_only_on_the_participants_topic_and_erasure_leaves_a_tombstone(infra: Infra) -> None:
    """In a region of its own (so that its topics hold this test's records only)."""
    where = f"pd-{uuid.uuid4().hex[:6]}"
    infra.add_regions(region(where))
    who = {"admin": {"Authorization": f"Bearer {infra.key('admin')}"},
           "org A": {"Authorization": f"Bearer {infra.key('organiser', where)}"},
           "org B": {"Authorization": f"Bearer {infra.key('organiser', 'groningen')}"},
           "national": {"Authorization": f"Bearer {infra.key('national')}"}}
    name, email = f"Zoë Persoonsgegeven {uuid.uuid4().hex[:6]}", f"zoe-{uuid.uuid4().hex[:6]}@example.org"
    with services(infra, "registration") as svc, httpx.Client(base_url=svc["registration"].url, timeout=10) as http:
        eventually(lambda: where in {r["id"] for r in http.get("/regions").json()}, timeout=30)
        e = f"{where}-week"
        assert http.post("/editions", json={"id": e, "region": where, **EDITION}, headers=who["admin"]).status_code == 201
        offer = {"id": f"{e}-o", "host_org": "org-h", "title": "Visit", "date": "2099-05-02", "capacity": 4}
        assert http.post(f"/editions/{e}/offers", json=offer, headers=who["admin"]).status_code == 201
        r = http.post(f"/editions/{e}/signups", json={"org": "org-a", "name": name, "email": email, "language": "nl",
                                                       "choices": [offer["id"]], "consent": True})
        assert r.status_code == 201, r.text
        sid = r.json()["signup_id"]
        other = http.post(f"/editions/{e}/signups", json={"org": "org-a", "name": "Bea", "email": f"bea-{email}",
                                                           "choices": [offer["id"]], "consent": True}).json()["signup_id"]

        participants = PARTICIPANTS.name_in(where)
        registered = eventually(lambda: [json.loads(v) for k, v in records(infra, participants) if k == sid and v], timeout=30)
        assert [(p["event_type"], p["signup_id"], p["name"], p["email"], p["language"]) for p in registered] == [
            ("ParticipantRegistered", sid, name, email, "nl")]
        submitted = eventually(lambda: [v for k, v in records(infra, SIGNUPS.name_in(where)) if k == sid], timeout=30)
        assert [json.loads(v)["event_type"] for v in submitted] == ["SignupSubmitted"]
        for topic in REGIONAL:  # every topic of the region but the participants topic: no name, no address
            if topic is PARTICIPANTS:
                continue
            values = [v for _, v in records(infra, topic.name_in(where)) if v]
            assert not [v for v in values if name.encode() in v or email.encode() in v], topic.kind

        # erasure: who may (the table of test_registration_access has every caller), then again, unknown
        assert http.delete(f"/signups/{sid}/personal-data", headers=who["org B"]).status_code == 404
        assert http.delete(f"/signups/{sid}/personal-data", headers=who["national"]).status_code == 403
        assert asyncio.run(_signup_row(sid))[0]["email"] == email
        for _ in range(2):
            r = http.delete(f"/signups/{sid}/personal-data", headers=who["org A"])
            assert r.status_code == 204, r.text
        unknown = http.delete(f"/signups/s-{uuid.uuid4().hex[:16]}/personal-data", headers=who["admin"])
        assert (unknown.status_code, unknown.json()["error"]) == (404, "unknown_signup")

        row, payloads = asyncio.run(_signup_row(sid))
        assert (row["name"], row["email"], row["status"]) == ("", "", "submitted") and row["erased_at"] is not None
        assert payloads and not [p for p in payloads if name in p or email in p], "the outbox still holds the details"
        mine = eventually(lambda: (found := [v for k, v in records(infra, participants) if k == sid]) and found[-1] is None and found,
                          timeout=30)
        assert [v is None for v in mine] == [False, True]  # the details, then one tombstone (erasing again sent none)
        assert [json.loads(v)["name"] for k, v in records(infra, participants) if k == other] == ["Bea"]  # others keep theirs
        assert http.get(f"/editions/{e}").json()["signups"] == 2  # erasure is not a withdrawal

    log = svc["registration"].log_path.read_text()
    assert name not in log and email not in log, "personal data was logged"


def test_concurrent_signups_are_committed_together_and_each_address_signs_up_once(infra: Infra) -> None:
    """60 sign-ups at once (registration commits concurrent ones together: service.SignupIntake): 40
    addresses, 20 of them twice (another case), and 5 refusals among them. Each address gets exactly
    one 201, its repeat a 409 `already_signed_up`, a refusal its own answer; 40 rows and 80 events."""
    admin = {"Authorization": f"Bearer {infra.key('admin')}"}
    with services(infra, "registration") as svc:
        api = svc["registration"].url
        edition = f"burst-{uuid.uuid4().hex[:6]}"
        r = httpx.post(f"{api}/editions", headers=admin, json={"id": edition, "region": "twente", "name": edition, "signup_deadline": "2099-01-01T00:00:00Z", "starts_on": "2099-05-01", "ends_on": "2099-05-05"})
        assert r.status_code == 201, r.text
        r = httpx.post(f"{api}/editions/{edition}/offers", headers=admin, json={"id": f"{edition}-o", "host_org": "org-h", "title": "Visit", "date": "2099-05-02", "capacity": 4})
        assert r.status_code == 201, r.text
        before = asyncio.run(_stored())

        def body(i: int, upper: bool = False) -> dict:
            email = f"p{i}@example.org"
            return {"org": "org-a", "name": f"P {i}", "email": email.upper() if upper else email, "choices": [f"{edition}-o"], "consent": True}

        bodies = [body(i) for i in range(40)] + [body(i, upper=True) for i in range(20)]
        bodies += [{**body(100 + i), "choices": ["no-such-offer"]} for i in range(5)]

        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(timeout=30) as client:
                return await asyncio.gather(*(client.post(f"{api}/editions/{edition}/signups", json=b) for b in bodies))

        answers = asyncio.run(burst())
        by_address: dict[str, list[int]] = {}
        for b, r in zip(bodies, answers, strict=True):
            by_address.setdefault(b["email"].lower(), []).append(r.status_code)
        assert all(sorted(by_address[f"p{i}@example.org"]) == [201, 409] for i in range(20)), by_address
        assert all(by_address[f"p{i}@example.org"] == [201] for i in range(20, 40)), by_address
        assert all(by_address[f"p{100 + i}@example.org"] == [422] for i in range(5)), by_address
        assert {r.json()["error"] for r in answers if r.status_code == 409} == {"already_signed_up"}
        signups, offers, events = asyncio.run(_stored())
        assert (signups - before[0], events - before[2]) == (40, 80)
