"""Credentials and policies (estafette/runtime/auth.py), without Kafka: API keys and the key ring fed
record by record, participant links, the policy dependencies on a tiny FastAPI app, and OIDC tokens
signed by a key pair made here and served from a JWKS on a local HTTP server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI

from estafette.runtime.access import Principal
from estafette.runtime.kafka import KafkaAccess
from estafette.runtime.auth import (
    Admin,
    Authenticator,
    Figures,
    KeyRing,
    LinkExpired,
    LinkInvalid,
    Links,
    Oidc,
    OidcConfig,
    Organiser,
    Public,
    key_id_of,
    key_sha256,
    link_policy,
    new_key,
)
from estafette.runtime.http import create_http_api
from schemas.access import ApiKeyRecord

CREATED = datetime(2027, 1, 1, tzinfo=UTC)


# --- API keys and the ring -----------------------------------------------------------------------
def record(key: str, role: str = "organiser", region: str | None = "twente", revoked: bool = False) -> bytes:
    key_id = key_id_of(key)
    assert key_id
    return ApiKeyRecord(
        key_id=key_id, key_sha256=key_sha256(key), role=role, region=region, name="portal",  # type: ignore[arg-type]
        created_at=CREATED, revoked_at=CREATED + timedelta(days=1) if revoked else None,
    ).model_dump_json().encode()


def ring_with(*records: bytes) -> KeyRing:
    ring = KeyRing(KafkaAccess("unused:9092"))
    for raw in records:
        ring.apply(raw)
    ring.ready.set()
    return ring


def test_a_new_key_names_its_id_and_only_its_hash_is_kept():
    key_id, key = new_key()
    assert key.startswith(f"est_{key_id}_") and len(key) > 40
    assert key_id_of(key) == key_id
    assert key_sha256("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert key_sha256(key) != key_sha256(new_key()[1])
    assert key not in record(key).decode()


@pytest.mark.parametrize("text", ["", "est_", "est__secret", "est_abc", "abc_def_ghi", "Bearer est_a_b"])
def test_text_that_is_no_key_has_no_key_id(text):
    assert key_id_of(text) is None


def test_the_ring_knows_a_key_by_its_hash_with_the_records_role_and_region():
    _, key = new_key()
    ring = ring_with(record(key))
    assert ring.check(key) == Principal("organiser", region="twente", subject=f"key:{key_id_of(key)}")


def test_the_ring_refuses_a_wrong_secret_an_unknown_id_and_a_non_key():
    _, key = new_key()
    ring = ring_with(record(key))
    assert ring.check(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert ring.check(new_key()[1]) is None
    assert ring.check("not-a-key") is None


def test_a_revocation_record_takes_the_key_away_and_other_keys_stay():
    _, key = new_key()
    _, other = new_key()
    ring = ring_with(record(key), record(other, role="national", region=None))
    assert ring.check(key) is not None
    ring.apply(record(key, revoked=True))
    assert ring.check(key) is None
    assert ring.check(other) == Principal("national", subject=f"key:{key_id_of(other)}")


def test_tombstones_and_unreadable_records_are_ignored():
    _, key = new_key()
    ring = ring_with(record(key))
    for raw in (None, b"", b"{not json", json.dumps({"key_id": key_id_of(key), "role": "host"}).encode()):
        ring.apply(raw)
    assert ring.check(key) is not None
    assert len(ring.records) == 1


async def test_a_key_is_refused_while_the_ring_has_not_read_its_topic():
    _, key = new_key()
    ring = KeyRing(KafkaAccess("unused:9092"))
    ring.apply(record(key))  # known, but the ring is not ready: the topic might still revoke it
    auth = Authenticator(ring, ready_timeout=0.05)
    assert await auth.principal(key) is None
    ring.ready.set()
    assert await auth.principal(key) is not None


# --- participant links ---------------------------------------------------------------------------
LINKS = Links("unit-test-secret")
DAY = 24 * 3600


def test_a_link_names_its_signup_edition_and_purpose():
    token = LINKS.make("signup", "s-1", "twente-2027")
    claims = LINKS.read(token, "signup", DAY)
    assert (claims.purpose, claims.signup_id, claims.edition_id) == ("signup", "s-1", "twente-2027")
    assert Links.principal(claims) == Principal("participant", signup_id="s-1", edition_id="twente-2027",
                                                subject="link:s-1")


def test_an_old_link_is_expired():
    token = LINKS.make("signup", "s-1", "twente-2027", issued_at=time.time() - DAY - 60)
    with pytest.raises(LinkExpired):
        LINKS.read(token, "signup", DAY)
    assert LINKS.read(token, "signup", 2 * DAY).signup_id == "s-1"


def test_a_tampered_link_is_invalid():
    token = LINKS.make("signup", "s-1", "twente-2027")
    payload, stamp, signature = token.split(".")
    forged = LINKS.make("signup", "s-2", "twente-2027").split(".")[0]
    for bad in (f"{forged}.{stamp}.{signature}", token[:-2] + ("xx" if not token.endswith("xx") else "yy"), "garbage", ""):
        with pytest.raises(LinkInvalid):
            LINKS.read(bad, "signup", DAY)


def test_a_link_is_good_for_its_own_purpose_and_secret_only():
    token = LINKS.make("seat_offer_accept", "s-1", "twente-2027")
    with pytest.raises(LinkInvalid):
        LINKS.read(token, "seat_offer_decline", DAY)
    with pytest.raises(LinkInvalid):
        Links("another-secret").read(token, "seat_offer_accept", DAY)


# --- OIDC: a key pair and a JWKS served here -----------------------------------------------------
class IdentityProvider:
    """A portal's identity provider for tests: an RSA key pair, its JWKS on http://127.0.0.1:<port>/jwks,
    and tokens signed with it. Use as a context manager (the server runs in a thread)."""

    issuer = "https://idp.test"
    audience = "estafette"

    def __init__(self) -> None:
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "test-key-1"
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private_key.public_key()))
        body = json.dumps({"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]}).encode()

        class Jwks(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                self.send_response(200 if self.path == "/jwks" else 404)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(body if self.path == "/jwks" else b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Jwks)
        self.jwks_url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks"

    def __enter__(self) -> IdentityProvider:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def config(self, **changes: Any) -> OidcConfig:
        return OidcConfig(**{"jwks_url": self.jwks_url, "issuer": self.issuer, "audience": self.audience, **changes})

    def token(self, role: str | None = "organiser", region: str | None = "twente", *, key: Any = None,
              kid: str | None = None, expires_in: float = 300, **claims: Any) -> str:
        """A signed token; `key`/`kid` to sign with another key, claims to override iss, aud, ... (None
        leaves a claim out)."""
        now = int(time.time())
        body: dict[str, Any] = {"iss": self.issuer, "aud": self.audience, "sub": "portal-user-1",
                                "iat": now, "exp": now + int(expires_in)}
        if role is not None:
            body["estafette_role"] = role
        if region is not None:
            body["estafette_region"] = region
        body.update(claims)
        body = {name: value for name, value in body.items() if value is not None}  # None: leave the claim out
        return jwt.encode(body, key or self.private_key, algorithm="RS256", headers={"kid": kid or self.kid})


@pytest.fixture(scope="module")
def idp() -> Iterator[IdentityProvider]:
    with IdentityProvider() as provider:
        yield provider


@pytest.fixture(scope="module")
def oidc(idp) -> Oidc:
    return Oidc(idp.config())


@pytest.mark.parametrize(("role", "region", "expected"), [
    ("organiser", "twente", Principal("organiser", region="twente", subject="oidc:portal-user-1")),
    ("national", None, Principal("national", subject="oidc:portal-user-1")),
    ("national", "twente", Principal("national", subject="oidc:portal-user-1")),  # a national sees every region
    ("admin", None, Principal("admin", subject="oidc:portal-user-1")),
])
async def test_a_token_of_the_identity_provider_maps_to_role_and_region(idp, oidc, role, region, expected):
    assert await oidc.check(idp.token(role, region)) == expected


def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


REFUSED = {
    "wrong issuer": lambda idp: idp.token(iss="https://evil.test"),
    "wrong audience": lambda idp: idp.token(aud="another-api"),
    "expired": lambda idp: idp.token(expires_in=-120),
    "bad signature (other key, same kid)": lambda idp: idp.token(key=other_key()),
    "unknown kid": lambda idp: idp.token(key=other_key(), kid="not-in-jwks"),
    "tampered payload": lambda idp: _swap_payload(idp.token(), idp.token(role="admin", region=None)),
    "missing role claim": lambda idp: idp.token(role=None),
    "unknown role": lambda idp: idp.token(role="participant"),
    "organiser without region": lambda idp: idp.token(region=None),
    "organiser with an empty region": lambda idp: idp.token(region=""),
    "no exp": lambda idp: idp.token(exp=None),
    "unsigned (alg none)": lambda idp: jwt.encode(
        {"iss": idp.issuer, "aud": idp.audience, "exp": int(time.time()) + 300, "estafette_role": "admin"},
        None, algorithm="none", headers={"kid": idp.kid}),
    "not a JWT": lambda idp: "a.b.c",
}


def _swap_payload(token: str, other: str) -> str:
    head, _, signature = token.split(".")
    return f"{head}.{other.split('.')[1]}.{signature}"


@pytest.mark.parametrize("case", list(REFUSED))
async def test_a_token_that_fails_a_check_is_refused(idp, oidc, case):
    assert await oidc.check(REFUSED[case](idp)) is None


async def test_the_role_and_region_claims_are_configurable(idp):
    oidc = Oidc(idp.config(role_claim="https://portal/role", region_claim="https://portal/region"))
    token = idp.token(role=None, region=None, **{"https://portal/role": "organiser", "https://portal/region": "groningen"})
    assert await oidc.check(token) == Principal("organiser", region="groningen", subject="oidc:portal-user-1")
    assert await oidc.check(idp.token()) is None  # the default claim names mean nothing here


async def test_an_unreachable_jwks_refuses_the_token_instead_of_failing(idp):
    oidc = Oidc(idp.config(jwks_url="http://127.0.0.1:9/jwks"))
    assert await oidc.check(idp.token()) is None


# --- policies on a FastAPI app -------------------------------------------------------------------
def app_with(ring: KeyRing, oidc: Oidc | None = None) -> FastAPI:
    api = create_http_api("policies")
    api.state.auth = Authenticator(ring, oidc)

    def who(p: Principal) -> dict[str, Any]:
        return {"role": p.role, "region": p.region}

    @api.get("/public")
    async def public(principal: Public) -> dict[str, Any]:
        return who(principal)

    @api.get("/organiser")
    async def organiser(principal: Organiser) -> dict[str, Any]:
        return who(principal)

    @api.get("/figures")
    async def figures(principal: Figures) -> dict[str, Any]:
        return who(principal)

    @api.get("/admin")
    async def admin(principal: Admin) -> dict[str, Any]:
        return who(principal)

    @api.get("/links/{token}", dependencies=[link_policy()])
    async def link(token: str) -> dict[str, Any]:
        return {"token_length": len(token)}

    return api


@pytest.fixture(scope="module")
def keys() -> dict[str, str]:
    return {name: new_key()[1] for name in ("organiser", "national", "admin", "revoked")}


@pytest.fixture
def client(keys, idp, oidc) -> httpx.AsyncClient:
    ring = ring_with(
        record(keys["organiser"]), record(keys["national"], "national", None), record(keys["admin"], "admin", None),
        record(keys["revoked"]), record(keys["revoked"], revoked=True),
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app_with(ring, oidc)), base_url="http://t")


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


async def test_without_credentials_a_protected_route_is_401_with_www_authenticate(client):
    for path in ("/organiser", "/figures", "/admin"):
        response = await client.get(path)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json() == {"error": "unauthenticated", "field": None, "details": [],
                                   "message": "this needs an API key or token: Authorization: Bearer <key>"}


async def test_anonymous_callers_are_allowed_on_public_routes_and_links(client):
    assert (await client.get("/public")).json() == {"role": "anonymous", "region": None}
    assert (await client.get("/links/abc")).json() == {"token_length": 3}
    # another scheme than Bearer is no credential at all
    assert (await client.get("/public", headers={"Authorization": "Basic dTpw"})).json()["role"] == "anonymous"
    assert (await client.get("/organiser", headers={"Authorization": "Basic dTpw"})).status_code == 401


@pytest.mark.parametrize("credential", ["revoked", "unknown", "garbage", "expired token"])
async def test_credentials_that_are_given_must_be_valid_even_on_public_routes(client, keys, idp, credential):
    value = {"unknown": new_key()[1], "garbage": "x" * 40, "expired token": idp.token(expires_in=-60)}.get(
        credential) or keys[credential]
    for path in ("/public", "/organiser", "/figures"):
        response = await client.get(path, headers=bearer(value))
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["error"] == "invalid_credentials"


# (path, role) → status, written out by hand
EXPECTED = {
    ("/organiser", "organiser"): 200, ("/organiser", "national"): 403, ("/organiser", "admin"): 200,
    ("/figures", "organiser"): 200, ("/figures", "national"): 200, ("/figures", "admin"): 200,
    ("/admin", "organiser"): 403, ("/admin", "national"): 403, ("/admin", "admin"): 200,
    ("/public", "organiser"): 200, ("/public", "national"): 200, ("/public", "admin"): 200,
}


@pytest.mark.parametrize(("path", "role"), list(EXPECTED))
async def test_each_policy_lets_its_roles_in_and_answers_403_to_the_others(client, keys, path, role):
    response = await client.get(path, headers=bearer(keys[role]))
    assert response.status_code == EXPECTED[path, role]
    if response.status_code == 403:
        assert response.json()["error"] == "forbidden"
    else:
        assert response.json() == {"role": role, "region": "twente" if role == "organiser" else None}


async def test_an_oidc_token_passes_the_same_policies(client, idp):
    response = await client.get("/organiser", headers=bearer(idp.token("organiser", "groningen")))
    assert response.json() == {"role": "organiser", "region": "groningen"}
    assert (await client.get("/organiser", headers=bearer(idp.token("national", None)))).status_code == 403
    assert (await client.get("/organiser", headers=bearer(idp.token(aud="x")))).status_code == 401


async def test_without_oidc_configured_a_token_is_401(keys, idp):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app_with(ring_with())), base_url="http://t") as c:
        assert (await c.get("/organiser", headers=bearer(idp.token()))).status_code == 401


def test_openapi_names_each_routes_policy_and_declares_the_bearer_scheme():
    doc = app_with(ring_with()).openapi()
    policies = {path: ops["get"].get("x-policy") for path, ops in doc["paths"].items()}
    assert policies == {"/public": "public", "/organiser": "organiser", "/figures": "figures", "/admin": "admin",
                        "/links/{token}": "link"}
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer",
        "description": "An API key (`estafette keys create`) or an OIDC access token of a configured identity provider.",
    }
    assert doc["paths"]["/organiser"]["get"]["security"] == [{"bearer": []}]



def test_a_link_bound_to_one_thing_carries_it_into_its_principal() -> None:
    links = Links("secret")
    claims = links.read(links.make("seat_offer_accept", "s-1", "e-1", ref="o-1"), "seat_offer_accept", 60)
    principal = Links.principal(claims)
    assert (claims.ref, principal.link_ref) == ("o-1", "o-1")
    assert principal.reaches("o-1") and not principal.reaches("o-2")
    unbound = Links.principal(links.read(links.make("signup", "s-1", "e-1"), "signup", 60))
    assert unbound.link_ref is None and unbound.reaches("anything")


def test_lists_are_limited_by_the_same_rule_as_sees() -> None:
    organiser = Principal("organiser", region="twente")
    assert organiser.region_filter == "twente" and organiser.sees("twente") and not organiser.sees("groningen")
    for everywhere in (Principal("admin"), Principal("national")):
        assert everywhere.region_filter is None and everywhere.sees("groningen")
    for nowhere in (Principal("anonymous"), Principal("participant", signup_id="s-1", edition_id="e-1")):
        assert nowhere.region_filter == "" and not nowhere.sees("")
