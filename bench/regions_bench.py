"""Regions benchmark (issue 8): does a region's burst hold up another region, and how far does one
region's pipeline scale out with more instances?

It runs on the test infrastructure of tests/support.py in its own slot (`--slot`, default
$ESTAFETTE_TEST_SLOT or 9): the slot's Kafka log and database are wiped at the start, as a test
session does. Every service is a real process (`estafette serve`).

1. Isolation. Regions A and B, each with its own matching and notifications instance
   (MATCHING_REGIONS / NOTIFICATIONS_REGIONS), one registration (the national front door) and one
   reporting (national). B takes sign-ups over HTTP at a steady rate, then a match run, twice: alone,
   and while A takes a burst of sign-ups from many concurrent HTTP clients (a separate process).
   Measured from the databases, never by polling HTTP:
     * B's sign-up -> handled by reporting / by matching-B: registration's outbox row (created_at,
       key = sign-up id, SignupSubmitted) against the consumer's inbox row (handled_at), same event id;
       p50 and p99. Both are transaction start times.
     * B's match run -> last e-mail: POST /editions/{id}/match-runs on matching-B, then until every B
       participant's notification is `sent` (notifications.sent_at).
2. Scale-out. For k = 1, 2, 4 a fresh region (the inbox dedupes per consumer, so old events would be
   no work), k matching instances (group matching.<region>) and k reporting instances (group
   reporting). EditionOpened and OfferPublished first, then N SignupSubmitted published straight
   onto the region's topics; throughput = N / (last inbox handled_at - first produced), per service,
   the best of `--repeat` interleaved rounds. Every event is handled exactly once: N inbox rows, N
   participants in matching, N sign-ups in reporting's figures, no dead letter. A last step (churn)
   publishes while instances join and one of each service is SIGKILLed, and checks the same across
   those rebalances.

Figures are ratios to a baseline measured in the same run (B alone; k = 1): the machine is shared and
noisy. CPU per process group (sampled from /proc) and Postgres backends waiting on a lock show where
the limit lies.

    python bench/regions_bench.py --quick      # burst 2,000, N 5,000: about 3 minutes
    python bench/regions_bench.py              # burst 20,000, N 20,000 (see bench/README.md)
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import os
import re
import resource
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: make `tests`, `schemas` and `services` importable

import procstat  # noqa: E402 - bench/procstat.py (bench/ is the script's folder, on sys.path)

import asyncpg  # noqa: E402
import httpx  # noqa: E402

#: tests.support, imported once the slot is set (its ports and state dir depend on it).
S: ModuleType = None  # type: ignore[assignment]
CORES = os.cpu_count() or 1
#: Quick re-matches and e-mails; no rate limit on the public routes (the burst is one client address).
SERVICE_ENV = {
    "ESTAFETTE_PUBLIC_RATE_LIMIT_PER_MINUTE": "0",
    "MATCHING_REMATCH_DEBOUNCE_SECONDS": "0.3",
    "MATCHING_REMATCH_POLL_SECONDS": "0.2",
    "NOTIFICATIONS_SEND_POLL_SECONDS": "0.2",
}
EDITION = {"name": "Estafette-week (bench)", "signup_deadline": "2099-04-01T00:00:00Z", "starts_on": "2099-05-31",
           "ends_on": "2099-06-04", "languages": ["nl"]}
OFFER_DATE = "2099-06-01"
SIGNUPS_CONSUMER = {"matching": "matching.signups", "reporting": "reporting.signups"}
SERVICES = ("registration", "matching", "notifications", "reporting")


class BenchError(RuntimeError):
    """A step did not reach its expected state (a service bug, or a timeout): the run stops."""


# --- arguments --------------------------------------------------------------------------------
def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: burst 2,000, N 5,000, 40 B sign-ups (~3 min)")
    parser.add_argument("--parts", default="isolation,scaleout", help="comma-separated: isolation, scaleout")
    parser.add_argument("--slot", type=int, default=int(os.environ.get("ESTAFETTE_TEST_SLOT", "9")),
                        help="test-infrastructure slot (ports, state dir; wiped at start); default $ESTAFETTE_TEST_SLOT or 9")
    iso = parser.add_argument_group("isolation")
    iso.add_argument("--burst", type=int, help="region A's burst of sign-ups (default 20,000; quick 2,000)")
    iso.add_argument("--clients", type=int, default=32, help="concurrent HTTP clients of the burst")
    iso.add_argument("--burst-limit", type=float, default=900.0,
                     help="seconds after which the burst sends no more sign-ups (then: what it reached is reported)")
    iso.add_argument("--b-signups", type=int, help="region B's sign-ups per phase (default 200; quick 40)")
    iso.add_argument("--b-rate", type=float, default=5.0, help="region B's sign-ups per second")
    scale = parser.add_argument_group("scale-out")
    scale.add_argument("--n", type=int, help="sign-ups published per step (default 20,000; quick 5,000)")
    scale.add_argument("--instances", default="1,2,4", help="instances per step, comma-separated")
    scale.add_argument("--repeat", type=int, help="rounds of the steps (1, 2, 4, 1, 2, 4, …), each in a fresh region; "
                       "the best throughput per k is shown (default 2; quick 1)")
    scale.add_argument("--partitions", type=int, default=4, help="partitions of each topic of the bench's regions")
    scale.add_argument("--editions", type=int, default=1,
                       help="editions the region's sign-ups are spread over (matching locks each edition's row in its "
                            "batch transaction; sign-ups are keyed by sign-up id, so every batch touches every edition)")
    scale.add_argument("--no-churn", action="store_true", help="skip the step that adds and kills instances under load")
    parser.add_argument("--plain", action="store_true", help="plain text tables even on a terminal")
    parser.add_argument("--stop-infra", action="store_true", help="stop the slot's Kafka, PostgreSQL and mail sink at the end")
    parser.add_argument("--burst-run", help=argparse.SUPPRESS)  # internal: the burst's HTTP clients, as a process
    args = parser.parse_args()
    args.burst = args.burst or (2_000 if args.quick else 20_000)
    args.b_signups = args.b_signups or (40 if args.quick else 200)
    args.n = args.n or (5_000 if args.quick else 20_000)
    args.instances = [int(k) for k in args.instances.split(",")]
    args.repeat = args.repeat or (1 if args.quick else 2)
    if max(args.instances) > 6:
        parser.error("--instances: at most 6 (k matching and k reporting instances share the slot's 12 HTTP ports)")
    args.parts = {p.strip() for p in args.parts.split(",")}
    if unknown := args.parts - {"isolation", "scaleout"}:
        parser.error(f"unknown part(s): {', '.join(sorted(unknown))}")
    if args.b_signups > 10_000:
        parser.error("--b-signups: at most 10,000 (one offer's capacity)")
    return args


def main() -> None:
    global S
    args = parse_args()
    os.environ["ESTAFETTE_TEST_SLOT"] = str(args.slot)
    if args.burst_run:
        print(json.dumps(asyncio.run(burst_clients(json.loads(args.burst_run)))))
        return
    from tests import support

    S = support
    started = time.monotonic()
    print(f"[infra] slot {args.slot}: starting Kafka, PostgreSQL, mail sink (state {S.STATE}) …", file=sys.stderr, flush=True)
    infra = S.start_infra()
    fleet = Fleet(infra)
    try:
        results = asyncio.run(run(infra, fleet, args))
    except BenchError as exc:
        sys.exit(f"\nbench stopped: {exc}\n(service logs: {S.STATE}/*.log)")
    finally:
        fleet.stop_all()
        if args.stop_infra:
            S.script("infra.sh", "down")
    report(results, args, time.monotonic() - started)


async def run(infra: Any, fleet: Fleet, args: argparse.Namespace) -> dict[str, Any]:
    pool = await asyncpg.create_pool(infra.admin_dsn(), min_size=1, max_size=4)
    sampler = CpuSampler(fleet)
    sampler.start()
    results: dict[str, Any] = {}
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            ctx = Ctx(infra, fleet, pool, http, sampler, admin=infra.key("admin"), national=infra.key("national"))
            if "isolation" in args.parts:
                results["isolation"] = await isolation(ctx, args)
            if "scaleout" in args.parts:
                results["scaleout"] = await scaleout(ctx, args)
    finally:
        sampler.stop()
        await pool.close()
    return results


@dataclass
class Ctx:
    infra: Any
    fleet: Fleet
    pool: asyncpg.Pool
    http: httpx.AsyncClient
    sampler: CpuSampler
    admin: str
    national: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin}"}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def new_region(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


# --- the service processes --------------------------------------------------------------------
class Fleet:
    """The service processes this run started (all stopped at the end, also on failure), with free
    HTTP ports from the slot's range."""

    def __init__(self, infra: Any) -> None:
        self.infra = infra
        self.running: dict[str, Any] = {}  # label -> ServiceProcess
        #: (label, log file, its size when the instance started), for every instance ever started.
        self.logs: list[tuple[str, Path, int]] = []
        self._ports = [S.HTTP_PORTS[name] for name in S.SERVICES] + list(S.EXTRA_PORTS)

    def _port(self) -> int:
        used = {int(p.url.rsplit(":", 1)[1]) for p in self.running.values()}
        for port in self._ports:
            if port not in used:
                return port
        raise BenchError(f"no free port for another instance ({len(self._ports)} in the slot's range)")

    async def start(self, *specs: tuple[str, str, dict[str, str]]) -> list[Any]:
        """Start (service, label, extra env) instances side by side; wait until each is healthy."""
        procs = []
        for service, label, env in specs:
            proc = S.ServiceProcess(self.infra, service, {**SERVICE_ENV, **env}, port=self._port(), label=label)
            self.running[label] = proc
            self.logs.append((label, proc.log_path, proc.log_path.stat().st_size if proc.log_path.exists() else 0))
            procs.append(proc)
        try:
            await asyncio.gather(*(asyncio.to_thread(p.start, 120) for p in procs))
        except (RuntimeError, TimeoutError) as exc:
            raise BenchError(f"a service did not start: {exc}") from exc
        return procs

    def pids(self) -> dict[int, str]:
        """pid -> group (the instance's label without its ordinal)."""
        return {p.proc.pid: re.sub(r"-\d+$", "", label) for label, p in list(self.running.items())
                if p.proc is not None and p.proc.poll() is None}

    async def stop(self, *labels: str) -> None:
        procs = [self.running.pop(label) for label in labels if label in self.running]
        await asyncio.gather(*(asyncio.to_thread(p.stop) for p in procs))

    async def stop_every(self) -> None:
        await self.stop(*list(self.running))

    def log_lines(self, since: int, service: str, *needles: str) -> list[int]:
        """How many lines of the logs of `service`'s instances started since `self.logs[since]`
        contain each needle (the part written since each instance started)."""
        counts = [0] * len(needles)
        for label, path, offset in self.logs[since:]:
            if not label.startswith(service) or not path.exists():
                continue
            with path.open("rb") as f:
                f.seek(offset)
                for line in f:
                    for i, needle in enumerate(needles):
                        counts[i] += needle.encode() in line
        return counts

    def kill(self, label: str) -> None:
        self.running.pop(label).kill()

    def stop_all(self) -> None:
        for proc in self.running.values():
            proc.stop()
        self.running.clear()


