"""Serve one service with uvicorn: `estafette serve registration` (JSON logs, graceful shutdown)."""

from __future__ import annotations

import os
import signal
import sys

import uvicorn

from estafette.tools.devserver import service_env
from services.registry import service as find_service


def serve(name: str, regions: str = "") -> None:
    try:
        spec = find_service(name)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    if regions:
        if not spec.regional:
            raise SystemExit(f"{name} is a national service: it serves every region (no --regions)")
        os.environ[f"{name.upper()}_REGIONS"] = regions
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
        log_config=None,  # the app configures JSON logging itself
        access_log=False,
        timeout_graceful_shutdown=5,
    )
