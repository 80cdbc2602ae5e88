"""Webhooks for portals on the running notifications service (real Kafka, PostgreSQL, API keys):
a local HTTP server (stdlib, in threads) plays three portals' endpoints.

- twente's `hang` endpoint blocks every request until the test releases it;
- twente's `flaky` endpoint answers 500 twice, then 200;
- groningen's `ok` endpoint answers 200.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from schemas import EditionClosed, EditionOpened, ParticipantRegistered
from tests.support import Infra, ServiceProcess, eventually, services

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

RUN = uuid.uuid4().hex[:6]


class Portal:
    """What the endpoints received: (path, headers, body) in order."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], str]] = []
        self.release = threading.Event()
        self.lock = threading.Lock()

    def to(self, path: str) -> list[tuple[str, dict[str, str], str]]:
        with self.lock:
            return [r for r in self.received if r[0] == path]


@pytest.fixture(scope="module")
def portal() -> Iterator[tuple[Portal, str]]:
    seen = Portal()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
            with seen.lock:
                seen.received.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                flaky_calls = sum(1 for r in seen.received if r[0] == "/flaky")
            if self.path == "/hang":
                seen.release.wait(120)
                status = 200
            elif self.path == "/flaky":
                status = 500 if flaky_calls <= 2 else 200
            else:
                status = 200
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield seen, f"http://127.0.0.1:{server.server_address[1]}"
    seen.release.set()
    server.shutdown()


@pytest.fixture(scope="module")
def callers(infra: Infra) -> dict[str, dict[str, str]]:
    return infra.callers()


@pytest.fixture(scope="module")
def notifications(infra: Infra) -> Iterator[ServiceProcess]:
    env = {
        "NOTIFICATIONS_WEBHOOK_RETRY_BASE_SECONDS": "0.2", "NOTIFICATIONS_WEBHOOK_RETRY_MAX_SECONDS": "1",
        "NOTIFICATIONS_WEBHOOK_TIMEOUT_SECONDS": "60", "NOTIFICATIONS_WEBHOOK_POLL_SECONDS": "0.1",
        "NOTIFICATIONS_WEBHOOK_MAX_ATTEMPTS": "5", "NOTIFICATIONS_WEBHOOK_PER_ENDPOINT": "2",
    }
    with services(infra, "notifications", extra_env=env) as running:
        yield running["notifications"]


def call(method: str, service: ServiceProcess, path: str, headers: dict[str, str], **kw: Any) -> httpx.Response:
    return httpx.request(method, f"{service.url}{path}", headers=headers, timeout=10, **kw)


def opened(region: str, edition: str) -> EditionOpened:
    return EditionOpened(region=region, edition=edition, name="Webhooks", signup_deadline=datetime(2099, 1, 1, tzinfo=UTC),
                         starts_on=date(2099, 2, 1), ends_on=date(2099, 2, 5))


