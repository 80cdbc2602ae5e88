"""Serve one service with uvicorn: `estafette serve registration` (JSON logs, graceful shutdown)."""

from __future__ import annotations

import importlib

import uvicorn

SERVICES = ("registration", "matching", "notifications", "reporting")


def settings_for(service: str):  # noqa: ANN201 - each service has its own settings class
    config = importlib.import_module(f"services.{service}.config")
    (cls,) = [v for k, v in vars(config).items() if k.endswith("Settings") and k != "ServiceSettings"]
    return cls()


def serve(service: str) -> None:
    if service not in SERVICES:
        raise SystemExit(f"unknown service {service!r}; choose one of {', '.join(SERVICES)}")
    settings = settings_for(service)
    uvicorn.run(
        f"services.{service}.main:create_app",
        factory=True,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,  # the app configures JSON logging itself
        access_log=False,
        timeout_graceful_shutdown=15,
    )