# --- CPU and lock sampling --------------------------------------------------------------------
@dataclass
class Mark:
    at: float
    cpu: dict[int, tuple[str, float]]
    machine: float


class CpuSampler(threading.Thread):
    """Samples the CPU time of every process of the run every 0.5 s: PostgreSQL (the postmaster and its
    backends), Kafka, the mail sink, each service instance, and this program with its burst clients.
    A process that exits loses at most its last half second."""

    def __init__(self, fleet: Fleet) -> None:
        super().__init__(daemon=True)
        self.fleet = fleet
        self.extra: dict[int, str] = {os.getpid(): "bench (load)"}
        self.latest: dict[int, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.wait(0.5):
            self.sample()

    def stop(self) -> None:
        self._stopping.set()

    def sample(self) -> None:
        postmaster = procstat.pid_file(S.STATE / "pg" / "data" / "postmaster.pid")
        known = {**self.fleet.pids(), **self.extra}
        for name, path in (("kafka", S.STATE / "kafka" / "kafka.pid"), ("mail sink", S.STATE / "mail" / "mailsink.pid")):
            if (pid := procstat.pid_file(path)) is not None:
                known[pid] = name
        seen: dict[int, tuple[str, float]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            stat = procstat.stat(entry)
            if stat is None:
                continue
            pid, (ppid, cpu) = int(entry), stat
            group = known.get(pid) or ("postgres" if postmaster in (pid, ppid) else None)
            if group:
                seen[pid] = (group, cpu)
        with self._lock:
            self.latest.update(seen)

    def mark(self) -> Mark:
        self.sample()
        with self._lock:
            return Mark(time.monotonic(), dict(self.latest), procstat.machine_busy())

    def cores(self, since: Mark) -> dict[str, float]:
        """Cores busy per group since `since` (CPU seconds / wall seconds); 'machine' counts every
        process on the machine, other users' included."""
        now = self.mark()
        wall = max(now.at - since.at, 1e-9)
        used: Counter[str] = Counter()
        for pid, (group, cpu) in now.cpu.items():
            used[group] += cpu - since.cpu.get(pid, (group, 0.0))[1]
        out = {group: seconds / wall for group, seconds in sorted(used.items(), key=lambda kv: -kv[1])}
        machine = (now.machine - since.machine) / wall
        out["other users"] = max(0.0, machine - sum(out.values()))
        out["machine"] = machine
        return out


class DbSampler:
    """The PostgreSQL sessions of the bench database, per service (the pools' application_name),
    sampled every 0.25 s while a window lasts (`async with DbSampler(pool) as db:`): how many are
    active on average, how many of those wait on a lock, and what they wait on (wait events; `CPU`:
    running, no wait)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.samples = 0
        self.active: Counter[str] = Counter()
        self.locked: Counter[str] = Counter()
        self.waits: Counter[tuple[str, str]] = Counter()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> DbSampler:
        self._task = asyncio.create_task(self._loop())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass

    async def _loop(self) -> None:
        while True:
            rows = await self.pool.fetch(
                "SELECT application_name AS app, wait_event_type AS type, wait_event AS event FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'active'"
            )
            self.samples += 1
            for row in rows:
                app = row["app"] or "?"
                self.active[app] += 1
                self.locked[app] += row["type"] == "Lock"
                self.waits[app, f"{row['type']}:{row['event']}" if row["type"] else "CPU"] += 1
            await asyncio.sleep(0.25)

    def averages(self) -> dict[str, tuple[float, float]]:
        """application name -> (active sessions, of those waiting on a lock), averaged over the samples."""
        n = max(self.samples, 1)
        return {app: (self.active[app] / n, self.locked[app] / n) for app in self.active}

    def summary(self, apps: Iterable[str]) -> str:
        """Per service: average active sessions and their top wait events."""
        n = max(self.samples, 1)
        parts = []
        for app in apps:
            waits = sorted(((c, w) for (a, w), c in self.waits.items() if a == app), reverse=True)[:3]
            detail = ", ".join(f"{w} {c / n:.1f}" for c, w in waits)
            parts.append(f"{app} {self.active[app] / n:.1f}" + (f" ({detail})" if detail else ""))
        return "; ".join(parts)


async def until(check: Callable[[], Any], what: str, timeout: float, interval: float = 0.25) -> Any:
    """Poll `await check()` until truthy (returned); BenchError naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise BenchError(f"{what}: not within {timeout:.0f} s (last: {last!r})")


# --- HTTP helpers -----------------------------------------------------------------------------
async def open_edition(ctx: Ctx, url: str, edition_id: str, region_id: str, capacity: int) -> str:
    """An edition of the region with one offer of `capacity` seats (waits until registration knows the
    region); the offer's id."""

    async def opened() -> bool:
        r = await ctx.http.post(f"{url}/editions", headers=ctx.auth, json={"id": edition_id, "region": region_id, **EDITION})
        if r.status_code == 422 and r.json().get("error") == "unknown_region":
            return False
        if r.status_code != 201:
            raise BenchError(f"POST /editions {edition_id}: {r.status_code} {r.text[:300]}")
        return True

    await until(opened, f"registration knows region {region_id}", timeout=60)
    offer_id = f"{edition_id}-offer"
    r = await ctx.http.post(f"{url}/editions/{edition_id}/offers", headers=ctx.auth, json={
        "id": offer_id, "host_org": "bakker-bart", "title": "Bakkerij", "date": OFFER_DATE, "capacity": capacity})
    if r.status_code != 201:
        raise BenchError(f"POST /editions/{edition_id}/offers: {r.status_code} {r.text[:300]}")
    return offer_id


def signup_body(edition_id: str, offer_id: str, i: int, tag: str) -> dict[str, Any]:
    return {"org": f"org-{i % 97}", "name": f"Deelnemer {i}", "email": f"{tag}{i}@{edition_id}.example.org",
            "language": "nl", "choices": [offer_id], "consent": True}


async def steady_signups(ctx: Ctx, url: str, edition_id: str, offer_id: str, count: int, rate: float) -> tuple[list[str], list[float]]:
    """`count` sign-ups at `rate` per second, each sent on schedule whatever the earlier ones took (an
    open loop): the sign-up ids and the HTTP response times."""
    ids: list[str] = []
    response_times: list[float] = []

    async def one(i: int) -> None:
        started = time.perf_counter()
        r = await ctx.http.post(f"{url}/editions/{edition_id}/signups", json=signup_body(edition_id, offer_id, i, "b"))
        if r.status_code != 201:
            raise BenchError(f"sign-up to {edition_id}: {r.status_code} {r.text[:300]}")
        response_times.append(time.perf_counter() - started)
        ids.append(r.json()["signup_id"])

    tasks = []
    start = time.monotonic()
    for i in range(count):
        await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    return ids, response_times


async def burst_clients(spec: dict[str, Any]) -> dict[str, Any]:
    """The burst (run as its own process, `--burst-run`): `count` sign-ups by `clients` concurrent
    HTTP clients, as fast as registration answers; none sent after `limit` seconds."""
    statuses: Counter[str] = Counter()
    next_index = iter(range(spec["count"]))
    limits = httpx.Limits(max_connections=spec["clients"], max_keepalive_connections=spec["clients"])
    async with httpx.AsyncClient(limits=limits, timeout=120) as http:

        async def client() -> None:
            for i in next_index:
                if time.time() > deadline:
                    statuses["not sent (time limit)"] += 1
                    continue
                try:
                    r = await http.post(f"{spec['url']}/editions/{spec['edition']}/signups",
                                        json=signup_body(spec["edition"], spec["offer"], i, "a"))
                    statuses[str(r.status_code)] += 1
                except httpx.HTTPError as exc:
                    statuses[type(exc).__name__] += 1

        started = time.time()
        deadline = started + spec["limit"]
        await asyncio.gather(*(client() for _ in range(spec["clients"])))
        ended = time.time()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"statuses": dict(statuses), "started": started, "ended": ended, "cpu": usage.ru_utime + usage.ru_stime}


# --- database helpers -------------------------------------------------------------------------
async def signup_delays(pool: asyncpg.Pool, service: str, signup_ids: list[str]) -> list[asyncpg.Record]:
    """Per sign-up handled by `service`: seconds from registration's outbox row to the service's inbox
    row, and from the outbox row to its publication (registration's relay)."""
    return await pool.fetch(
        f"SELECT extract(epoch FROM i.handled_at - o.created_at)::float8 AS handled,"
        f"       extract(epoch FROM o.published_at - o.created_at)::float8 AS published,"
        f"       extract(epoch FROM i.handled_at - o.published_at)::float8 AS consumed"
        f"  FROM registration.outbox o JOIN {service}.inbox i ON i.event_id = o.event_id AND i.consumer = $2"
        f" WHERE o.event_type = 'SignupSubmitted' AND o.key = ANY($1::text[])",
        signup_ids, SIGNUPS_CONSUMER[service],
    )


async def wait_handled(ctx: Ctx, signup_ids: list[str], timeout: float) -> dict[str, list[asyncpg.Record]]:
    out = {}
    for service in ("matching", "reporting"):
        async def done(service: str = service) -> list[asyncpg.Record] | None:
            rows = await signup_delays(ctx.pool, service, signup_ids)
            return rows if len(rows) == len(signup_ids) else None

        out[service] = await until(done, f"{len(signup_ids)} sign-ups handled by {service}", timeout, interval=0.5)
    return out


async def match_run_to_last_email(ctx: Ctx, matching_url: str, edition_id: str, people: int) -> dict[str, float]:
    """POST a match run on the region's matching instance; seconds until the run is done and until the
    last participant's e-mail is sent (from notifications' table)."""

    async def known() -> bool:
        return await ctx.pool.fetchval(
            "SELECT count(*) FROM matching.participants WHERE edition_id = $1", edition_id) == people

    await until(known, f"matching knows the {people} participants of {edition_id}", timeout=600)
    posted = time.time()
    r = await ctx.http.post(f"{matching_url}/editions/{edition_id}/match-runs", headers=ctx.auth)
    if r.status_code != 202:
        raise BenchError(f"POST match-runs {edition_id}: {r.status_code} {r.text[:300]}")
    run_id = uuid.UUID(r.json()["id"])

    async def run_done() -> asyncpg.Record | None:
        row = await ctx.pool.fetchrow("SELECT status, error, finished_at FROM matching.match_runs WHERE id = $1", run_id)
        if row and row["status"] == "failed":
            raise BenchError(f"match run {run_id} of {edition_id} failed: {row['error']}")
        return row if row and row["status"] == "done" else None

    run = await until(run_done, f"match run {run_id} of {edition_id} done", timeout=300)

    async def mailed() -> asyncpg.Record | None:
        row = await ctx.pool.fetchrow(
            "SELECT count(DISTINCT signup_id) FILTER (WHERE status = 'sent') AS sent,"
            " count(*) FILTER (WHERE status = 'failed') AS failed, min(sent_at) AS first, max(sent_at) AS last"
            " FROM notifications.notifications WHERE edition = $1", edition_id)
        if row["failed"]:
            raise BenchError(f"{row['failed']} e-mail(s) of {edition_id} failed")
        return row if row["sent"] == people else None

    mail = await until(mailed, f"every participant of {edition_id} e-mailed", timeout=600)
    return {"run_done": run["finished_at"].timestamp() - posted, "first_email": mail["first"].timestamp() - posted,
            "last_email": mail["last"].timestamp() - posted}


# --- 1. isolation -----------------------------------------------------------------------------
async def isolation(ctx: Ctx, args: argparse.Namespace) -> dict[str, Any]:
    a, b = new_region("bench-a"), new_region("bench-b")
    log(f"[isolation] regions A={a}, B={b} ({args.partitions} partitions); starting 6 services …")
    await asyncio.to_thread(ctx.infra.add_regions, S.region(a, args.partitions), S.region(b, args.partitions))
    registration, reporting = await ctx.fleet.start(("registration", "registration", {}), ("reporting", "reporting", {}))
    matching = {}
    for r in (a, b):
        (matching[r],) = await ctx.fleet.start(("matching", f"matching-{r[6].upper()}", {"MATCHING_REGIONS": r}))
    await ctx.fleet.start(*[
        ("notifications", f"notifications-{r[6].upper()}", {"NOTIFICATIONS_REGIONS": r, "NOTIFICATIONS_MATCHING_PUBLIC_URL": matching[r].url})
        for r in (a, b)
    ])
    reg_url = registration.url
    editions = {"alone": f"{b}-alone", "burst": f"{b}-burst"}
    offers = {phase: await open_edition(ctx, reg_url, e, b, args.b_signups) for phase, e in editions.items()}
    a_edition = f"{a}-burst"
    a_offer = await open_edition(ctx, reg_url, a_edition, a, min(args.burst, 10_000))
    out: dict[str, Any] = {"regions": (a, b), "burst": args.burst, "b_signups": args.b_signups, "b_rate": args.b_rate}

    # Warm-up (not measured): B's first match run and e-mail pay the instances' imports and connections.
    warm = f"{b}-warmup"
    warm_offer = await open_edition(ctx, reg_url, warm, b, 1)
    await steady_signups(ctx, reg_url, warm, warm_offer, 1, 1.0)
    await match_run_to_last_email(ctx, matching[b].url, warm, 1)

    # (a) B alone.
    log(f"[isolation] B alone: {args.b_signups} sign-ups at {args.b_rate:g}/s, then a match run …")
    mark = ctx.sampler.mark()
    async with DbSampler(ctx.pool) as db:
        ids, http_times = await steady_signups(ctx, reg_url, editions["alone"], offers["alone"], args.b_signups, args.b_rate)
        delays = await wait_handled(ctx, ids, timeout=120)
        run = await match_run_to_last_email(ctx, matching[b].url, editions["alone"], args.b_signups)
    out["alone"] = {"delays": delays, "http": http_times, "run": run, "cpu": ctx.sampler.cores(mark), "db": db.summary(SERVICES)}

    # (b) B during A's burst.
    log(f"[isolation] A's burst: {args.burst:,} sign-ups from {args.clients} concurrent HTTP clients …")
    spec = {"url": reg_url, "edition": a_edition, "offer": a_offer, "count": args.burst, "clients": args.clients,
            "limit": args.burst_limit}
    mark = ctx.sampler.mark()
    burst = await asyncio.create_subprocess_exec(
        sys.executable, str(Path(__file__).resolve()), "--slot", str(args.slot), "--burst-run", json.dumps(spec),
        stdout=asyncio.subprocess.PIPE, cwd=ROOT,
    )
    ctx.sampler.extra = {**ctx.sampler.extra, burst.pid: "bench (load)"}  # rebound: the sampler thread reads it

    async def a_signups() -> int:
        return await ctx.pool.fetchval("SELECT count(*) FROM registration.signups WHERE edition_id = $1", a_edition)

    async def swinging() -> bool:
        return burst.returncode is not None or await a_signups() >= min(max(args.burst // 20, 100), args.burst)

    async with DbSampler(ctx.pool) as db:
        await until(swinging, "A's burst under way", timeout=120)
        log(f"[isolation] B during the burst: {args.b_signups} sign-ups at {args.b_rate:g}/s, then a match run …")
        ids, http_times = await steady_signups(ctx, reg_url, editions["burst"], offers["burst"], args.b_signups, args.b_rate)
        await until(lambda: _participants(ctx, editions["burst"], args.b_signups), "matching-B has B's sign-ups", timeout=600)
        at_run = {"burst_sending": burst.returncode is None, "a_signups_accepted": await a_signups(),
                  "a_signups_in_reporting": await _reporting_signups(ctx, a_edition)}
        run = await match_run_to_last_email(ctx, matching[b].url, editions["burst"], args.b_signups)
        delays = await wait_handled(ctx, ids, timeout=1800)
    out["during"] = {"delays": delays, "http": http_times, "run": run, "at_run": at_run, "cpu": ctx.sampler.cores(mark),
                     "db": db.summary(SERVICES)}

    log("[isolation] waiting for the burst to end and drain through every consumer …")
    stdout, _ = await burst.communicate()
    stats = json.loads(stdout)
    accepted = stats["statuses"].get("201", 0)
    drain = await _drained(ctx, a, a_edition, accepted)
    out["burst_stats"] = {**stats, "accepted": accepted, "drain": drain, "cpu_window": ctx.sampler.cores(mark)}
    await ctx.fleet.stop_every()
    return out


async def _participants(ctx: Ctx, edition_id: str, people: int) -> bool:
    return await ctx.pool.fetchval("SELECT count(*) FROM matching.participants WHERE edition_id = $1", edition_id) == people


async def _reporting_signups(ctx: Ctx, edition_id: str) -> int:
    return await ctx.pool.fetchval("SELECT count(*) FROM reporting.signups WHERE edition_id = $1", edition_id)


async def _drained(ctx: Ctx, region_id: str, edition_id: str, accepted: int) -> dict[str, float]:
    """Seconds from the burst's last HTTP answer (registration's last outbox row) until the last of A's
    sign-ups was published by registration, handled by reporting and by matching-A."""
    from schemas.topics import SIGNUPS

    topic = SIGNUPS.name_in(region_id)

    async def counts() -> asyncpg.Record | None:
        row = await ctx.pool.fetchrow(
            "SELECT count(*) AS outbox, count(o.published_at) AS published,"
            " (SELECT count(*) FROM matching.participants WHERE edition_id = $2) AS matching,"
            " (SELECT count(*) FROM reporting.signups WHERE edition_id = $2) AS reporting"
            " FROM registration.outbox o WHERE o.topic = $1 AND o.event_type = 'SignupSubmitted'", topic, edition_id)
        return row if row["published"] == row["matching"] == row["reporting"] == accepted else None

    await until(counts, f"A's {accepted:,} sign-ups in matching-A and reporting", timeout=3600, interval=1.0)
    row = await ctx.pool.fetchrow(
        "SELECT max(o.created_at) AS last_created, max(o.published_at) AS published,"
        " (SELECT max(i.handled_at) FROM registration.outbox x JOIN reporting.inbox i ON i.event_id = x.event_id"
        "   AND i.consumer = 'reporting.signups' WHERE x.topic = $1 AND x.event_type = 'SignupSubmitted') AS reporting,"
        " (SELECT max(i.handled_at) FROM registration.outbox x JOIN matching.inbox i ON i.event_id = x.event_id"
        "   AND i.consumer = 'matching.signups' WHERE x.topic = $1 AND x.event_type = 'SignupSubmitted') AS matching"
        " FROM registration.outbox o WHERE o.topic = $1 AND o.event_type = 'SignupSubmitted'", topic)
    last = row["last_created"]
    return {name: (row[name] - last).total_seconds() for name in ("published", "reporting", "matching")}


# --- 2. scale-out -----------------------------------------------------------------------------
@dataclass
class Step:
    region: str
    editions: list[str]
    #: Where this step's instances begin in Fleet.logs.
    log_mark: int = 0
    event_ids: list[uuid.UUID] = field(default_factory=list)


async def scaleout(ctx: Ctx, args: argparse.Namespace) -> dict[str, Any]:
    steps: dict[Any, Any] = {k: [] for k in args.instances}
    for _ in range(args.repeat):  # interleaved, so that a noisy minute does not hit one k only
        for k in args.instances:
            steps[k].append(await scale_step(ctx, args, k))
    if not args.no_churn:
        steps["churn"] = await churn_step(ctx, args)
    return steps


async def prepare_region(ctx: Ctx, args: argparse.Namespace, prefix: str) -> Step:
    region_id = new_region(prefix)
    await asyncio.to_thread(ctx.infra.add_regions, S.region(region_id, args.partitions))
    return Step(region_id, [f"{region_id}-e{j}" for j in range(args.editions)], log_mark=len(ctx.fleet.logs))


async def start_consumers(ctx: Ctx, step: Step, k: int, first: int = 0) -> list[str]:
    """k matching instances for the step's region and k reporting instances; their labels."""
    specs = [("matching", f"matching-{first + i}", {"MATCHING_REGIONS": step.region}) for i in range(k)]
    specs += [("reporting", f"reporting-{first + i}", {}) for i in range(k)]
    await ctx.fleet.start(*specs)
    return [label for _, label, _ in specs]


async def stable_groups(ctx: Ctx, step: Step, k_matching: int, k_reporting: int, args: argparse.Namespace) -> dict[str, list[int]]:
    """Wait until both consumer groups have their members with every partition of the region's sign-ups
    topic held, twice in a row one second apart; sign-up partitions per member."""
    from schemas.topics import SIGNUPS

    topic = SIGNUPS.name_in(step.region)
    wanted = {(topic, p) for p in range(args.partitions)}
    out = {}
    for group, k in ((f"matching.{step.region}", k_matching), ("reporting", k_reporting)):
        previous: list[Any] | None = None

        async def settled(group: str = group, k: int = k) -> list[Any] | None:
            nonlocal previous
            members = await S.group_assignments(ctx.infra.kafka, group)
            ok = len(members) == k and all(members) and wanted <= set().union(*members)
            result = members if ok and members == previous else None
            previous = members if ok else None
            return result

        members = await until(settled, f"consumer group {group}: {k} members holding {topic}", timeout=180, interval=1.0)
        out[group.split(".")[0]] = sorted(sum(1 for t, _ in m if t == topic) for m in members)
    return out


async def setup_events(ctx: Ctx, step: Step, n: int) -> None:
    """EditionOpened and OfferPublished of the step's editions, until both services have them."""
    from schemas import EditionOpened, OfferPublished

    events = []
    for edition_id in step.editions:
        events.append(EditionOpened(region=step.region, edition=edition_id, name=EDITION["name"],
                                    signup_deadline=dt.datetime(2099, 4, 1, tzinfo=dt.UTC),
                                    starts_on=dt.date(2099, 5, 31), ends_on=dt.date(2099, 6, 4), languages=["nl"]))
        events.append(OfferPublished(region=step.region, edition=edition_id, offer_id=f"{edition_id}-offer",
                                     host_org="bakker-bart", title="Bakkerij", date=dt.date(2099, 6, 1), capacity=n))
    await asyncio.to_thread(ctx.infra.produce, events)

    async def known() -> bool:
        row = await ctx.pool.fetchrow(
            "SELECT (SELECT count(*) FROM matching.offers WHERE edition_id = ANY($1)) AS m_offers,"
            " (SELECT count(*) FROM matching.editions WHERE id = ANY($1)) AS m_editions,"
            " (SELECT count(*) FROM reporting.offers WHERE edition_id = ANY($1) AND capacity IS NOT NULL) AS r_offers,"
            " (SELECT count(*) FROM reporting.editions WHERE id = ANY($1) AND status = 'open') AS r_editions",
            step.editions)
        return all(v == len(step.editions) for v in row.values())

    await until(known, f"matching and reporting know region {step.region}'s editions and offers", timeout=120)


def signup_records(step: Step, n: int) -> list[tuple[str, bytes, bytes]]:
    """N SignupSubmitted of the step's region, serialised beforehand: (topic, key, value)."""
    from schemas import SignupSubmitted, topic_name

    now = dt.datetime.now(dt.UTC)
    records = []
    for i in range(n):
        edition_id = step.editions[i % len(step.editions)]
        event = SignupSubmitted(region=step.region, edition=edition_id, signup_id=f"s-{step.region}-{i}",
                                org=f"org-{i % 97}", language="nl", choices=[f"{edition_id}-offer"], signed_up_at=now)
        step.event_ids.append(event.event_id)
        records.append((topic_name(event), event.key.encode(), event.model_dump_json().encode()))
    return records


async def produce(ctx: Ctx, records: list[tuple[str, bytes, bytes]], on_chunk: Callable[[int], Any] | None = None,
                  chunks: int = 1, period: float = 0.0) -> tuple[float, float]:
    """Publish `records` (in `chunks` spread over `period` seconds); (first send, last ack) as epoch seconds."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(**ctx.infra.kafka.client_kwargs(), acks="all", linger_ms=5, max_batch_size=256 * 1024)
    await producer.start()
    try:
        size = math.ceil(len(records) / chunks)
        first = time.time()
        futures = []
        for c in range(chunks):
            await asyncio.sleep(max(0.0, first + c * period / chunks - time.time()))
            if on_chunk is not None:
                await on_chunk(c)
            for topic, key, value in records[c * size:(c + 1) * size]:
                futures.append(await producer.send(topic, value=value, key=key))
        await producer.flush()
        await asyncio.gather(*futures)
        return first, time.time()
    finally:
        await producer.stop()


async def verify(ctx: Ctx, step: Step, n: int, first: float) -> dict[str, Any]:
    """Every event handled exactly once by each service; throughput from the inbox."""
    out: dict[str, Any] = {}
    for service in ("matching", "reporting"):
        row = await ctx.pool.fetchrow(
            f"SELECT count(*) AS rows, count(DISTINCT event_id) AS distinct_ids, max(handled_at) AS last"
            f" FROM {service}.inbox WHERE consumer = $1 AND event_id = ANY($2::uuid[])",
            SIGNUPS_CONSUMER[service], step.event_ids)
        table = "participants" if service == "matching" else "signups"
        rows = await ctx.pool.fetchval(f"SELECT count(*) FROM {service}.{table} WHERE edition_id = ANY($1)", step.editions)
        dead = await ctx.pool.fetchval(f"SELECT count(*) FROM {service}.dead_letters WHERE created_at >= to_timestamp($1)", first)
        out[service] = {
            "inbox": row["rows"], "distinct": row["distinct_ids"], "rows": rows, "dead_letters": dead,
            "seconds": row["last"].timestamp() - first if row["last"] else float("nan"),
        }
        out[service]["throughput"] = n / out[service]["seconds"]
    figures = 0
    for edition_id in step.editions:
        r = await ctx.http.get(f"{_any_url(ctx, 'reporting')}/reports/editions/{edition_id}",
                               headers={"Authorization": f"Bearer {ctx.national}"})
        if r.status_code != 200:
            raise BenchError(f"GET /reports/editions/{edition_id}: {r.status_code} {r.text[:300]}")
        figures += r.json()["signups"]
    out["reporting"]["figures"] = figures
    # The instances' own counters: first-time handled (must sum to N) and redeliveries the inbox skipped.
    for service in ("matching", "reporting"):
        handled = duplicates = 0.0
        for label, proc in list(ctx.fleet.running.items()):
            if label.startswith(service) and proc.proc.poll() is None:
                text = (await ctx.http.get(f"{proc.url}/metrics")).text
                consumer = SIGNUPS_CONSUMER[service]
                handled += _metric(text, "events_handled_total", consumer=consumer, event_type="SignupSubmitted")
                duplicates += _metric(text, "events_duplicate_total", consumer=consumer)
        out[service]["counted"], out[service]["duplicates"] = int(handled), int(duplicates)
        out[service]["retried"], out[service]["deadlocks"] = ctx.fleet.log_lines(
            step.log_mark, service, "batch failed, handling its records one by one", "DeadlockDetectedError")
    for service in ("matching", "reporting"):
        s = out[service]
        s["ok"] = s["inbox"] == s["distinct"] == s["rows"] == n and s["dead_letters"] == 0 and s.get("figures", n) == n
    return out


def _any_url(ctx: Ctx, service: str) -> str:
    for label, proc in ctx.fleet.running.items():
        if label.startswith(service) and proc.proc.poll() is None:
            return proc.url
    raise BenchError(f"no {service} instance running")


def _metric(text: str, name: str, **labels: str) -> float:
    """The sum of a Prometheus text exposition's samples of `name` whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def wait_consumed(ctx: Ctx, step: Step, n: int) -> None:
    async def done() -> bool:
        row = await ctx.pool.fetchrow(
            "SELECT (SELECT count(*) FROM matching.participants WHERE edition_id = ANY($1)) AS m,"
            " (SELECT count(*) FROM reporting.signups WHERE edition_id = ANY($1)) AS r", step.editions)
        return row["m"] >= n and row["r"] >= n

    await until(done, f"{n:,} sign-ups of {step.region} handled by matching and reporting",
                timeout=max(300.0, n / 20), interval=0.25)


async def scale_step(ctx: Ctx, args: argparse.Namespace, k: int) -> dict[str, Any]:
    step = await prepare_region(ctx, args, f"bench-s{k}")
    log(f"[scale-out] k={k}: region {step.region}; starting {k} matching + {k} reporting instances …")
    await start_consumers(ctx, step, k)
    spread = await stable_groups(ctx, step, k, k, args)
    await setup_events(ctx, step, args.n)
    records = signup_records(step, args.n)
    log(f"[scale-out] k={k}: publishing {args.n:,} sign-ups …")
    mark = ctx.sampler.mark()
    async with DbSampler(ctx.pool) as db:
        first, produced = await produce(ctx, records)
        await wait_consumed(ctx, step, args.n)
    cpu = ctx.sampler.cores(mark)
    result = await verify(ctx, step, args.n, first)
    result.update(region=step.region, spread=spread, produce_seconds=produced - first, cpu=cpu, locks=db.averages(),
                  waits=db.summary(("matching", "reporting")))
    await ctx.fleet.stop_every()
    return result


async def churn_step(ctx: Ctx, args: argparse.Namespace) -> dict[str, Any]:
    """2 instances of each service; while N sign-ups arrive over `period` seconds, 2 more of each join
    (rebalance) and then one of the first two of each is SIGKILLed (its uncommitted batch is
    redelivered to another member after the session timeout)."""
    step = await prepare_region(ctx, args, "bench-churn")
    log(f"[scale-out] churn: region {step.region}; 2 + 2 instances, then 2 more of each join and one of each is killed …")
    await start_consumers(ctx, step, 2)
    await stable_groups(ctx, step, 2, 2, args)
    await setup_events(ctx, step, args.n)
    records = signup_records(step, args.n)
    period = 20.0 if args.quick else 40.0
    joining: list[asyncio.Task[Any]] = []
    events: list[str] = []

    async def on_chunk(c: int) -> None:
        if c == 5:
            events.append(f"{time.strftime('%H:%M:%S')} 2 more of each join")
            joining.append(asyncio.create_task(start_consumers(ctx, step, 2, first=2)))
        if c == 12:
            if joining:
                await joining[0]
            for label in ("matching-0", "reporting-0"):
                ctx.fleet.kill(label)
            events.append(f"{time.strftime('%H:%M:%S')} matching-0 and reporting-0 SIGKILLed")

    mark = ctx.sampler.mark()
    async with DbSampler(ctx.pool) as db:
        first, produced = await produce(ctx, records, on_chunk, chunks=20, period=period)
        await wait_consumed(ctx, step, args.n)
    cpu = ctx.sampler.cores(mark)
    result = await verify(ctx, step, args.n, first)
    result.update(region=step.region, produce_seconds=produced - first, cpu=cpu, locks=db.averages(),
                  events=events, period=period)
    await ctx.fleet.stop_every()
    return result


# --- output -----------------------------------------------------------------------------------
def pct(values: Iterable[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def ratio(value: float, base: float) -> str:
    return f"×{value / base:.2f}" if base > 0 and not math.isnan(value) else "–"


OVERALL = ("machine", "other users")


def cpu_line(cores: dict[str, float]) -> str:
    parts = [f"{group} {value:.2f}" for group, value in cores.items() if group not in OVERALL and value >= 0.01]
    return (f"{' · '.join(parts)}  | this run {sum(v for g, v in cores.items() if g not in OVERALL):.2f}, "
            f"other users {cores.get('other users', 0.0):.2f}, machine {cores.get('machine', 0.0):.2f} of {CORES}")


def print_table(title: str, header: list[str], rows: list[list[str]], plain: bool) -> None:
    if not plain and sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, title_justify="left")
        for i, name in enumerate(header):
            table.add_column(name, justify="left" if i == 0 else "right")
        for row in rows:
            table.add_row(*row)
        Console().print(table)
        return
    widths = [max(len(r[i]) for r in [header, *rows]) + 2 for i in range(len(header))]
    print(f"\n{title}")
    print("".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths))))
    for row in rows:
        print("".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))


