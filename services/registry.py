"""The one list of Estafette's services: name, import path of its settings class and app factory.

Tools (`estafette serve`, `make run`'s supervisor, the AsyncAPI writer) and the test harness read it;
services never import each other, and nothing here imports a service until asked.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from schemas.topics import (
    DASHBOARD,
    DEAD_LETTERS,
    EDITIONS,
    FEEDBACK,
    MATCHES,
    NATIONAL_DEAD_LETTERS,
    NOTIFICATION_REQUESTS,
    NOTIFICATIONS,
    OFFERS,
    PARTICIPANTS,
    RELAY,
    SIGNUPS,
    Topic,
)


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    settings_class: str  # "module:Class"
    role: str  # one line for --help and the docs
    #: Regional services can run one instance per set of regions (`--regions`); national ones serve all.
    regional: bool
    #: What the service consumes and publishes: its Kafka principal is granted exactly this
    #: (estafette/tools/kafka_security.py); tests/contract checks it against the service's subscriptions.
    reads: tuple[Topic, ...] = ()
    writes: tuple[Topic, ...] = ()

    @property
    def app_factory(self) -> str:
        """For uvicorn: `services.<name>.main:create_app`."""
        return f"services.{self.name}.main:create_app"

    def settings(self) -> Any:
        module, _, cls = self.settings_class.partition(":")
        return getattr(importlib.import_module(module), cls)()

    def create_app(self, settings: Any = None) -> Any:
        return importlib.import_module(f"services.{self.name}.main").create_app(settings)


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec(
        "registration", "services.registration.config:RegistrationSettings",
        "editions, offers, sign-ups, approvals, feedback, participants' pages (HTTP)",
        regional=False, reads=(MATCHES,),
        writes=(EDITIONS, OFFERS, SIGNUPS, PARTICIPANTS, FEEDBACK, NOTIFICATION_REQUESTS, DEAD_LETTERS, RELAY),
    ),
    ServiceSpec(
        "matching", "services.matching.config:MatchingSettings", "match runs, assignments, seat offers",
        regional=True, reads=(EDITIONS, OFFERS, SIGNUPS), writes=(MATCHES, DEAD_LETTERS),
    ),
    ServiceSpec(
        "notifications", "services.notifications.config:NotificationsSettings", "e-mails to participants and hosts",
        regional=True, reads=(EDITIONS, OFFERS, SIGNUPS, PARTICIPANTS, MATCHES, NOTIFICATION_REQUESTS), writes=(NOTIFICATIONS, DEAD_LETTERS),
    ),
    ServiceSpec(
        "reporting", "services.reporting.config:ReportingSettings", "figures, dashboard",
        regional=False, reads=(EDITIONS, OFFERS, SIGNUPS, MATCHES, NOTIFICATIONS, FEEDBACK, RELAY),
        writes=(DEAD_LETTERS, NATIONAL_DEAD_LETTERS, DASHBOARD),
    ),
)
NAMES: tuple[str, ...] = tuple(s.name for s in SERVICES)
_BY_NAME = {s.name: s for s in SERVICES}


def service(name: str) -> ServiceSpec:
    """The service called `name`; ValueError naming the known ones otherwise."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown service {name!r}; choose one of {', '.join(NAMES)}") from None
