"""The relay's scheduled steps (estafette/runtime/scheduler.py), keyed by leg id: each is one typed call
of the service, in the transaction that marks the step done (so the baton moves exactly once)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from estafette.runtime.clock import Now
from estafette.runtime.scheduler import Step, StepHandler
from services.registration import service

if TYPE_CHECKING:
    from estafette.runtime.uow import Tx
    from services.registration.repository import Repository


def steps(clock: Now) -> dict[str, StepHandler]:
    """The handlers of the relay's step kinds, on the platform clock `clock` (`rt.clock`)."""

    async def leg_start(tx: Tx[Repository], step: Step) -> None:
        await service.relay_leg_start(tx, step.key, now=clock.now())

    async def handover(tx: Tx[Repository], step: Step) -> None:
        await service.relay_handover(tx, step.key, now=clock.now())

    return {service.RELAY_LEG_START: leg_start, service.RELAY_HANDOVER: handover}