def test_signed_retried_deliveries_and_a_hanging_endpoint_delays_no_other_region(
    infra: Infra, notifications: ServiceProcess, callers: dict[str, dict[str, str]], portal: tuple[Portal, str]
) -> None:
    seen, base = portal
    org_a, org_b = callers["org A"], callers["org B"]

    def register(headers: dict[str, str], path: str, types: list[str]) -> dict[str, Any]:
        made = call("POST", notifications, "/webhooks", headers,
                    json={"url": base + path, "event_types": types, "description": path})
        assert made.status_code == 201, made.text
        return made.json()

    hang = register(org_a, "/hang", ["EditionOpened"])
    flaky = register(org_a, "/flaky", ["EditionClosed"])
    ok = register(org_b, "/ok", ["EditionOpened", "EditionClosed"])
    assert flaky["secret"].startswith("whsec_") and "secret" not in call("GET", notifications, "/webhooks", org_a).json()[0]
    # Scoping: region B sees only its endpoint; another region's is a 404; the national role 403.
    # (other tests of the session may have registered endpoints in these regions too)
    seen_by_b = {w["id"] for w in call("GET", notifications, "/webhooks", org_b).json()}
    assert ok["id"] in seen_by_b and not seen_by_b & {hang["id"], flaky["id"]}
    assert call("GET", notifications, f"/webhooks/{hang['id']}/deliveries", org_b).status_code == 404
    assert call("GET", notifications, "/webhooks", callers["national"]).status_code == 403
    assert call("POST", notifications, "/webhooks", org_a, json={"url": base, "event_types": ["ParticipantRegistered"]}).status_code == 422

    # twente: four editions for the hanging endpoint (it blocks 2 at a time), one closing for the flaky one,
    # and a participant's contact details (never delivered); then groningen's edition.
    infra.produce([*(opened("twente", f"wh-a{i}-{RUN}") for i in range(4)), EditionClosed(region="twente", edition=f"wh-a0-{RUN}"),
                   ParticipantRegistered(region="twente", edition=f"wh-a0-{RUN}", signup_id=f"s-{RUN}", name="Anna", email="anna@example.org", language="nl")])
    eventually(lambda: len(seen.to("/hang")) == 2, timeout=30)
    infra.produce([opened("groningen", f"wh-b-{RUN}")])

    # Region B's delivery arrives while twente's endpoint still hangs (nothing released it yet).
    eventually(lambda: seen.to("/ok"), timeout=30)
    assert not seen.release.is_set() and len(seen.to("/hang")) == 2  # the per-endpoint limit holds
    [(_, headers, body)] = seen.to("/ok")
    assert Webhook(ok["secret"]).verify(body, headers)["edition"] == f"wh-b-{RUN}"

    # The flaky endpoint: two 500s, then one 200, then nothing more; each signed, one webhook-id.
    def delivered() -> dict[str, Any] | None:
        found = call("GET", notifications, f"/webhooks/{flaky['id']}/deliveries", org_a).json()
        return found[0] if found and found[0]["status"] == "delivered" else None

    delivery = eventually(delivered, timeout=60)
    assert [(a["status"], a["response_code"]) for a in delivery["log"]] == [("failed", 500), ("failed", 500), ("succeeded", 200)]
    assert delivery["attempts"] == 3 and delivery["event_type"] == "EditionClosed"
    calls = seen.to("/flaky")
    assert len(calls) == 3 and {h["webhook-id"] for _, h, _ in calls} == {delivery["id"]}
    for _, h, b in calls:
        assert Webhook(flaky["secret"]).verify(b, h)["event_type"] == "EditionClosed"
    # No personal data went anywhere.
    assert all("anna@example.org" not in b for _, _, b in seen.received)

    # Redelivered by hand: the same webhook-id once more.
    again = call("POST", notifications, f"/webhooks/{flaky['id']}/deliveries/{delivery['id']}/redeliver", org_a)
    assert again.status_code == 202 and again.json()["status"] == "pending"
    eventually(lambda: (d := delivered()) and d["attempts"] == 4, timeout=30)
    assert [h["webhook-id"] for _, h, _ in seen.to("/flaky")] == [delivery["id"]] * 4

    # Released: the hanging endpoint gets each of its four deliveries exactly once.
    seen.release.set()
    eventually(lambda: all(d["status"] == "delivered" for d in call(
        "GET", notifications, f"/webhooks/{hang['id']}/deliveries", org_a).json()) and len(seen.to("/hang")) == 4, timeout=60)
    assert len({h["webhook-id"] for _, h, _ in seen.to("/hang")}) == 4
    assert call("DELETE", notifications, f"/webhooks/{hang['id']}", org_b).status_code == 404
    assert call("DELETE", notifications, f"/webhooks/{hang['id']}", org_a).status_code == 204
    left = {w["id"] for w in call("GET", notifications, "/webhooks", org_a).json()}
    assert flaky["id"] in left and hang["id"] not in left