def limit_sentence(cores: dict[str, float], locks: dict[str, tuple[float, float]] | None = None) -> str:
    """Where the limit lay in a window: the machine's CPU (this run's share, other users' share), and
    the services whose database sessions waited on locks."""
    machine, others = cores.get("machine", 0.0), cores.get("other users", 0.0)
    ours = sorted(((g, v) for g, v in cores.items() if g not in OVERALL), key=lambda gv: -gv[1])
    top = ", ".join(f"{g} {v:.2f}" for g, v in ours[:3])
    busy = f"the {CORES} cores were {100 * machine / CORES:.0f}% busy"
    if machine >= 0.9 * CORES:
        text = f"CPU-bound: {busy}, this run's processes {sum(v for _, v in ours):.2f} cores (most: {top})"
    elif machine >= 0.7 * CORES:
        text = f"near CPU-bound: {busy} (most: {top})"
    else:
        text = f"not CPU-bound: {busy} (most: {top})"
    if others >= 0.25 * CORES:
        text += f"; other users' processes took {others:.2f} cores (a shared machine: absolute figures are depressed)"
    waits = [f"{app} {w:.1f} of {a:.1f}" for app, (a, w) in sorted((locks or {}).items()) if w >= 0.2]
    if waits:
        text += f"; database sessions waiting on a lock (avg, of active): {', '.join(waits)}"
    return text


