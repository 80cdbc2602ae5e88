"""`estafette up` (what `make run` calls): the whole platform on this machine, on real Kafka and Postgres.

Starts the infrastructure through deploy/local/infra.sh (Kafka, PostgreSQL, mail sink), then the four
services as processes (notifications as two: its main part and its e-mail sender, `WORKERS`), waits until every service is ready (/readyz answers 200: database, consumer
groups joined, outbox relay running, keys and regions loaded), prints the URLs, and on Ctrl-C stops
the services (gracefully: SIGTERM, each exits within 10 s) and then the infrastructure. Each service
connects as its own database role with the password `postgres.sh bootstrap` keeps in
<state>/pg/passwords.env (unless the environment already gives it a `<SERVICE>_DATABASE_URL`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import httpx

from estafette.runtime.kafka import KafkaAccess
from services.registry import NAMES as SERVICES, service

ROOT = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("ESTAFETTE_STATE_DIR", ROOT / ".local"))
INFRA = ROOT / "deploy" / "local" / "infra.sh"


def _passwords(path: Path, suffix: str) -> dict[str, str]:
    """`<NAME><suffix>=<password>` lines of a passwords file, by lower-case name; {} without the file."""
    if not path.is_file():
        return {}
    lines = (line.partition("=") for line in path.read_text().splitlines() if not line.startswith("#"))
    return {key.removesuffix(suffix).lower(): value for key, sep, value in lines if sep}


def database_passwords(state: Path) -> dict[str, str]:
    """Each service's database role password, as `postgres.sh bootstrap` keeps them in
    <state>/pg/passwords.env (`<SERVICE>_DATABASE_PASSWORD=...` lines); {} before the first bootstrap."""
    return _passwords(state / "pg" / "passwords.env", "_DATABASE_PASSWORD")


def kafka_passwords(state: Path) -> dict[str, str]:
    """Each Kafka principal's password (admin, the services), as `kafka.sh start` keeps them in
    <state>/kafka/credentials.env (`<PRINCIPAL>_KAFKA_PASSWORD=...` lines); {} for a broker without security."""
    return _passwords(state / "kafka" / "credentials.env", "_KAFKA_PASSWORD")


def operator_kafka(bootstrap: str | None = None) -> KafkaAccess:
    """The operator tools' Kafka access: ESTAFETTE_KAFKA_BOOTSTRAP/_USERNAME/_PASSWORD, else the local
    broker's admin principal (<state>/kafka/credentials.env)."""
    access = KafkaAccess.from_env(bootstrap)
    if not access.password and access.username == "admin":
        return KafkaAccess(access.bootstrap, "admin", kafka_passwords(STATE).get("admin", ""))
    return access


def database_url(service: str, password: str, port: int | str, db: str) -> str:
    return f"postgresql://{service}:{quote(password, safe='')}@127.0.0.1:{port}/{db}"


def service_env(name: str) -> dict[str, str]:
    """The environment of service `name`: ours, plus its database URL with its role's password."""
    env = dict(os.environ)
    kafka_password = kafka_passwords(STATE).get(name)
    if kafka_password and f"{name.upper()}_KAFKA_PASSWORD" not in env:
        env[f"{name.upper()}_KAFKA_PASSWORD"] = kafka_password
    key = f"{name.upper()}_DATABASE_URL"
    if key not in env and f"{name.upper()}_DATABASE_PASSWORD" not in env:
        password = database_passwords(STATE).get(name)
        if password is None:
            raise RuntimeError(f"no database password for {name} in {STATE / 'pg' / 'passwords.env'}; "
                               "run deploy/local/postgres.sh bootstrap")
        port = env.get("PGPORT_ESTAFETTE", "15432")
        env[key] = database_url(name, password, port, env.get("ESTAFETTE_DB", "estafette"))
    return env


