"""E-mail benchmark (issue 13, e-mail out): how fast notifications gets match e-mails into the mail
sink, against what a raw SMTP client gets into the same sink in the same run.

Prints figures; it is not a test. The machine is shared and noisy, so every rate is also given as a
ratio to the baseline of the same run, and CPU per 1,000 e-mails (from /proc/<pid>/stat) is printed
for notifications and the sink: it does not depend on what else the machine is doing.

1. Baseline: `--baseline` (5,000; quick 2,000) pre-built e-mails of the same kind and size (a rendered
   `assigned` message with its .ics) sent by raw aiosmtplib over `smtp_concurrency` (8) connections to
   the sink: e-mails/s from the first send to the last one accepted.
2. Pipeline, for each size of `--sizes` (5,000 and 50,000; quick 5,000): a new edition; N participants'
   contacts (`ParticipantRegistered`) published and kept by notifications first (not timed), then N
   `MatchAssigned` published at once (what a match run publishes) — timed from the first record sent
   to the last e-mail in the sink (the sink's count): e-mails/s, the time until notifications had
   recorded all N messages (its consumer), and whether every message is `sent` exactly once (the
   database and the sink's count).
3. Sender only, for each size of `--sizes` (5,000 and 50,000; quick 5,000): N contacts and N
   messages like the pipeline's (the same match e-mail with its .ics, each to its own contact)
   committed `pending` at once straight into notifications' tables: from the commit to the last
   e-mail in the sink. This is the sender's speed without the consumer in front of it.

`--pipeline-sizes` sets the sizes of part 2 apart (e.g. `--pipeline-sizes 5000 --sizes 5000,50000`).
`--instances K` runs K notifications instances on the one database (their senders claim apart with
SKIP LOCKED; one instance uses at most one core). `--apart` runs them as `make run` does: without
their senders (part `main`) plus one sender alone (part `sender`, at nice 10).

Infrastructure: its own test slot (`--slot`, default $ESTAFETTE_TEST_SLOT, else 5): that slot's Kafka
log and database are wiped at the start (as a test session does); notifications runs as a real
process (`estafette serve notifications`, log in .local/test-<slot>/notifications.log); the servers
stay up afterwards unless `--stop-infra`.

    .venv/bin/python bench/email_bench.py --quick     # about 1-2 minutes
    .venv/bin/python bench/email_bench.py             # about 4-6 minutes (the issue's figures)
    make bench-email BENCH_ARGS=--quick
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: make `tests`, `schemas`, `services` and `estafette` importable

import procstat  # noqa: E402 - bench/procstat.py (bench/ is the script's folder, on sys.path)

REGION = "twente"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="5,000 e-mails only, a smaller baseline")
    p.add_argument("--sizes", default=None, help="sender only: comma-separated numbers of e-mails (default 5000,50000)")
    p.add_argument("--pipeline-sizes", default=None,
                   help="match events -> sink: comma-separated numbers of e-mails (default 5000,50000; 0: none)")
    p.add_argument("--baseline", type=int, default=None, help="e-mails of the raw SMTP baseline")
    p.add_argument("--instances", type=int, default=1,
                   help="notifications instances sharing the database (their senders claim apart: SKIP LOCKED)")
    p.add_argument("--apart", action="store_true",
                   help="as `make run`: the instances without their senders (part main) and one sender alone "
                        "(part sender, at nice 10)")
    p.add_argument("--concurrency", type=int, default=None, help="NOTIFICATIONS_SMTP_CONCURRENCY (default: the service's)")
    p.add_argument("--slot", type=int, default=int(os.environ.get("ESTAFETTE_TEST_SLOT") or 5))
    p.add_argument("--timeout", type=float, default=900.0, help="give up on one size after this many seconds")
    p.add_argument("--stop-infra", action="store_true", help="stop the slot's Kafka, PostgreSQL and mail sink at the end")
    args = p.parse_args()
    args.sizes = [int(s) for s in (args.sizes or ("5000" if args.quick else "5000,50000")).split(",") if int(s)]
    args.pipeline_sizes = [
        int(s) for s in (args.pipeline_sizes or ("5000" if args.quick else "5000,50000")).split(",") if int(s)]
    args.baseline = args.baseline or (2000 if args.quick else 5000)
    return args


ARGS = parse_args()
os.environ["ESTAFETTE_TEST_SLOT"] = str(ARGS.slot)  # before tests.support reads it

import aiosmtplib  # noqa: E402
import asyncpg  # noqa: E402
import httpx  # noqa: E402
from aiokafka import AIOKafkaProducer  # noqa: E402

from schemas import MatchAssigned, OfferSummary, ParticipantRegistered, topic_name  # noqa: E402
from services.notifications import domain  # noqa: E402
from services.notifications.config import NotificationsSettings  # noqa: E402
from services.notifications.mail import build_message  # noqa: E402
from services.notifications.rendering import Renderer  # noqa: E402
from tests import support  # noqa: E402
from tests.support import EXTRA_PORTS, SMTP_PORT, Infra, ServiceProcess, start_infra, stop_infra  # noqa: E402

CONCURRENCY = ARGS.concurrency or NotificationsSettings().smtp_concurrency
OFFER = OfferSummary(offer_id="o-bench", host_org="bakkerij-van-dam", title="Een dag in de bakkerij",
                     date=date(2099, 6, 2), location="Marktstraat 1, Enschede")


# --- CPU ------------------------------------------------------------------------------------------
class CpuMeter:
    """CPU seconds of named processes since it was made (a name may stand for several pids)."""

    def __init__(self, pids: dict[str, int | list[int]]) -> None:
        pids = {name: pid if isinstance(pid, list) else [pid] for name, pid in pids.items()}
        self.pids = pids
        self.start = {name: sum(map(procstat.cpu_seconds, group)) for name, group in pids.items()}

    def per_thousand(self, emails: int) -> str:
        used = {name: sum(map(procstat.cpu_seconds, group)) - self.start[name] for name, group in self.pids.items()}
        return ", ".join(f"{name} {1000 * s / max(emails, 1):.2f} s" for name, s in used.items())


# --- the sink --------------------------------------------------------------------------------------
def sink_health() -> dict:
    return httpx.get(f"{Infra.mail_api}/api/health", timeout=30).json()


def sink_clear() -> None:
    httpx.delete(f"{Infra.mail_api}/api/messages", timeout=300).raise_for_status()


async def until_sink_has(count: int, timeout: float) -> float:
    """Wait until the sink holds `count` messages; the time it got there (time.monotonic)."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=Infra.mail_api, timeout=30) as client:
        while time.monotonic() < deadline:
            have = (await client.get("/api/health")).json()["messages"]
            if have >= count:
                return time.monotonic()
            await asyncio.sleep(0.2)
    raise TimeoutError(f"the sink has {sink_health()['messages']} of {count} messages after {timeout:.0f}s")


