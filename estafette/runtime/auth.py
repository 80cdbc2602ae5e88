"""Authentication and policies: API keys, OIDC bearer tokens, participant links, FastAPI dependencies.

- **API keys** (`Authorization: Bearer est_<key_id>_<secret>`): the `KeyRing` reads the compacted
  topic `estafette.api-keys.v1` (schemas/access.py) from the beginning, without a consumer group, and
  keeps every key's record in memory: a key is checked against its SHA-256, and a revocation takes
  effect as soon as its record is read (the ring polls every 0.5 s).
- **OIDC tokens** (`Authorization: Bearer <JWT>`): signature checked against the configured JWKS,
  issuer, audience and expiry checked; the role and region come from configured claims.
- **Participant links**: signed, expiring, purpose-bound tokens (itsdangerous) in a link's path; see
  `Links`. A link is a capability for one sign-up and one purpose, never a login.
- **Policies**: every route declares one as a dependency (`principal: Organiser`, `_: Public`, ...);
  the policy's name is written into the OpenAPI operation as `x-policy`, and the security scheme is
  declared, so a test can check that no route is left without one.

Only ids are logged, never a key, a token or a link.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
import structlog
from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from pydantic import ValidationError

from estafette.runtime.access import ANONYMOUS, Principal, Role
from estafette.runtime.clock import Now
from estafette.runtime.errors import Forbidden, Unauthenticated
from estafette.runtime.compacted import CompactedReader
from estafette.runtime.kafka import KafkaAccess
from schemas.access import ApiKeyRecord
from schemas.topics import API_KEYS

log = structlog.get_logger(__name__)

KEY_PREFIX = "est_"
_KEY_ROLES = ("admin", "organiser", "national")


# --- API keys ------------------------------------------------------------------------------------
def new_key() -> tuple[str, str]:
    """(key_id, key): the key is shown once; only `key_sha256(key)` is kept."""
    key_id = secrets.token_hex(6)
    return key_id, f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def key_sha256(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_id_of(key: str) -> str | None:
    if not key.startswith(KEY_PREFIX):
        return None
    key_id, sep, _ = key.removeprefix(KEY_PREFIX).partition("_")
    return key_id if sep and key_id else None


class KeyRing:
    """Every API key's latest record, read from the compacted key topic and kept current."""

    def __init__(self, kafka: KafkaAccess, topic: str = API_KEYS.name, poll_ms: int = 500) -> None:
        self.records: dict[str, ApiKeyRecord] = {}
        self.reader = CompactedReader(kafka, topic, lambda _key, value: self.apply(value), what="api keys", poll_ms=poll_ms)
        #: Set once the topic has been read up to its end at start-up.
        self.ready = self.reader.ready
        self.run = self.reader.run

    def apply(self, raw: bytes | None) -> None:
        """One record from the topic (a tombstone or an unreadable value is ignored)."""
        if not raw:
            return
        try:
            record = ApiKeyRecord.model_validate_json(raw)
        except ValidationError:
            log.warning("unreadable api key record ignored")
            return
        self.records[record.key_id] = record

    def check(self, key: str) -> Principal | None:
        """The key's principal, or None when it is unknown, wrong or revoked."""
        key_id = key_id_of(key)
        record = self.records.get(key_id) if key_id else None
        if record is None or record.revoked or not hmac.compare_digest(record.key_sha256, key_sha256(key)):
            return None
        return Principal(record.role, region=record.region, subject=f"key:{record.key_id}")


# --- OIDC ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OidcConfig:
    jwks_url: str
    issuer: str
    audience: str
    role_claim: str = "estafette_role"
    region_claim: str = "estafette_region"


class Oidc:
    """Checks bearer tokens of a portal's identity provider against its JWKS."""

    def __init__(self, config: OidcConfig) -> None:
        self.config = config
        self._jwks = jwt.PyJWKClient(config.jwks_url, cache_keys=True, lifespan=300, timeout=5)

    async def check(self, token: str) -> Principal | None:
        try:
            signing_key = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
            claims = jwt.decode(
                token, signing_key.key, algorithms=["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"],
                audience=self.config.audience, issuer=self.config.issuer, options={"require": ["exp", "iss", "aud"]},
            )
        except (jwt.PyJWTError, OSError) as exc:
            log.info("bearer token refused", reason=type(exc).__name__)
            return None
        role, region = claims.get(self.config.role_claim), claims.get(self.config.region_claim)
        if role not in _KEY_ROLES or (role == "organiser" and not (isinstance(region, str) and region)):
            log.info("bearer token refused", reason="role or region claim missing or unknown")
            return None
        return Principal(role, region=region if role == "organiser" else None, subject=f"oidc:{claims.get('sub', '')}")


class Authenticator:
    """Turns an `Authorization: Bearer` credential into a Principal (or None)."""

    def __init__(self, keys: KeyRing, oidc: Oidc | None = None, ready_timeout: float = 10.0) -> None:
        self.keys = keys
        self.oidc = oidc
        self._ready_timeout = ready_timeout

    async def principal(self, credential: str) -> Principal | None:
        if credential.startswith(KEY_PREFIX):
            if not self.keys.ready.is_set():  # just started: wait until every key is known
                try:
                    await asyncio.wait_for(self.keys.ready.wait(), self._ready_timeout)
                except TimeoutError:
                    return None
            return self.keys.check(credential)
        if self.oidc is not None and credential.count(".") == 2:
            return await self.oidc.check(credential)
        return None


# --- participant links ---------------------------------------------------------------------------
@dataclass(frozen=True)
class LinkClaims:
    purpose: str
    signup_id: str
    edition_id: str
    #: The one thing of the sign-up the link is for, if any (a seat offer's offer id).
    ref: str | None = None


