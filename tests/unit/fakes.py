"""A fake unit of work for service-layer unit tests (cosmicpython's FakeUnitOfWork, async).

    repo = FakeRepository()                 # each service's in-memory repository (tests/unit/<svc>/fakes.py)
    uow = FakeUnitOfWork(repo)
    await service.submit_signup(uow, ...)
    assert uow.published == [...]           # events of committed transactions only
    assert uow.commits == 1

A transaction that raises is rolled back: the repository's state is restored and its events are
dropped, as the database and the outbox would do. `tx.claim` dedupes like the inbox.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from estafette.runtime.access import Principal
from schemas import Event

R = TypeVar("R")
E = TypeVar("E", bound=Event)


class FakeTransaction(Generic[R]):
    def __init__(self, repo: R, inbox: set[tuple[str, uuid.UUID]]) -> None:
        self.repo = repo
        self.events: list[Event] = []
        self.raw: list[tuple[str, str, str, str | None]] = []
        self.committed: list[Callable[[], object]] = []
        self._inbox = inbox

    def after_commit(self, action: Callable[[], object]) -> None:
        self.committed.append(action)

    def publish(self, *events: Event) -> None:
        self.events.extend(events)

    def publish_raw(self, topic: str, key: str, event_type: str, payload_json: str | None) -> None:
        """A message that is not an event (a tombstone: `payload_json` None), as (topic, key, type, payload)."""
        self.raw.append((topic, key, event_type, payload_json))

    async def claim(self, consumer: str, events: Sequence[E]) -> list[E]:
        fresh = []
        for event in events:
            if (consumer, event.event_id) not in self._inbox:
                self._inbox.add((consumer, event.event_id))
                fresh.append(event)
        return fresh


class FakeUnitOfWork(Generic[R]):
    def __init__(self, repo: R) -> None:
        self.repo = repo
        self.published: list[Event] = []
        #: Raw messages (tombstones) of committed transactions, in order: (topic, key, type, payload).
        self.raw: list[tuple[str, str, str, str | None]] = []
        self.commits = 0
        self.rollbacks = 0
        self._inbox: set[tuple[str, uuid.UUID]] = set()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[FakeTransaction[R]]:
        saved: dict[str, Any] = copy.deepcopy(vars(self.repo))
        inbox = set(self._inbox)
        tx = FakeTransaction(self.repo, self._inbox)
        try:
            yield tx
        except BaseException:
            vars(self.repo).clear()
            vars(self.repo).update(saved)
            self._inbox.clear()
            self._inbox.update(inbox)
            self.rollbacks += 1
            raise
        self.published.extend(tx.events)
        self.raw.extend(tx.raw)
        for action in tx.committed:
            action()
        self.commits += 1

    def of_type(self, cls: type[E]) -> list[E]:
        """The published events of one class, in order."""
        return [e for e in self.published if isinstance(e, cls)]


class FakeAuthenticator:
    """Stands in for the runtime's `Authenticator` (`app.state.auth`) in HTTP-level unit tests: a
    bearer credential is the name of a principal in `principals`; any other credential is refused."""

    def __init__(self, principals: Mapping[str, Principal]) -> None:
        self.principals = dict(principals)

    async def principal(self, credential: str) -> Principal | None:
        return self.principals.get(credential)


@dataclass
class FakeRecord:
    """What a consumer reads from aiokafka (ConsumerRecord's fields that the runtime uses)."""

    topic: str
    value: bytes | None
    key: bytes | None = None
    partition: int = 0
    offset: int = 0
