"""Registration over HTTP on the real database: bad input gets a clear 4xx and stores nothing."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import httpx
import pytest

from tests.support import Infra, services

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
        signup = {"org": "org-a", "name": "Ann", "email": "ann@example.org", "choices": [f"{open_e}-o"]}

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
        assert asyncio.run(_stored()) == (before[0] + 1, before[1], before[2] + 1)

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
        r = httpx.post(f"{api}/editions/{edition}/signups", headers={"X-Correlation-ID": str(cid)}, json={"org": "org-a", "name": "Ann", "email": "ann@example.org", "choices": offers})
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
            ("SignupSubmitted", signup["signup_id"], cid), ("OfferCancelled", offers[0], cid),
            ("SignupWithdrawn", signup["signup_id"], cid), ("EditionClosed", edition, cid),
        ]
        paths = httpx.get(f"{api}/openapi.json").json()["paths"]
        assert set(paths["/editions/{edition_id}/signups"]["post"]["responses"]) >= {"201", "404", "409", "422", "503"}