# --- 1. baseline ---------------------------------------------------------------------------------
def sample_messages(count: int) -> list:
    """`count` e-mails as notifications sends a match result (rendered with its .ics)."""
    renderer, settings = Renderer(), NotificationsSettings()
    event = MatchAssigned(region=REGION, edition="bench-baseline", signup_id="s-0", run_id=uuid.uuid4(), rank=1, offer=OFFER)
    offer = domain.offer_from_summary(OFFER, REGION, "bench-baseline")
    message = domain.from_assignment(event, offer, "Europe/Amsterdam", "http://127.0.0.1:8001/links/signup/x")
    rendered = renderer.render(message.kind, "nl", "Anna de Vries", message.data)
    return [
        build_message(uuid.uuid4(), settings.sender, "Anna de Vries", f"p{i}@example.org", "nl", rendered, message.kind)
        for i in range(count)
    ]


async def baseline(count: int) -> float:
    messages = sample_messages(count)
    sink_clear()
    queue = list(reversed(messages))

    async def connection() -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=SMTP_PORT)
        await smtp.connect()
        while queue:
            await smtp.send_message(queue.pop())
        await smtp.quit()

    cpu = CpuMeter({"sink": sink_health()["pid"], "client": os.getpid()})
    t0 = time.monotonic()
    await asyncio.gather(*(connection() for _ in range(CONCURRENCY)))
    seconds = time.monotonic() - t0
    rate = count / seconds
    size = len(messages[0].as_bytes())
    print(f"baseline  raw aiosmtplib, {CONCURRENCY} connections: {count:>6,} e-mails ({size:,} bytes) in "
          f"{seconds:6.1f} s = {rate:6.0f}/s   CPU per 1,000: {cpu.per_thousand(count)}")
    return rate