def report(results: dict[str, Any], args: argparse.Namespace, wall: float) -> None:
    note: list[str] = []
    if iso := results.get("isolation"):
        note += report_isolation(iso, args)
    if scale := results.get("scaleout"):
        note += report_scaleout(scale, args)
    print(f"\nfigures for the note ({dt.date.today()}, one run, {CORES} cores, {'--quick' if args.quick else 'full'} run"
          f" of {wall / 60:.1f} min; ratios against the baseline of the same run):")
    for line in note:
        print(f"  {line}")


def report_isolation(iso: dict[str, Any], args: argparse.Namespace) -> list[str]:
    a, b = iso["regions"]
    alone, during = iso["alone"], iso["during"]
    rows = []

    def add(label: str, fn: Callable[[dict[str, Any]], float], fmt: Callable[[float], str] = ms) -> tuple[float, float]:
        x, y = fn(alone), fn(during)
        rows.append([label, fmt(x), fmt(y), ratio(y, x)])
        return x, y

    for service, what in (("reporting", "reporting (national)"), ("matching", "matching-B (its own)")):
        for p in (50, 99):
            add(f"B sign-up → {what} p{p}", lambda ph, s=service, p=p: pct([r["handled"] for r in ph["delays"][s]], p))
    for p in (50, 99):
        add(f"  registration's outbox relay p{p}", lambda ph, p=p: pct([r["published"] for r in ph["delays"]["reporting"]], p))
    for service, what in (("reporting", "reporting"), ("matching", "matching-B")):
        for p in (50, 99):
            add(f"  published → {what} p{p}", lambda ph, s=service, p=p: pct([r["consumed"] for r in ph["delays"][s]], p))
    for p in (50, 99):
        add(f"B sign-up HTTP response p{p}", lambda ph, p=p: pct(ph["http"], p))
    secs = lambda v: f"{v:.2f} s"  # noqa: E731
    add("B match run: POST → run done", lambda ph: ph["run"]["run_done"], secs)
    add("B match run: POST → first e-mail", lambda ph: ph["run"]["first_email"], secs)
    add("B match run: POST → last e-mail", lambda ph: ph["run"]["last_email"], secs)
    print_table(f"Isolation: region B ({b}, {args.b_signups} sign-ups at {args.b_rate:g}/s) alone and while region A ({a}) "
                f"takes {iso['burst']:,} sign-ups; one instance of matching and of notifications per region",
                ["", "B alone", "during A's burst", "ratio"], rows, args.plain)

    stats = iso["burst_stats"]
    seconds = stats["ended"] - stats["started"]
    errors = {k: v for k, v in stats["statuses"].items() if k not in ("201", "not sent (time limit)")}
    unsent = stats["statuses"].get("not sent (time limit)", 0)
    at_run = during["at_run"]
    print(f"\nA's burst over HTTP: {stats['accepted']:,} sign-ups accepted in {seconds:.1f} s ({stats['accepted'] / seconds:,.0f}/s, "
          f"{args.clients} clients; {'errors: ' + str(errors) if errors else 'no errors'}; the clients used "
          f"{stats['cpu']:.1f} CPU s)."
          + (f" {unsent:,} not sent: the burst's time limit (--burst-limit {args.burst_limit:.0f} s) was reached." if unsent else ""))
    print(f"  after its last sign-up: registration had published every one in {stats['drain']['published']:.1f} s, "
          f"reporting had handled them in {stats['drain']['reporting']:.1f} s, matching-A in {stats['drain']['matching']:.1f} s.")
    print(f"  when B's run was posted: burst {'still sending' if at_run['burst_sending'] else 'sent already'}, "
          f"{at_run['a_signups_accepted']:,} of A's sign-ups accepted, {at_run['a_signups_in_reporting']:,} in reporting.")
    print(f"CPU, cores (B alone):          {cpu_line(alone['cpu'])}")
    print(f"CPU, cores (during the burst): {cpu_line(during['cpu'])}")
    print(f"  burst → {limit_sentence(during['cpu'])}")
    print(f"Postgres sessions per service, avg active (top waits), B alone:          {alone['db']}")
    print(f"Postgres sessions per service, avg active (top waits), during the burst: {during['db']}")

    rep = lambda ph, p: pct([r["handled"] for r in ph["delays"]["reporting"]], p)  # noqa: E731
    mat = lambda ph, p: pct([r["handled"] for r in ph["delays"]["matching"]], p)  # noqa: E731
    lines = [
        f"isolation (A's burst {stats['accepted']:,} sign-ups at {stats['accepted'] / seconds:,.0f}/s over HTTP; B {args.b_signups} sign-ups at {args.b_rate:g}/s):",
        f"  B sign-up → reporting p99 {ms(rep(alone, 99))} alone vs {ms(rep(during, 99))} during A's burst "
        f"({ratio(rep(during, 99), rep(alone, 99))}); p50 {ms(rep(alone, 50))} vs {ms(rep(during, 50))} ({ratio(rep(during, 50), rep(alone, 50))})",
        f"  B sign-up → matching-B p99 {ms(mat(alone, 99))} vs {ms(mat(during, 99))} ({ratio(mat(during, 99), mat(alone, 99))})",
        f"  B match run → last e-mail {alone['run']['last_email']:.2f} s alone vs {during['run']['last_email']:.2f} s during "
        f"({ratio(during['run']['last_email'], alone['run']['last_email'])})"
        + ("" if at_run["burst_sending"] else "  [the burst's HTTP part had ended before B's run]"),
    ]
    return lines