class LinkExpired(Exception):
    pass


class LinkInvalid(Exception):
    pass


class Links:
    """Signed, expiring, purpose-bound participant links: a token is valid for one purpose only. Their
    time (issued, expired) is the platform's clock (runtime/clock.py), so a test clock ages links too."""

    def __init__(self, secret: str, clock: Now | None = None) -> None:
        self._secret = secret
        self._clock = clock
        self._serializers: dict[str, URLSafeTimedSerializer] = {}  # by purpose (one per sign-up otherwise)

    def _serializer(self, purpose: str, issued_at: float | None = None) -> URLSafeTimedSerializer:
        if issued_at is None and (cached := self._serializers.get(purpose)) is not None:
            return cached
        clock = self._clock
        signer: type[TimestampSigner] = TimestampSigner
        if issued_at is not None or clock is not None:

            class Timed(TimestampSigner):  # the clock's time, or `issued_at` for tests of old links
                def get_timestamp(self) -> int:
                    if issued_at is not None:
                        return int(issued_at)
                    assert clock is not None
                    return int(clock.now().timestamp())

            signer = Timed
        serializer = URLSafeTimedSerializer(self._secret, salt=f"estafette-link:{purpose}", signer=signer)
        if issued_at is None:
            self._serializers[purpose] = serializer
        return serializer

    def make(self, purpose: str, signup_id: str, edition_id: str, *, ref: str | None = None,
             issued_at: float | None = None) -> str:
        """A link token for `purpose` (e.g. "signup", "seat_offer_accept"), bound to `ref` when the link
        is for one thing of the sign-up (a seat offer: its offer id); `issued_at` (epoch seconds) only
        for tests that need an old link."""
        data = {"s": signup_id, "e": edition_id} | ({"r": ref} if ref is not None else {})
        return str(self._serializer(purpose, issued_at).dumps(data))

    def read(self, token: str, purpose: str, max_age_seconds: float) -> LinkClaims:
        """The claims of a valid token; LinkExpired or LinkInvalid (tampered, other purpose) otherwise."""
        try:
            data = self._serializer(purpose).loads(token, max_age=max_age_seconds)
        except SignatureExpired:
            raise LinkExpired() from None
        except BadSignature:
            raise LinkInvalid() from None
        if not isinstance(data, dict) or not isinstance(data.get("s"), str) or not isinstance(data.get("e"), str):
            raise LinkInvalid()
        if not isinstance(data.get("r"), str | None):
            raise LinkInvalid()
        return LinkClaims(purpose, data["s"], data["e"], data.get("r"))

    @staticmethod
    def principal(claims: LinkClaims) -> Principal:
        return Principal("participant", signup_id=claims.signup_id, edition_id=claims.edition_id,
                         link_ref=claims.ref, subject=f"link:{claims.signup_id}")


# --- policies (FastAPI dependencies) -------------------------------------------------------------
_bearer = HTTPBearer(
    auto_error=False, scheme_name="bearer",
    description="An API key (`estafette keys create`) or an OIDC access token of a configured identity provider.",
)


def policy(name: str, *roles: Role) -> Any:
    """A dependency that returns the caller's Principal if its role is one of `roles`: 401 without
    valid credentials (unless `anonymous` is allowed: then callers without credentials are rate-limited
    per address, 429), 403 for a role that may not. The name goes into the OpenAPI operation as
    `x-policy`."""

    async def dependency(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]
    ) -> Principal:
        principal = None
        if credentials is not None:
            auth: Authenticator = request.app.state.auth
            principal = await auth.principal(credentials.credentials)
            if principal is None:
                raise Unauthenticated("invalid_credentials", "the API key or token is unknown, revoked or expired")
        if principal is None:
            if "anonymous" in roles:
                # Callers without credentials are limited per address (429); see runtime/ratelimit.py.
                limiter = getattr(request.app.state, "rate_limit", None)  # a RateLimiter
                if limiter is not None:
                    limiter.take(request.client.host if request.client else "unknown")
                return ANONYMOUS
            raise Unauthenticated("unauthenticated", "this needs an API key or token: Authorization: Bearer <key>")
        if principal.role not in roles:
            raise Forbidden("forbidden", f"the {principal.role} role may not do this")
        structlog.contextvars.bind_contextvars(principal=principal.subject or principal.role)
        return principal

    dependency.__policy__ = name  # type: ignore[attr-defined]
    dependency.__name__ = f"policy_{name}"
    return Depends(dependency)


#: Anyone, with or without credentials (credentials, when given, must be valid).
Public = Annotated[Principal, policy("public", "anonymous", "admin", "organiser", "national")]
#: A region's organiser (scoped to their region by the use case) or an admin.
Organiser = Annotated[Principal, policy("organiser", "admin", "organiser")]
#: Figures without personal data: admin, organisers (their region) and the national role.
Figures = Annotated[Principal, policy("figures", "admin", "organiser", "national")]
#: Platform operators only.
Admin = Annotated[Principal, policy("admin", "admin")]


def link_policy() -> Any:
    """For routes whose capability is the link token in their path: marks them `x-policy: link`."""

    async def dependency() -> None:
        return None

    dependency.__policy__ = "link"  # type: ignore[attr-defined]
    return Depends(dependency)


def policy_of(route: Any) -> str | None:
    """The policy a FastAPI route declares (searched through its dependencies), else None."""
    stack = [route.dependant]
    while stack:
        dependant = stack.pop()
        name = getattr(dependant.call, "__policy__", None)
        if name:
            return name
        stack.extend(dependant.dependencies)
    return None