# --- 2. pipeline -----------------------------------------------------------------------------------
async def publish(infra: Infra, events: list) -> float:
    """Publish `events` as fast as one producer can; the time the first was handed over."""
    producer = AIOKafkaProducer(**infra.kafka.client_kwargs(), enable_idempotence=True, linger_ms=5,
                                max_batch_size=256 * 1024)
    await producer.start()
    try:
        payloads = [(topic_name(e), e.model_dump_json().encode(), e.key.encode()) for e in events]
        t0 = time.monotonic()
        pending = [await producer.send(topic, value, key=key) for topic, value, key in payloads]
        await asyncio.gather(*pending)
        return t0
    finally:
        await producer.stop()


async def count_rows(conn: asyncpg.Connection, edition: str) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT status, count(*) AS n FROM notifications.notifications WHERE edition = $1 GROUP BY status", edition
    )
    return {r["status"]: r["n"] for r in rows}


async def pipeline(infra: Infra, conn: asyncpg.Connection, notifications: list[ServiceProcess], n: int, base: float) -> str:
    edition = f"bench-{n}-{uuid.uuid4().hex[:6]}"
    people = [
        ParticipantRegistered(region=REGION, edition=edition, signup_id=f"s-{edition}-{i}", name=f"Deelnemer {i}",
                              email=f"p{i}-{edition}@example.org", language="nl")
        for i in range(n)
    ]
    await publish(infra, people)
    deadline = time.monotonic() + ARGS.timeout
    while await conn.fetchval("SELECT count(*) FROM notifications.contacts WHERE edition = $1", edition) < n:
        if time.monotonic() > deadline:
            raise TimeoutError("notifications did not keep the contacts")
        await asyncio.sleep(0.2)
    run_id = uuid.uuid4()
    matches = [MatchAssigned(region=REGION, edition=edition, signup_id=p.signup_id, run_id=run_id, rank=1, offer=OFFER)
               for p in people]
    sink_clear()
    cpu = CpuMeter({"notifications": [p.proc.pid for p in notifications], "sink": sink_health()["pid"]})  # type: ignore[union-attr]
    t0 = await publish(infra, matches)

    recorded_at: float | None = None

    async def watch_rows() -> None:
        nonlocal recorded_at
        while sum((await count_rows(conn, edition)).values()) < n:
            await asyncio.sleep(0.2)
        recorded_at = time.monotonic()

    watcher = asyncio.create_task(watch_rows())
    last = await until_sink_has(n, ARGS.timeout)
    await asyncio.wait_for(watcher, 60)
    seconds = last - t0
    statuses = await count_rows(conn, edition)
    in_sink = sink_health()["messages"]
    line = (f"pipeline  {n:>6,} MatchAssigned -> last e-mail in the sink: {seconds:6.1f} s = {n / seconds:6.0f}/s "
            f"({n / seconds / base:.2f}x baseline); all recorded by the consumer after {recorded_at - t0:.1f} s; "  # type: ignore[operator]
            f"statuses {statuses}, sink {in_sink:,}")
    print(line)
    print(f"          CPU per 1,000 e-mails: {cpu.per_thousand(n)}")
    return edition