def report_scaleout(steps: dict[Any, Any], args: argparse.Namespace) -> list[str]:
    """Per k the best throughput of its rounds (the machine is shared: the best is the least disturbed);
    exactly-once over every round; CPU and database sessions averaged over the rounds."""
    ks = [k for k in steps if k != "churn"]
    services = ("matching", "reporting")
    runs = {k: steps[k] for k in ks}

    def best(k: int, service: str) -> float:
        return max(r[service]["throughput"] for r in runs[k])

    def mean(values: Iterable[float]) -> float:
        values = list(values)
        return sum(values) / len(values)

    cpu = {k: {g: mean(r["cpu"].get(g, 0.0) for r in runs[k]) for g in runs[k][0]["cpu"]} for k in ks}
    locks = {k: {app: tuple(mean(r["locks"].get(app, (0.0, 0.0))[i] for r in runs[k]) for i in (0, 1))
                 for app in {a for r in runs[k] for a in r["locks"]}} for k in ks}
    ok = {k: all(r[s]["ok"] for r in runs[k] for s in services) for k in ks}
    rows = []
    lines = []
    if ks:
        base = ks[0]
        for service in services:
            rows.append([f"{service}: sign-ups/s (best)"] + [f"{best(k, service):,.0f}" for k in ks])
            rows.append([f"  ratio to k={base}"] + [ratio(best(k, service), best(base, service)) for k in ks])
            if args.repeat > 1:
                rows.append(["  rounds"] + [" ".join(f"{r[service]['throughput']:,.0f}" for r in runs[k]) for k in ks])
        for service in services:
            rows.append([f"sign-ups partitions per member ({service})"] + ["/".join(map(str, runs[k][0]["spread"][service])) for k in ks])
        rows.append(["publishing N took (slowest)"] + [f"{max(r['produce_seconds'] for r in runs[k]):.1f} s" for k in ks])
        for service in services:
            rows.append([f"{service}: inbox rows / its rows (each round)"] + [
                " ".join(f"{r[service]['inbox']:,}/{r[service]['rows']:,}" for r in runs[k]) for k in ks])
            rows.append([f"{service}: dup. skipped / batches redone / deadlocks"] + [
                "{}/{}/{}".format(*(sum(r[service][f] for r in runs[k]) for f in ("duplicates", "retried", "deadlocks"))) for k in ks])
        rows.append(["exactly once (both services, every round)"] + ["yes" if ok[k] else "NO" for k in ks])
        for group in ("postgres", "matching", "reporting", "kafka", "bench (load)", "other users", "machine"):
            rows.append([f"CPU cores: {group} (mean)"] + [f"{cpu[k].get(group, 0.0):.2f}" for k in ks])
        for service in services:
            rows.append([f"PG sessions of {service}: active / on a lock"] + [
                "{:.1f} / {:.1f}".format(*locks[k].get(service, (0.0, 0.0))) for k in ks])
        print_table(f"Scale-out: one region's consumers, N = {args.n:,} sign-ups over {args.editions} edition(s), "
                    f"{args.partitions} partitions per topic, a fresh region per k and round ({args.repeat} round(s))",
                    ["instances k"] + [str(k) for k in ks], rows, args.plain)
        for k in ks:
            print(f"  k={k}: {limit_sentence(cpu[k], locks[k])}")
            print(f"       Postgres sessions, avg active (top waits; first round): {runs[k][0]['waits']}")
            for r in runs[k]:
                for s in services:
                    if not r[s]["ok"]:
                        print(f"  k={k} {s} in {r['region']}: NOT exactly once: {r[s]}")
                counted = {s: r[s]["counted"] for s in services}
                if any(v != args.n for v in counted.values()):
                    print(f"  k={k} ({r['region']}): the instances' handled counters sum to {counted}, not {args.n:,}: a batch "
                          f"rolled back (e.g. a deadlock) and handled again one by one is counted twice; the inbox rows are the truth")
        for service in services:
            lines.append(f"scale-out {service} (best of {args.repeat}): " + ", ".join(
                f"{k}: {best(k, service):,.0f}/s ({ratio(best(k, service), best(base, service))})" for k in ks))
        lines.append("  exactly once in every step: " + ("yes" if all(ok.values()) else "NO"))
        lines.append(f"  limit at k={ks[-1]}: {limit_sentence(cpu[ks[-1]], locks[ks[-1]])}")
    if churn := steps.get("churn"):
        churn_ok = churn["matching"]["ok"] and churn["reporting"]["ok"]
        print(f"\nChurn (region {churn['region']}, N = {args.n:,} published over {churn['period']:.0f} s): " + "; ".join(churn["events"]))
        for service in ("matching", "reporting"):
            s = churn[service]
            print(f"  {service}: {s['inbox']:,} inbox rows ({s['distinct']:,} distinct), {s['rows']:,} rows, "
                  f"{s['dead_letters']} dead letters, {s['duplicates']} redeliveries skipped by the survivors' inboxes, "
                  f"{s['retried']} batches redone one by one, {s['deadlocks']} single-event attempts failed on a deadlock"
                  + (f", reporting's figures {s['figures']:,}" if "figures" in s else "") + f" → {'exactly once' if s['ok'] else 'NOT exactly once'}")
        lines.append(f"churn (instances join and one of each is SIGKILLed under load): {'no event lost or duplicated' if churn_ok else 'EVENTS LOST OR DUPLICATED'}"
                     f" (redeliveries skipped by the inbox: matching {churn['matching']['duplicates']}, reporting {churn['reporting']['duplicates']})")
    return lines


if __name__ == "__main__":
    main()
