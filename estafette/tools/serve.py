"""Serve one service with uvicorn: `estafette serve registration` (JSON logs, graceful shutdown).

The server (issue 13, ingress): uvloop's event loop and the httptools HTTP parser (both from
`uvicorn[standard]`; the pure-Python h11 parser and asyncio's loop cost several times more CPU per
request), no access log (the runtime logs each request once, with its correlation id: runtime/http.py),
no `server` header.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import sys

import uvicorn

from estafette.tools.devserver import service_env
from services.registry import service as find_service


#: How much `--part <worker>` lowers the instance's CPU priority (nice). A worker's work waits
#: (e-mails queue in the database); the services that take input and keep consumer lag at zero come
#: first when the machine is busy, and the worker gets every idle cycle (Linux CFS weights: nice 10
#: gets ~1/10 of a nice-0 process's share when both want the CPU).
WORKER_NICE = 10


def serve(name: str, regions: str = "", part: str = "") -> None:
    try:
        spec = find_service(name)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    if regions:
        if not spec.regional:
            raise SystemExit(f"{name} is a national service: it serves every region (no --regions)")
        os.environ[f"{name.upper()}_REGIONS"] = regions
    if part:
        os.environ[f"{name.upper()}_PART"] = part
        if part not in ("all", "main"):
            os.nice(WORKER_NICE)
    # By hand on the local cluster: the role's password as `postgres.sh bootstrap` keeps it.
    try:
        os.environ.update({k: v for k, v in service_env(name).items() if k.startswith(name.upper())})
    except RuntimeError:
        pass  # no local cluster here: the settings say which variable is missing
    settings = spec.settings()
    # uvicorn re-raises SIGTERM (with the handler it found) after its graceful shutdown: without a
    # handler of ours the process would end killed (-15); a clean stop on SIGTERM is exit code 0.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    uvicorn.run(
        spec.app_factory,
        factory=True,
        host=settings.http_host,
        port=settings.http_port,
        **server_options(),
        timeout_graceful_shutdown=5,
    )


def server_options() -> dict[str, object]:
    """uvicorn's options for every service: uvloop and httptools when installed (they are, with
    `uvicorn[standard]`; a bare uvicorn falls back to asyncio and h11), no access log, no server header."""
    fast = all(importlib.util.find_spec(m) is not None for m in ("uvloop", "httptools"))
    return {
        "loop": "uvloop" if fast else "asyncio",
        "http": "httptools" if fast else "h11",
        "log_config": None,  # the app configures JSON logging itself
        "access_log": False,  # the runtime logs every request (runtime/http.py)
        "server_header": False,
    }