# --- 3. sender only ---------------------------------------------------------------------------------
async def sender_only(conn: asyncpg.Connection, notifications: list[ServiceProcess], edition: str, n: int, base: float) -> None:
    """N contacts and N pending messages like one of `edition`'s, committed at once."""
    copy = f"{edition}-sender-{n}"
    await conn.execute(
        "INSERT INTO notifications.contacts (signup_id, region, edition, name, email, language)"
        " SELECT 's-' || $1 || '-' || g, $2, $1, 'Deelnemer ' || g, 'p' || g || '@' || $1 || '.example.org', 'nl'"
        " FROM generate_series(1, $3::int) g",
        copy, REGION, n,
    )
    sink_clear()
    cpu = CpuMeter({"notifications": [p.proc.pid for p in notifications], "sink": sink_health()["pid"]})  # type: ignore[union-attr]
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO notifications.notifications (id, source_event_id, kind, template, region, edition,"
            " signup_id, correlation_id, language, data, status)"
            " SELECT gen_random_uuid(), gen_random_uuid(), t.kind, t.template, t.region, $2, 's-' || $2 || '-' || g,"
            " t.correlation_id, t.language, t.data, 'pending' FROM generate_series(1, $3::int) g,"
            " (SELECT * FROM notifications.notifications WHERE edition = $1 LIMIT 1) t",
            edition, copy, n,
        )
        await conn.execute("SELECT pg_notify('notifications_pending', '')")
    t0 = time.monotonic()
    last = await until_sink_has(n, ARGS.timeout)
    seconds = last - t0
    statuses = await count_rows(conn, copy)
    print(f"sender    {n:>6,} pending messages committed at once -> last e-mail in the sink: {seconds:6.1f} s = "
          f"{n / seconds:6.0f}/s ({n / seconds / base:.2f}x baseline); statuses {statuses}")
    print(f"          CPU per 1,000 e-mails: {cpu.per_thousand(n)}")


async def measure(infra: Infra, notifications: list[ServiceProcess]) -> None:
    conn = await asyncpg.connect(Infra.admin_dsn())
    try:
        base = await baseline(ARGS.baseline)
        edition = ""
        for n in ARGS.pipeline_sizes:
            edition = await pipeline(infra, conn, notifications, n, base)
        if not edition:  # the sender's messages are copies of a match e-mail: make one
            edition = await pipeline(infra, conn, notifications, 100, base)
        for n in ARGS.sizes:
            await sender_only(conn, notifications, edition, n, base)
    finally:
        await conn.close()


def main() -> None:
    print(f"e-mail benchmark, slot {ARGS.slot}, {ARGS.instances} notifications instance(s)"
          f"{' and one sender apart (as make run)' if ARGS.apart else ''}, smtp_concurrency "
          f"{CONCURRENCY} each, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f} at the start")
    infra = start_infra()  # runs its own event loops: not inside one
    env = {"NOTIFICATIONS_SEND_POLL_SECONDS": "0.2", "NOTIFICATIONS_SMTP_CONCURRENCY": str(CONCURRENCY)}
    part = "main" if ARGS.apart else ""
    notifications = [ServiceProcess(infra, "notifications", env, part=part).start()] + [
        ServiceProcess(infra, "notifications", env, port=EXTRA_PORTS[i], label=f"notifications-{i + 2}", part=part).start()
        for i in range(ARGS.instances - 1)
    ]
    if ARGS.apart:
        notifications.append(ServiceProcess(infra, "notifications", env, port=EXTRA_PORTS[ARGS.instances],
                                            label="notifications-sender", part="sender").start())
    try:
        asyncio.run(measure(infra, notifications))
        print(f"load average {os.getloadavg()[0]:.1f} at the end (the machine is shared: compare the ratios)")
    finally:
        for proc in notifications:
            proc.stop()
        if ARGS.stop_infra:
            stop_infra()
        print(f"logs: {support.STATE}")


if __name__ == "__main__":
    main()