def _wait_healthy(urls: dict[str, str], procs: dict[str, subprocess.Popen[bytes]], timeout: float) -> None:
    """Wait until every service's /readyz answers 200 (ready, not merely alive)."""
    pending = dict(urls)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for name, url in list(pending.items()):
            if procs[name].poll() is not None:
                raise RuntimeError(f"{name} exited with code {procs[name].returncode}; see {STATE / 'logs' / (name + '.log')}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    del pending[name]
            except httpx.HTTPError:
                pass
        time.sleep(0.2)
    if pending:
        raise TimeoutError(f"not ready after {timeout:.0f}s: {', '.join(pending)} (see their /readyz; logs in {STATE / 'logs'})")


#: A service exits within 10 s of SIGTERM (runtime/app.py); one still running after this is killed.
STOP_SECONDS = 15


def _stop(procs: dict[str, subprocess.Popen[bytes]]) -> None:
    """SIGTERM to every service at once, then wait for them all (one deadline); kill any left."""
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    for name, proc in procs.items():
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"  {name} did not stop in {STOP_SECONDS} s: killing it", flush=True)
            proc.kill()
            proc.wait()


def apply_regions() -> None:
    """National topics, then deploy/regions.toml applied (each region's topics, grants, registry)."""
    import asyncio

    from estafette.tools import regions

    records = regions.load()
    asyncio.run(regions.apply(operator_kafka(), records))
    print(f"regions: {len(records)} applied from {regions.REGISTRY_FILE.relative_to(ROOT)}", flush=True)


#: The instances `make run` starts besides one per service: notifications' e-mail sender runs alone
#: (`--part sender`, at a lower CPU priority: estafette/tools/serve.py), its main instance without it.
#: Name -> (service, part); its HTTP port is its service's + WORKER_PORT_OFFSET (8013).
WORKERS = {"notifications-sender": ("notifications", "sender")}
WORKER_PORT_OFFSET = 10


def instances() -> dict[str, tuple[str, str, int]]:
    """Every instance `make run` starts: name -> (service, part, HTTP port)."""
    parted = {svc for svc, _ in WORKERS.values()}
    found = {name: (name, "main" if name in parted else "", service(name).settings().http_port) for name in SERVICES}
    for name, (svc, part) in WORKERS.items():
        found[name] = (svc, part, found[svc][2] + WORKER_PORT_OFFSET)
    return found


def up(keep_infra: bool = False) -> None:
    t0 = time.monotonic()
    subprocess.run([str(INFRA), "up"], check=True)
    apply_regions()
    logs = STATE / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    started = instances()
    urls = {name: f"http://127.0.0.1:{port}" for name, (_, _, port) in started.items()}
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        for name, (svc, part, port) in started.items():
            log = (logs / f"{name}.log").open("ab")
            env = service_env(svc) | {f"{svc.upper()}_HTTP_PORT": str(port)}
            procs[name] = subprocess.Popen(
                [sys.executable, "-m", "estafette.tools.cli", "serve", svc, *(["--part", part] if part else [])],
                env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True,
            )
        _wait_healthy(urls, procs, timeout=120)
        mail = f"http://127.0.0.1:{os.environ.get('MAILSINK_HTTP_PORT', '8025')}"
        print(f"\nEstafette is up in {time.monotonic() - t0:.1f} s:", flush=True)
        for name, url in urls.items():
            print(f"  {name:<14} {url}   (health {url}/healthz, ready {url}/readyz, metrics {url}/metrics)")
        print(f"  {'API docs':<14} {urls['registration']}/docs  {urls['matching']}/docs  {urls['reporting']}/docs")
        print(f"  {'dashboard':<14} {urls['reporting']}/dashboard?lang=nl   (de, en)")
        print(f"  {'relay':<14} {urls['reporting']}/relay?lang=nl   (feeds: /feeds/dashboard, /relay/feed.atom, /relay/feed.json)")
        print(f"  {'mail sink':<14} {mail}   (or: .venv/bin/estafette mail list)")
        print(f"  logs           {logs}/<service>.log\nPress Ctrl-C to stop everything.", flush=True)
        while not stopping:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    print(f"{name} exited with code {proc.returncode}; stopping (log: {logs / (name + '.log')})", flush=True)
                    stopping = True
            time.sleep(0.5)
    finally:
        print("\nStopping services ...", flush=True)
        _stop(procs)
        if not keep_infra:
            subprocess.run([str(INFRA), "down"], check=False)
        print("Stopped.", flush=True)
