"""Credentials on the running services (real Kafka and PostgreSQL, the four services as processes).

1. An API key made with the real `estafette keys create` works on a protected route of every service;
   after `estafette keys revoke ID` every service refuses it (401) within 5 s: the revocation travels
   on the compacted key topic that each service's KeyRing reads. The measured times are printed.
2. OIDC: tokens signed by a key pair made in the test, whose JWKS a local HTTP server serves, are
   accepted by every service with the mapped role and region (an organiser of region A sees A's
   edition and gets 404 for B's; the national role gets 403 on personal data and sees B's figures);
   a wrong issuer, audience, expiry or signature is 401 everywhere.

One harmless protected route per service is the probe (expected statuses written out by hand):
registration `POST /editions/{unknown}/close` (404 once the key is accepted: there is no such
edition), matching `GET /editions/{A}/match-runs`, notifications `GET /notifications?edition={A}`,
reporting `GET /reports/regions`.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from estafette.runtime.auth import key_id_of, key_sha256
from estafette.tools import keys
from tests.support import SERVICES, Infra, ServiceProcess, eventually, region, services
from tests.unit.runtime.test_auth import IdentityProvider, other_key

ESTAFETTE = Path(sys.executable).with_name("estafette")
RUN = uuid.uuid4().hex[:6]
REGION_A, REGION_B = f"twente-{RUN}", f"groningen-{RUN}"
EDITION_A, EDITION_B = f"a-{RUN}", f"b-{RUN}"
NO_EDITION = f"nowhere-{RUN}"
REVOCATION_LIMIT_S = 5.0


def probe(service: ServiceProcess, headers: dict[str, str]) -> int:
    """The status of the service's probe route for a caller with `headers`."""
    name, url = service.service, service.url
    if name == "registration":
        return httpx.post(f"{url}/editions/{NO_EDITION}/close", headers=headers, timeout=10).status_code
    path = {
        "matching": f"/editions/{EDITION_A}/match-runs",
        "notifications": f"/notifications?edition={EDITION_A}",
        "reporting": "/reports/regions",
    }[name]
    return httpx.get(url + path, headers=headers, timeout=10).status_code


#: What an organiser of region A gets from each probe.
ACCEPTED = {"registration": 404, "matching": 200, "notifications": 200, "reporting": 200}


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def cli(*args: str, infra: Infra) -> subprocess.CompletedProcess[str]:
    # the operator's principal of the test broker, as an operator's environment would give it
    env = {**os.environ, "ESTAFETTE_KAFKA_BOOTSTRAP": infra.kafka_bootstrap, "ESTAFETTE_KAFKA_USERNAME": infra.kafka.username,
           "ESTAFETTE_KAFKA_PASSWORD": infra.kafka.password, "COLUMNS": "200"}
    return subprocess.run([str(ESTAFETTE), "keys", *args], env=env, capture_output=True, text=True, timeout=60)


def edition(edition_id: str, region: str) -> dict[str, object]:
    today = datetime.now(UTC).date()
    return {
        "id": edition_id, "region": region, "name": f"Week van de Uitwisseling {region}",
        "signup_deadline": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        "starts_on": str(today + timedelta(days=60)), "ends_on": str(today + timedelta(days=64)),
        "languages": ["nl", "en"],
    }


@pytest.fixture(scope="module")
def idp() -> Iterator[IdentityProvider]:
    with IdentityProvider() as provider:
        yield provider


@pytest.fixture(scope="module")
def running(infra: Infra, idp: IdentityProvider) -> Iterator[dict[str, ServiceProcess]]:
    oidc = {"ESTAFETTE_OIDC_JWKS_URL": idp.jwks_url, "ESTAFETTE_OIDC_ISSUER": idp.issuer,
            "ESTAFETTE_OIDC_AUDIENCE": idp.audience}
    infra.add_regions(region(REGION_A), region(REGION_B))  # this run's own regions, by configuration
    admin = bearer(infra.key("admin"))  # before the services start: each reads the keys to the end first
    with services(infra, *SERVICES, extra_env=oidc) as procs:
        registration = procs["registration"].url
        for edition_id, region_id in ((EDITION_A, REGION_A), (EDITION_B, REGION_B)):
            response = httpx.post(f"{registration}/editions", json=edition(edition_id, region_id), headers=admin, timeout=10)
            assert response.status_code == 201, response.text
        # matching and reporting know the editions (and their regions) once they consumed them
        for url, path in ((procs["matching"].url, "/editions/{}"), (procs["reporting"].url, "/reports/editions/{}")):
            for edition_id in (EDITION_A, EDITION_B):
                eventually(lambda: httpx.get(url + path.format(edition_id), headers=admin, timeout=10).status_code == 200)
        yield procs


def test_every_probe_route_is_protected(running):
    assert {name: probe(s, {}) for name, s in running.items()} == dict.fromkeys(SERVICES, 401)


