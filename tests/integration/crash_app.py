"""A minimal service on the shared runtime, for crash and poison-message tests.

It consumes the feedback topic and appends one row per event to `effect_log` (not idempotent on
purpose). A `learned` text of "poison" makes the handler fail every time.
"""

from __future__ import annotations

import sys
from pathlib import Path

import uvicorn
from pydantic_settings import SettingsConfigDict

from estafette.runtime.app import Runtime, ServiceApp
from estafette.runtime.settings import ServiceSettings
from estafette.runtime.uow import Transaction
from schemas import FeedbackSubmitted
from schemas.topics import FEEDBACK


class CrashSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CRASHTEST_", extra="ignore")
    service_name: str = "crashtest"
    http_port: int = 18009


async def append_effect(tx: Transaction, event: FeedbackSubmitted) -> None:
    if event.learned == "poison":
        raise ValueError("this record can never be handled")
    await tx.conn.execute("INSERT INTO effect_log (event_id, payload) VALUES ($1, $2)", event.event_id, event.feedback_id)


def create_app() -> ServiceApp:
    rt = Runtime(CrashSettings(), migrations=Path(__file__).parent / "crash_migrations")
    rt.subscribe(FEEDBACK, "feedback", append_effect)
    return rt.asgi_app()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    settings = CrashSettings()
    uvicorn.run("tests.integration.crash_app:create_app", factory=True, port=settings.http_port, log_config=None)
