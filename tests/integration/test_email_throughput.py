"""Sending at the speed of the mail server (issue 13), checked for correctness, not timed: many
messages sent concurrently over reused SMTP connections, each exactly once; after a kill -9 of
notifications in the middle of sending, every message is still delivered and the duplicates (same
Message-ID twice in the sink) are at most the SMTP concurrency."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import date

import asyncpg
import httpx
import pytest

from schemas import MatchAssigned, OfferSummary, ParticipantRegistered
from tests.support import Infra, ServiceProcess, _run, eventually, region

pytestmark = pytest.mark.integration

#: A region of this module's own: its 1,800 messages stay out of other tests' region lists.
REGION = f"ntp-{uuid.uuid4().hex[:6]}"
CONCURRENCY = 8
ENV = {
    "NOTIFICATIONS_SMTP_CONCURRENCY": str(CONCURRENCY),
    "NOTIFICATIONS_SEND_BATCH_SIZE": "25",
    "NOTIFICATIONS_SEND_LEASE_SECONDS": "3",
    "NOTIFICATIONS_SEND_POLL_SECONDS": "0.1",
}
OFFER = OfferSummary(offer_id="o-throughput", host_org="bakkerij-van-dam", title="Een dag in de bakkerij",
                     date=date(2099, 6, 2), location="Marktstraat 1")


@pytest.fixture(scope="module", autouse=True)
def own_region(infra: Infra) -> Iterator[None]:
    """The module's region; afterwards its messages, contacts, visits and steps are removed, so that
    the later tests of the session (lists of 1,000 messages, oldest first) do not meet them."""
    infra.add_regions(region(REGION))
    yield
    _run(_forget_region())


async def _forget_region() -> None:
    conn = await asyncpg.connect(Infra.admin_dsn())
    try:
        for table in ("notifications", "contacts", "visits", "offers"):
            await conn.execute(f"DELETE FROM notifications.{table} WHERE region = $1", REGION)
        await conn.execute("DELETE FROM notifications.scheduled_steps WHERE key LIKE $1", f"%{OFFER.offer_id}")
    finally:
        await conn.close()


@pytest.fixture
def notifications(infra: Infra) -> Iterator[ServiceProcess]:
    proc = ServiceProcess(infra, "notifications", ENV).start()
    try:
        yield proc
    finally:
        proc.stop()


def match_run(infra: Infra, count: int) -> str:
    """`count` participants' contacts, then their assignments (as a match run publishes them), of a
    new edition; the edition id (also in every address: the sink's `?to=` finds them)."""
    edition = f"tp-{uuid.uuid4().hex[:8]}"
    people = [
        ParticipantRegistered(region=REGION, edition=edition, signup_id=f"s-{edition}-{i}", name=f"Deelnemer {i}",
                              email=f"p{i}@{edition}.example.org", language="nl")
        for i in range(count)
    ]
    run_id = uuid.uuid4()
    infra.produce([*people, *(MatchAssigned(region=REGION, edition=edition, signup_id=p.signup_id, run_id=run_id,
                                            rank=1, offer=OFFER) for p in people)])
    return edition


def in_sink(infra: Infra, edition: str) -> list[dict]:
    return httpx.get(f"{infra.mail_api}/api/messages", params={"to": edition}, timeout=60).json()


async def statuses(edition: str) -> dict[str, int]:
    conn = await asyncpg.connect(Infra.admin_dsn())
    try:
        rows = await conn.fetch(
            "SELECT status, attempts, count(*) AS n FROM notifications.notifications WHERE edition = $1"
            " GROUP BY status, attempts", edition,
        )
    finally:
        await conn.close()
    return {f"{r['status']}/{r['attempts']}": r["n"] for r in rows}


async def test_many_messages_are_sent_concurrently_each_exactly_once(infra: Infra, notifications: ServiceProcess) -> None:
    count = 300
    edition = match_run(infra, count)

    messages = eventually(lambda: (m := in_sink(infra, edition)) and len(m) >= count and m, timeout=120)
    assert await statuses(edition) == {"sent/1": count}  # recorded once each, at the first attempt

    ids = Counter(m["headers"]["Message-ID"] for m in messages)
    assert len(ids) == count and set(ids.values()) == {1}
    assert {m["headers"]["X-Estafette-Kind"] for m in messages} == {"assigned"}
    assert all(any(a["filename"].endswith(".ics") for a in m["attachments"]) for m in messages)
    metrics = httpx.get(f"{notifications.url}/metrics", timeout=10).text
    assert "emails_in_flight 0.0" in metrics


async def test_a_kill_during_sending_loses_nothing_and_duplicates_at_most_the_messages_in_flight(infra: Infra) -> None:
    count = 1500
    first = ServiceProcess(infra, "notifications", ENV, label="notifications-killed").start()
    try:
        edition = match_run(infra, count)
        eventually(lambda: len(in_sink(infra, edition)) >= 150, timeout=120, interval=0.05)
        first.kill()  # kill -9, mid-batch
    finally:
        first.kill()
    sent_before = len(in_sink(infra, edition))
    assert sent_before < count, "all sent before the kill: nothing was in flight"

    second = ServiceProcess(infra, "notifications", ENV, label="notifications-restarted").start()
    try:
        # Each message recorded once, at its first attempt (an attempt cut by the kill is not counted).
        for _ in range(600):
            if (await statuses(edition)).get("sent/1", 0) == count:
                break
            await asyncio.sleep(0.2)
        assert await statuses(edition) == {"sent/1": count}
    finally:
        second.stop()

    messages = in_sink(infra, edition)
    ids = Counter(m["headers"]["Message-ID"] for m in messages)
    duplicates = len(messages) - len(ids)
    print(f"kill -9 after {sent_before} of {count} e-mails in the sink: {duplicates} duplicate(s)")
    assert len(ids) == count  # every message delivered
    assert duplicates <= CONCURRENCY, f"{duplicates} duplicate e-mails after one kill"
    assert max(ids.values()) <= 2