def test_a_key_from_the_cli_works_everywhere_until_it_is_revoked(running, infra, capsys):
    made = cli("create", "--role", "organiser", "--region", REGION_A, "--name", f"portal {RUN}", "--quiet", infra=infra)
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    key_id = key_id_of(key)
    assert key_id and made.stdout == key + "\n"  # --quiet: the key and nothing else

    listed = cli("list", infra=infra)
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if key_id in line)
    assert "organiser" in row and REGION_A in row and f"portal {RUN}" in row
    assert key.rsplit("_", 1)[1] not in listed.stdout and key_sha256(key) not in listed.stdout  # never the key or hash

    assert {name: probe(s, bearer(key)) for name, s in running.items()} == ACCEPTED

    def first_refusal(service: ServiceProcess) -> float | None:
        """The wall-clock time of this service's first 401 for the key (one poller per service, polling
        while the revoke command runs)."""
        while time.monotonic() - started < 3 * REVOCATION_LIMIT_S:
            if probe(service, bearer(key)) == 401:
                return time.time()
            time.sleep(0.1)  # gently: the CLI and four services share the machine
        return None

    with ThreadPoolExecutor(len(running)) as pool:
        started, typed = time.monotonic(), time.time()  # when the operator typed `estafette keys revoke`
        pollers = {name: pool.submit(first_refusal, service) for name, service in running.items()}
        revoked = cli("revoke", key_id, infra=infra)
        returned = time.time()
        refused = {name: poller.result() for name, poller in pollers.items()}
    assert revoked.returncode == 0, revoked.stderr
    assert all(refused.values()), f"the revoked key is still accepted: {refused}"
    # the record's revoked_at is stamped by the command just before it publishes the record
    revoked_at = asyncio.run(keys.records(infra.kafka))[key_id].revoked_at
    assert revoked_at is not None
    after_publication = {name: round(at - revoked_at.timestamp(), 3) for name, at in refused.items()}
    after_typing = {name: round(at - typed, 3) for name, at in refused.items()}
    with capsys.disabled():
        print(f"\nrevocation: the command ran {returned - typed:.2f} s (published its record after "
              f"{revoked_at.timestamp() - typed:.2f} s); each service's first 401, seconds after the record was "
              f"stamped: {after_publication}; after the command was typed: {after_typing}")
    assert all(seconds < REVOCATION_LIMIT_S for seconds in after_publication.values()), after_publication
    assert all(at <= returned + REVOCATION_LIMIT_S for at in refused.values()), after_typing

    relisted = cli("list", infra=infra)
    row = next(line for line in relisted.stdout.splitlines() if key_id in line)
    assert row.count(datetime.now().astimezone().strftime("%Y-%m-%d")) == 2  # created and revoked (today)
    unknown = cli("revoke", "nosuchkey", infra=infra)
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == "no key with id 'nosuchkey' (see: estafette keys list)"


def test_an_organiser_key_needs_a_region(infra):
    refused = cli("create", "--role", "organiser", infra=infra)
    assert refused.returncode == 2
    assert refused.stderr.strip() == "an organiser key needs --region (the region it may act in)"


# --- OIDC ----------------------------------------------------------------------------------------
def status(method: str, url: str, headers: dict[str, str], json: object = None) -> int:
    return httpx.request(method, url, headers=headers, json=json, timeout=10).status_code


def offer(n: int) -> dict[str, object]:
    return {"host_org": "bakker-bart", "title": f"Een dag in de bakkerij {n}",
            "date": str(datetime.now(UTC).date() + timedelta(days=61)), "capacity": 4}


def test_an_oidc_organiser_acts_in_their_own_region_only(running, idp):
    token = bearer(idp.token("organiser", REGION_A))
    assert {name: probe(s, token) for name, s in running.items()} == ACCEPTED
    registration, matching = running["registration"].url, running["matching"].url
    notifications, reporting = running["notifications"].url, running["reporting"].url
    assert status("POST", f"{registration}/editions/{EDITION_A}/offers", token, offer(1)) == 201
    assert status("POST", f"{registration}/editions/{EDITION_B}/offers", token, offer(2)) == 404
    assert status("POST", f"{registration}/editions", token, edition(f"c-{RUN}", REGION_B)) == 403
    assert status("GET", f"{matching}/editions/{EDITION_A}/match-runs", token) == 200
    assert status("GET", f"{matching}/editions/{EDITION_B}/match-runs", token) == 404
    assert status("GET", f"{notifications}/notifications/{uuid.uuid4()}", token) == 404
    other_region = httpx.get(f"{notifications}/notifications?edition={EDITION_B}", headers=token, timeout=10)
    assert other_region.status_code == 200 and other_region.json()["items"] == []
    assert status("GET", f"{reporting}/reports/editions/{EDITION_A}", token) == 200
    assert status("GET", f"{reporting}/reports/editions/{EDITION_B}", token) == 404
    regions = httpx.get(f"{reporting}/reports/regions", headers=token, timeout=10).json()["regions"]
    assert [r["region"] for r in regions] == [REGION_A]


def test_an_oidc_national_token_sees_figures_but_no_personal_data(running, idp):
    token = bearer(idp.token("national", None))
    registration, matching = running["registration"].url, running["matching"].url
    notifications, reporting = running["notifications"].url, running["reporting"].url
    assert status("POST", f"{registration}/editions/{EDITION_A}/offers", token, offer(3)) == 403
    assert status("GET", f"{matching}/editions/{EDITION_A}/match-runs", token) == 403
    assert status("GET", f"{notifications}/notifications", token) == 403
    assert status("GET", f"{reporting}/reports/editions/{EDITION_B}", token) == 200
    regions = httpx.get(f"{reporting}/reports/regions", headers=token, timeout=10).json()["regions"]
    assert {REGION_A, REGION_B} <= {r["region"] for r in regions}


BAD_TOKENS = {
    "wrong issuer": lambda idp: idp.token(iss="https://evil.test"),
    "wrong audience": lambda idp: idp.token(aud="another-api"),
    "expired": lambda idp: idp.token(expires_in=-120),
    "bad signature": lambda idp: idp.token(key=other_key()),
}


@pytest.mark.parametrize("case", list(BAD_TOKENS))
def test_a_token_failing_a_check_is_401_everywhere(running, idp, case):
    token = bearer(BAD_TOKENS[case](idp))
    assert {name: probe(s, token) for name, s in running.items()} == dict.fromkeys(SERVICES, 401)
