"""An instance's part (ServiceSettings.part): everything, everything but the workers, or one worker
alone (no consumers, no service API) — how `make run` runs notifications' e-mail sender apart."""

import asyncio
from pathlib import Path

import pytest
from fastapi import FastAPI

from estafette.runtime.app import Runtime
from estafette.runtime.settings import ServiceSettings
from estafette.tools.devserver import instances
from schemas.topics import SIGNUPS


class ShopSettings(ServiceSettings):
    model_config = {"env_prefix": "SHOP_"}
    service_name: str = "shop"


async def scheduler(stopping: asyncio.Event) -> None:
    await stopping.wait()


async def sender(stopping: asyncio.Event) -> None:
    await stopping.wait()


def runtime(part: str) -> Runtime:
    rt = Runtime(ShopSettings(part=part), migrations=Path("."))
    rt.subscribe(SIGNUPS, "signups", {})
    rt.background(scheduler)
    rt.background(sender, worker="sender")
    return rt


def loops_run(rt: Runtime) -> set[str]:
    return {loop.__name__ for worker, loop in rt._loops if worker != "" and rt.runs(worker)}


@pytest.mark.parametrize(("part", "loops"), [
    ("all", {"scheduler", "sender"}),
    ("main", {"scheduler"}),
    ("sender", {"sender"}),
])
def test_each_part_runs_its_own_loops(part: str, loops: set[str]) -> None:
    rt = runtime(part)
    assert rt.workers == ["sender"]
    assert loops_run(rt) == loops
    assert rt.runs(""), "the runtime's own loops (keys, regions, Kafka watch) run in every part"


@pytest.mark.parametrize(("part", "consumes", "serves_api"), [("all", True, True), ("main", True, True), ("sender", False, False)])
def test_a_worker_alone_neither_consumes_nor_serves_the_api(part: str, consumes: bool, serves_api: bool) -> None:
    rt = runtime(part)
    api = FastAPI()
    app = rt.asgi_app(http_api=api)
    assert bool(rt.broker.subscribers) is consumes
    assert (app.http_api is api) is serves_api


def test_an_unknown_part_is_refused_at_start_naming_the_parts() -> None:
    with pytest.raises(ValueError, match=r"no part 'mailer' \(its parts: all, main, sender\)"):
        runtime("mailer").asgi_app()


def test_a_worker_name_cannot_be_a_part_name() -> None:
    with pytest.raises(ValueError, match="not a worker name"):
        Runtime(ShopSettings(), migrations=Path(".")).background(sender, worker="main")


def test_make_run_starts_notifications_main_and_its_sender_apart_on_their_own_ports() -> None:
    found = instances()
    assert found["notifications"][:2] == ("notifications", "main")
    assert found["notifications-sender"][:2] == ("notifications", "sender")
    ports = [port for _, _, port in found.values()]
    assert len(set(ports)) == len(ports)
    assert all(part == "" for name, (_, part, _) in found.items() if name not in ("notifications", "notifications-sender"))
