"""Who may do what at registration, on the running service (real Kafka, PostgreSQL and API keys from
the key topic): the policy table of the access spec written out by hand, the scoping rule (another
region's edition is answered like an unknown one), and the participant's link pages."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import httpx
import pytest

from tests.support import Infra, services

pytestmark = pytest.mark.integration

REGION_A, REGION_B = "twente", "groningen"
#: Older than the services' link lifetime (link_max_age_hours, 60 days by default).
EXPIRED = 61 * 24 * 3600.0


def _edition(edition_id: str, region: str = REGION_A) -> dict[str, object]:
    return {"id": edition_id, "region": region, "name": f"Week {edition_id}", "signup_deadline": "2099-01-01T00:00:00Z",
            "starts_on": "2099-05-01", "ends_on": "2099-05-05"}


def _signup(offer_id: str, email: str, **changes: object) -> dict[str, object]:
    return {"org": "org-a", "name": "Anna de Vries", "email": email, "choices": [offer_id], "language": "nl", "consent": True, **changes}


async def _withdrawals(signup_id: str) -> int:
    conn = await asyncpg.connect(Infra.dsn("registration"))
    try:
        return await conn.fetchval(
            "SELECT count(*) FROM registration.outbox WHERE event_type = 'SignupWithdrawn' AND key = $1", signup_id
        )
    finally:
        await conn.close()


def test_policies_and_the_scoping_rule(infra: Infra) -> None:
    who = {
        "anon": {},
        "org A": {"Authorization": f"Bearer {infra.key('organiser', REGION_A)}"},
        "org B": {"Authorization": f"Bearer {infra.key('organiser', REGION_B)}"},
        "national": {"Authorization": f"Bearer {infra.key('national')}"},
        "admin": {"Authorization": f"Bearer {infra.key('admin')}"},
    }
    e = f"acc-{uuid.uuid4().hex[:6]}"
    # route → expected status per principal (anon, org A, org B, national, admin): the spec's table, by hand.
    # Each row's calls run in this order; the edition is closed last.
    table: list[tuple[str, str, object, tuple[int, int, int, int, int]]] = [
        ("GET", "/regions", None, (200, 200, 200, 200, 200)),
        ("POST", "/editions", lambda p: _edition(f"{e}-{p}"), (401, 201, 403, 403, 201)),
        ("GET", f"/editions/{e}", None, (200, 200, 200, 200, 200)),
        ("POST", f"/editions/{e}/offers", lambda p: {"host_org": "org-h", "title": "Visit", "date": "2099-05-02", "capacity": 4}, (401, 201, 404, 403, 201)),
        ("GET", f"/editions/{e}/offers", None, (200, 200, 200, 200, 200)),
        ("DELETE", f"/editions/{e}/offers/{e}-o2", None, (401, 204, 404, 403, 204)),
        ("POST", f"/editions/{e}/signups", lambda p: _signup(f"{e}-o1", f"{p.replace(' ', '-')}@example.org"), (201, 201, 201, 201, 201)),
        ("DELETE", f"/editions/{e}/signups/{{sid}}", None, (401, 204, 404, 403, 204)),
        ("DELETE", "/signups/{sid}/personal-data", None, (401, 204, 404, 403, 204)),  # again (admin): 204
        ("POST", f"/editions/{e}/close", None, (401, 204, 404, 403, 204)),
    ]
    with services(infra, "registration") as svc, httpx.Client(base_url=svc["registration"].url, timeout=10) as http:
        admin = who["admin"]
        assert http.post("/editions", json=_edition(e), headers=admin).status_code == 201
        for o in ("o1", "o2"):
            body = {"id": f"{e}-{o}", "host_org": "org-h", "title": "Visit", "date": "2099-05-02", "capacity": 4}
            assert http.post(f"/editions/{e}/offers", json=body, headers=admin).status_code == 201
        sid = http.post(f"/editions/{e}/signups", json=_signup(f"{e}-o1", "x@example.org")).json()["signup_id"]

        cells = []
        for method, path, body, expected in table:
            for (name, headers), status in zip(who.items(), expected, strict=True):
                r = http.request(method, path.format(sid=sid), headers=headers,
                                 json=body(name.replace(" ", "")) if callable(body) else None)
                cells.append((method, path, name, r.status_code, status))
                if status >= 400:
                    assert r.json()["error"] and r.json()["message"], r.text
        wrong = [c for c in cells if c[3] != c[4]]
        assert not wrong, "(method, route, who, got, expected): " + "; ".join(map(str, wrong))

        refused = http.post(f"/editions/{e}/close")
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Bearer"
        assert refused.json()["error"] == "unauthenticated"
        # another region's edition is answered exactly like one that does not exist
        hidden = http.delete(f"/editions/{e}/offers/{e}-o1", headers=who["org B"]).json()
        unknown = http.delete(f"/editions/{e}-none/offers/{e}-o1", headers=who["org B"]).json()
        assert hidden == {**unknown, "message": unknown["message"].replace(f"{e}-none", e)}
        assert hidden["error"] == "unknown_edition"
        forbidden = http.post("/editions", json=_edition(f"{e}-b"), headers=who["org B"]).json()
        assert (forbidden["error"], forbidden["field"]) == ("forbidden_region", "region")
        # an organiser naming a region outside the registry: still another region (403), not a 422
        nowhere = http.post("/editions", json=_edition(f"{e}-n", "nowhere"), headers=who["org A"]).json()
        assert nowhere["error"] == "forbidden_region"
        # another region's sign-up is erased exactly like one that does not exist
        hidden = http.delete(f"/signups/{sid}/personal-data", headers=who["org B"]).json()
        unknown = http.delete("/signups/s-none/personal-data", headers=who["org B"]).json()
        assert hidden == {**unknown, "message": unknown["message"].replace("s-none", sid)}
        assert hidden["error"] == "unknown_signup"


def test_the_participants_link(infra: Infra) -> None:
    admin = {"Authorization": f"Bearer {infra.key('admin')}"}
    e = f"link-{uuid.uuid4().hex[:6]}"
    with services(infra, "registration") as svc, httpx.Client(base_url=svc["registration"].url, timeout=10) as http:
        # (in Dutch and English: a sign-up's language must be one of its edition's)
        assert http.post("/editions", json={**_edition(e), "languages": ["nl", "en"]}, headers=admin).status_code == 201
        offer = {"id": f"{e}-o", "host_org": "org-h", "title": "Een dag in de bakkerij", "date": "2099-05-02", "capacity": 4}
        assert http.post(f"/editions/{e}/offers", json=offer, headers=admin).status_code == 201

        crlf = http.post(f"/editions/{e}/signups", json=_signup(offer["id"], "crlf@example.org", name="Anna\r\nBcc: x@example.org"))
        assert crlf.status_code == 422 and (crlf.json()["error"], crlf.json()["field"]) == ("invalid_request", "name")

        answer = http.post(f"/editions/{e}/signups", json=_signup(offer["id"], "anna@example.org")).json()
        sid, manage_url = answer["signup_id"], answer["manage_url"]
        base, _, token = manage_url.rpartition("/")
        assert base.endswith("/links/signup") and token
        page = f"/links/signup/{token}"

        for _ in range(2):  # a GET (a mail scanner's prefetch too) shows the page and changes nothing
            r = http.get(page)
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
            assert "Je inschrijving" in r.text and f"Week {e}" in r.text and "Een dag in de bakkerij" in r.text
            # two forms: change the choices, withdraw
            assert r.text.count("<button") == 2 and f'action="{token}/withdraw"' in r.text and f'action="{token}/choices"' in r.text
        assert asyncio.run(_withdrawals(sid)) == 0

        for _ in range(2):  # pressing the button; again: the same page, nothing changes
            r = http.post(f"{page}/withdraw")
            assert r.status_code == 200 and "Je inschrijving is ingetrokken" in r.text and "<button" not in r.text
        assert asyncio.run(_withdrawals(sid)) == 1
        assert http.get(f"/editions/{e}").json()["signups"] == 0

        other = http.post(f"/editions/{e}/signups", json=_signup(offer["id"], "bea@example.org", language="en")).json()["signup_id"]
        fresh = Infra.link("signup", other, e)
        assert "Your sign-up" in http.get(f"/links/signup/{fresh}").text  # in the participant's language
        bad = {
            "expired": (Infra.link("signup", other, e, age_seconds=EXPIRED), 410, "Deze link is verlopen"),
            "tampered": (fresh[:-3] + ("AAA" if not fresh.endswith("AAA") else "BBB"), 404, "Deze link is niet geldig"),
            "other purpose": (Infra.link("seat_offer_accept", other, e), 404, "This link is not valid"),
        }
        for what, (token_, status, text) in bad.items():
            for method, path in (("GET", f"/links/signup/{token_}"), ("POST", f"/links/signup/{token_}/withdraw")):
                r = http.request(method, path)
                assert r.status_code == status and text in r.text and "<button" not in r.text, (what, method, r.text)
        assert asyncio.run(_withdrawals(other)) == 0

    log = svc["registration"].log_path.read_text()
    assert token not in log and fresh not in log, "a link token was logged"
