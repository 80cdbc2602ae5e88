"""`estafette up` (what `make run` calls): the whole platform on this machine, on real Kafka and Postgres.

Starts the infrastructure through deploy/local/infra.sh (Kafka, PostgreSQL, mail sink), then the four
services as processes, waits until every /healthz answers 200, prints the URLs, and on Ctrl-C stops
the services (gracefully) and then the infrastructure.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from services.registry import NAMES as SERVICES, service

ROOT = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("ESTAFETTE_STATE_DIR", ROOT / ".local"))
INFRA = ROOT / "deploy" / "local" / "infra.sh"


def _wait_healthy(urls: dict[str, str], procs: dict[str, subprocess.Popen[bytes]], timeout: float) -> None:
    pending = dict(urls)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for name, url in list(pending.items()):
            if procs[name].poll() is not None:
                raise RuntimeError(f"{name} exited with code {procs[name].returncode}; see {STATE / 'logs' / (name + '.log')}")
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    del pending[name]
            except httpx.HTTPError:
                pass
        time.sleep(0.2)
    if pending:
        raise TimeoutError(f"not healthy after {timeout:.0f}s: {', '.join(pending)} (logs in {STATE / 'logs'})")


def _stop(procs: dict[str, subprocess.Popen[bytes]]) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for name, proc in procs.items():
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            print(f"  {name} did not stop in 20 s: killing it", flush=True)
            proc.kill()


def up(keep_infra: bool = False) -> None:
    t0 = time.monotonic()
    subprocess.run([str(INFRA), "up"], check=True)
    logs = STATE / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    urls = {name: f"http://127.0.0.1:{service(name).settings().http_port}" for name in SERVICES}
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        for name in SERVICES:
            log = (logs / f"{name}.log").open("ab")
            procs[name] = subprocess.Popen(
                [sys.executable, "-m", "estafette.tools.cli", "serve", name],
                stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True,
            )
        _wait_healthy(urls, procs, timeout=120)
        mail = f"http://127.0.0.1:{os.environ.get('MAILSINK_HTTP_PORT', '8025')}"
        print(f"\nEstafette is up in {time.monotonic() - t0:.1f} s:", flush=True)
        for name, url in urls.items():
            print(f"  {name:<14} {url}   (health {url}/healthz, metrics {url}/metrics)")
        print(f"  {'API docs':<14} {urls['registration']}/docs  {urls['matching']}/docs  {urls['reporting']}/docs")
        print(f"  {'dashboard':<14} {urls['reporting']}/dashboard?lang=nl   (de, en)")
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
