"""Service app factory helpers.

    rt = Runtime(settings, migrations=Path(__file__).parent / "migrations", repository=Repository)
    rt.subscribe(OFFERS, "offers", {OfferPublished: handlers.offer_published, ...})
    app = rt.asgi_app(http_api=fastapi_app)          # served by uvicorn

The app is a FastStream `AsgiFastStream` (Kafka broker + lifecycle) that serves `/healthz`, `/readyz`
and `/metrics`, and hands every other HTTP path to the service's own FastAPI app, if it has one.
Start-up: database pool, migrations, then the broker (subscribers), then the outbox relay and any
background loops. While the database is unreachable (restarting, recovering from a crash), the pool
and the relay's start are retried with back-off for up to `STARTUP_RETRY_SECONDS` instead of failing
the start. Topics are not created by services (their Kafka principals may not): `estafette
kafka setup` and `estafette regions apply` do.

Kafka outages (docs/faults.md): every Kafka client of the service retries with the service's back-off
(`KafkaAccess.with_backoff`, runtime/kafka.py), aiokafka's flood of error lines becomes one
`kafka unreachable` line, a summary a minute and `kafka reachable again` (runtime/logging.py; the
runtime's Kafka watch asks the broker every `KAFKA_WATCH_SECONDS` during an outage), and the HTTP API
and the outbox keep accepting work: the relay publishes it when the broker is back.

Health: `/healthz` is liveness (the process answers; its database and Kafka are reachable).
`/readyz` is readiness, 200 only when the instance does its work: the database answers, every
consumer group has joined and holds its assignment, the outbox relay runs, and the API keys and the
region registry have been read to their end; otherwise 503 with a JSON body naming what is not ready
(`not_ready`). An instance that joined its group but was given 0 partitions (more members than
partitions) is ready: it is a standby member that takes partitions over at the next rebalance, and
its HTTP API works; while its group rebalances after a subscription change (a region added) it is
not ready until the new assignment arrives. A stopping instance is not ready.

Shutdown (SIGTERM; uvicorn first stops taking HTTP connections and lets requests in flight finish):
the consumers stop taking records and finish the batch in hand (else it is handed back: its offsets
are not committed and its transaction is rolled back), then the background loops stop, then the
outbox relay (rows it did not publish stay in the outbox), and only then the database pool closes.
Each step has a bound (`SHUTDOWN_SECONDS`), so a service exits within 10 s.

Parts (ServiceSettings.part): an instance runs everything ("all", the default), everything but the
service's workers ("main"), or one worker alone (e.g. notifications' "sender": its loop and the outbox
relay, with /healthz, /readyz and /metrics, no consumers and no service API). `make run` runs
notifications as two instances, main and sender, the sender at a lower CPU priority (issue 13).

Regions: a subscription to a regional topic (schemas/topics.py) reads that kind of topic of every
region the instance serves. An instance started without `--regions` subscribes by pattern (group
`<service>`) and picks up a region added later at its next metadata refresh; with `--regions a,b` it
has one consumer group per region (`<service>.a`, `<service>.b`) and holds no partition of any other
region's topics.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Union

import asyncpg
import structlog
from faststream import AckPolicy
from faststream.asgi import AsgiFastStream, AsgiResponse, get
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import CollectorRegistry, make_asgi_app

from estafette.runtime import heap
from estafette.runtime.auth import Authenticator, KeyRing, Links, Oidc, OidcConfig
from estafette.runtime.clock import Clock
from estafette.runtime.consumer import (
    INFRASTRUCTURE_ERRORS, BatchConsumer, ConsumerMetrics, EventHandler, Handler, TombstoneHandler, dispatch,
)
from estafette.runtime.db import create_pool, migrate
from estafette.runtime.docs import RegionalAsyncAPI, asyncapi_route
from estafette.runtime.logging import configure_logging, kafka_outage_log
from estafette.runtime.loops import pause
from estafette.runtime.outbox import OutboxRelay
from estafette.runtime.regions import RegionBook
from estafette.runtime.settings import ServiceSettings
from estafette.runtime.uow import UnitOfWork
from schemas import Event, Topic
from schemas.topics import parse as parse_topic
from schemas.topics import subscription_pattern

log = structlog.get_logger(__name__)

#: A background loop: runs until the event is set, then returns.
BackgroundLoop = Callable[[asyncio.Event], Awaitable[None]]
#: Shutdown bound of each step (seconds): consumers finish their batch, loops, relay, pool. Their sum
#: stays under the 10 s a service has to exit after SIGTERM.
SHUTDOWN_SECONDS = {"consumers": 2.5, "loops": 2.0, "relay": 2.0, "pool": 1.0}
#: How long a start-up step (database pool and migrations, the outbox relay) is retried while the
#: database is unreachable, e.g. restarting after a crash.
STARTUP_RETRY_SECONDS = 120.0
#: How often, during a Kafka outage, the runtime asks the broker whether it answers again.
KAFKA_WATCH_SECONDS = 5.0


def consumer_state(consumer: Any) -> tuple[bool, str]:
    """Is an aiokafka consumer of a group ready, and how it stands. Ready: it has joined its group and
    holds the assignment of the current subscription, even one of 0 partitions (a standby member)."""
    if consumer is None:
        return False, "not started"
    try:
        partitions = consumer.assignment()
        if partitions:
            return True, f"{len(partitions)} partitions"
        # aiokafka keeps no public "joined" flag: the subscription's assignment is None until the
        # group's join (of the current subscription) has completed, an empty one after a join that
        # gave this member no partition.
        subscription = consumer._subscription.subscription
        if subscription is not None and subscription.assignment is not None:
            return True, "joined, 0 partitions (standby)"
    except AttributeError:
        return False, "unknown"
    return False, "joining its group"


async def _undecoded(message: Any) -> None:
    """FastStream decoder that leaves the records alone (see Runtime._register_consumer)."""
    return None


class ServiceApp(AsgiFastStream):
    """AsgiFastStream that passes unknown HTTP paths to the service's HTTP API (FastAPI)."""

    def __init__(
        self, *args: Any, http_api: Any = None, consumed_topics: list[Topic] | None = None,
        produced_topics: list[Topic] | None = None, **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.http_api = http_api
        #: The topics the service consumes and publishes (for the AsyncAPI document, estafette/tools/
        #: asyncapi.py, and the check against services/registry.py that its Kafka grants come from).
        self.consumed_topics = consumed_topics or []
        self.produced_topics = produced_topics or []

    async def not_found(self, scope: Any, receive: Any, send: Any) -> None:
        if self.http_api is not None and scope["type"] == "http":
            await self.http_api(scope, receive, send)
        else:
            await super().not_found(scope, receive, send)


class Runtime:
    """Everything a service's handlers and use cases need at run time, built once per app."""

    def __init__(
        self, settings: ServiceSettings, migrations: Path, repository: Callable[[asyncpg.Connection], Any] | None = None
    ) -> None:
        configure_logging(settings.service_name, settings.log_level)
        self.settings = settings
        self.name = settings.service_name
        self.migrations = migrations
        self.registry = CollectorRegistry()
        #: The service's Kafka access, with the service's retry back-off (runtime/kafka.py).
        self.kafka = settings.kafka.with_backoff()
        #: The regions this instance serves (None: every region, also ones added later).
        self.served_regions = settings.served_regions
        self.broker = KafkaBroker(
            settings.kafka_bootstrap,
            client_id=self.name,
            security=self.kafka.security(),
            metadata_max_age_ms=settings.kafka_metadata_max_age_ms,
            retry_backoff_ms=self.kafka.retry_backoff_ms,  # quiet, cheap outages (runtime/kafka.py)
            acks="all",  # (the broker's own producer is not used: the outbox relay has one)
            graceful_timeout=SHUTDOWN_SECONDS["consumers"],  # a batch in hand at shutdown may finish
            middlewares=[KafkaPrometheusMiddleware(registry=self.registry, app_name=self.name)],
            logger=logging.getLogger(f"{self.name}.kafka"),
        )
        oidc = (
            Oidc(OidcConfig(settings.oidc_jwks_url, settings.oidc_issuer, settings.oidc_audience,
                            settings.oidc_role_claim, settings.oidc_region_claim))
            if settings.oidc_jwks_url else None
        )
        #: Who is asking (API keys from the key topic, OIDC tokens); set on the HTTP API's state.
        self.auth = Authenticator(KeyRing(self.kafka), oidc)
        #: The region registry (estafette.regions.v1), kept current.
        self.regions = RegionBook(self.kafka)
        self.clock = Clock.from_settings(settings)  #: "now" for every use case (a test clock in tests)
        self.links = Links(settings.link_secret.get_secret_value(), self.clock)
        self.uow: UnitOfWork[Any] = (
            UnitOfWork(settings.db_schema, repository) if repository else UnitOfWork(settings.db_schema)
        )
        self.consumer_metrics = ConsumerMetrics(self.registry)
        self._consumers: dict[Topic, BatchConsumer] = {}
        self._topics: list[Topic] = []
        self._produced: list[Topic] = []
        self.relay: OutboxRelay | None = None
        #: Background loops with the worker they belong to (None: the main part's); the runtime's own
        #: (API keys, region registry, Kafka watch) run in every part.
        self._loops: list[tuple[str | None, BackgroundLoop]] = [
            ("", self.auth.keys.run), ("", self.regions.run), ("", self._watch_kafka),
        ]
        self._loop_tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._started = False

    # --- wiring -------------------------------------------------------------------------------
    def subscribe(
        self,
        topic: Topic,
        name: str,
        handler: Handler | Mapping[type[Event], EventHandler],
        *,
        tombstone: TombstoneHandler | None = None,
    ) -> None:
        """Hand each new event of `topic` to `handler(tx, event)` inside a transaction (see consumer.py);
        a mapping {event class: use case} dispatches on the event's type and ignores the others.
        `tombstone(tx, key)` is called for a null value on a compacted topic.

        A regional topic is read in every region this instance serves. All of a service's
        subscriptions share one Kafka consumer per consumer group (created in `asgi_app`), so a
        group joins once instead of rebalancing once per topic.
        """
        if topic in self._consumers:
            raise ValueError(f"{topic.kind} is already subscribed")
        if isinstance(handler, Mapping):
            handler = dispatch(handler)
        self._consumers[topic] = BatchConsumer(
            f"{self.name}.{name}", handler, self.uow, self.settings, self.consumer_metrics, tombstone
        )
        self._topics.append(topic)

    def consumer_groups(self) -> dict[str, list[str]]:
        """Consumer group -> the topic names (or the one pattern) it subscribes to."""
        regional = [t for t in self._topics if t.regional]
        national = [t for t in self._topics if not t.regional]
        if not self._topics:
            return {}
        if self.served_regions is None:
            return {self.name: [subscription_pattern(self._topics)]}
        groups = {f"{self.name}.{r}": [t.name_in(r) for t in regional] for r in self.served_regions if regional}
        if national:
            groups[self.name] = [t.name for t in national]
        return groups

    def _register_consumer(self) -> None:
        if not self._consumers:
            return

        async def consume(message: KafkaMessage) -> None:
            raw = message.raw_message
            records = raw if isinstance(raw, tuple | list) else (raw,)
            by_topic: dict[Topic, list[Any]] = {}
            for record in records:
                topic, _ = parse_topic(record.topic)
                by_topic.setdefault(topic, []).append(record)
            for topic, batch in by_topic.items():
                await self._consumers[topic].handle(batch)

        consume.__name__ = f"{self.name}_consumer"
        consume.__doc__ = "Events: " + "; ".join(
            f"{t.template}: {', '.join(e.__name__ for e in t.events)}" for t in self._topics
        )
        options: dict[str, Any] = dict(
            # The records are decoded by BatchConsumer (one bad record is dead-lettered there);
            # FastStream's own JSON decoding would fail the whole batch, again and again, on a
            # tombstone (no value) or a value that is not JSON.
            decoder=_undecoded,
            ack_policy=AckPolicy.NACK_ON_ERROR,
            auto_offset_reset="earliest",
            batch=True,
            max_records=self.settings.consume_batch_size,
            fetch_min_bytes=self.settings.consume_min_bytes,
            fetch_max_wait_ms=self.settings.consume_wait_ms,
        )
        for group, topics in self.consumer_groups().items():
            if self.served_regions is None:
                subscriber = self.broker.subscriber(pattern=topics[0], group_id=group, title=f"{group}:consumer", **options)
            else:
                subscriber = self.broker.subscriber(*topics, group_id=group, title=f"{group}:consumer", **options)
            subscriber(consume)

    def produces(self, *topics: Topic) -> None:
        """Declare the topics this service publishes (through its outbox), for the AsyncAPI document
        (a regional topic as its name with a `{region}` parameter)."""
        for topic in topics:
            self._produced.append(topic)
            payload = topic.events[0] if len(topic.events) == 1 else Union[topic.events]  # noqa: UP007
            self.broker.publisher(
                topic.template, title=f"{self.name}:{topic.template}", schema=payload,
                description=f"Events: {', '.join(e.__name__ for e in topic.events)}. Key: {topic.key}.",
            )

    def produces_records(self, topic: Topic, schema: type[Any], description: str) -> None:
        """Declare a topic of records (not events: e.g. the dashboard feed) this service publishes
        through its outbox (`tx.publish_raw`), for the AsyncAPI document."""
        self._produced.append(topic)
        self.broker.publisher(topic.template, title=f"{self.name}:{topic.template}", schema=schema, description=description)

    def background(self, loop: BackgroundLoop, *, worker: str | None = None) -> None:
        """Run `loop(stopping)` while the app runs (e.g. a scheduler). A `worker` loop (e.g.
        notifications' e-mail sender, `worker="sender"`) may run in an instance of its own: one started
        with `part` = the worker's name runs only it (see ServiceSettings.part)."""
        if worker in ("", "all", "main"):
            raise ValueError(f"{worker!r} is not a worker name")
        self._loops.append((worker, loop))

    @property
    def workers(self) -> list[str]:
        """The names of the service's workers (parts an instance may run alone)."""
        return sorted({w for w, _ in self._loops if w})

    def runs(self, worker: str | None) -> bool:
        """Whether this instance runs what belongs to `worker` (None: the main part; "": every part)."""
        part = self.settings.part
        return worker == "" or part == "all" or (part == "main" and worker is None) or part == worker

    @property
    def is_worker(self) -> bool:
        """This instance runs one worker alone: no consumers, no service API."""
        return self.settings.part not in ("all", "main")

    # --- lifecycle ----------------------------------------------------------------------------
    async def _on_startup(self) -> None:
        async def connect() -> None:
            pool = await create_pool(self.settings.database_url, self.settings.db_schema)
            try:
                await migrate(pool, self.settings.db_schema, self.migrations)
            except BaseException:
                pool.terminate()
                raise
            self.uow.pool = pool

        await self._retrying("database connection", connect)

    async def _after_startup(self) -> None:
        assert self.uow.pool is not None
        if self._stopping.is_set():  # stopped while the broker was still starting: start nothing
            return

        async def start_relay() -> None:
            relay = OutboxRelay(
                self.uow.pool,
                self.kafka,
                self.settings.db_schema,
                self.registry,
                batch_size=self.settings.outbox_batch_size,
                poll_seconds=self.settings.outbox_poll_seconds,
            )
            try:
                await relay.start()
            except BaseException:  # a half-started relay: stop it and forget its metrics (a new one registers them)
                await relay.stop(timeout=1.0)
                for metric in (relay.published, relay.lag):
                    self.registry.unregister(metric)
                raise
            self.relay = relay

        await self._retrying("outbox relay start", start_relay)
        if self._stopping.is_set():  # stopped while the relay was starting (its stop has run)
            return
        self._loop_tasks = [asyncio.create_task(loop(self._stopping)) for worker, loop in self._loops if self.runs(worker)]
        self._started = True
        heap.settle()
        log.info("service started", port=self.settings.http_port, part=self.settings.part,
                 regions=",".join(self.served_regions) if self.served_regions else "all")

    async def _retrying(self, what: str, step: Callable[[], Awaitable[None]]) -> None:
        """Run a start-up step; while the database is unreachable (it may be restarting, or still
        recovering from a crash) try again with back-off, for up to STARTUP_RETRY_SECONDS, instead of
        failing the start (or stop trying when the service is stopped meanwhile)."""
        deadline = asyncio.get_running_loop().time() + STARTUP_RETRY_SECONDS
        backoff = 0.5
        while True:
            try:
                await step()
                return
            except INFRASTRUCTURE_ERRORS as exc:
                if self._stopping.is_set() or asyncio.get_running_loop().time() > deadline:
                    raise
                log.warning("start-up step failed; retrying", step=what, error=repr(exc), retry_in=backoff)
                await pause(self._stopping, backoff)
                backoff = min(backoff * 2, 5.0)
                if self._stopping.is_set():
                    return

    async def _on_shutdown(self) -> None:
        """Stop taking work, then stop what uses the database (FastStream then stops the broker and
        calls `_after_shutdown`, which closes the pool): consumers, loops, relay, each bounded."""
        log.info("service stopping")
        self._stopping.set()  # /readyz answers 503 from now on
        await self._stop_consumers()
        await _bounded("background loops", self._loop_tasks, SHUTDOWN_SECONDS["loops"])
        if self.relay:
            await self.relay.stop(timeout=SHUTDOWN_SECONDS["relay"])

    async def _stop_consumers(self) -> None:
        """Each subscriber stops fetching, lets the batch in hand finish (FastStream's graceful
        timeout; else it is cancelled: rolled back, offsets uncommitted) and leaves its group."""

        async def stop(subscriber: Any) -> None:
            try:
                await subscriber.stop()
            except Exception as exc:  # noqa: BLE001 - shutting down: its partitions go back anyway
                log.warning("consumer did not stop cleanly", error=repr(exc))

        tasks = [asyncio.create_task(stop(s)) for s in self.broker.subscribers]
        await _bounded("consumers", tasks, SHUTDOWN_SECONDS["consumers"] + 0.5)

    async def _after_shutdown(self) -> None:
        pool = self.uow.pool
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), SHUTDOWN_SECONDS["pool"])
            except TimeoutError:
                log.warning("database connections still in use at shutdown; closing them")
                pool.terminate()
        log.info("service stopped")

    async def readiness(self) -> dict[str, str]:
        """Each readiness check and its state ("ok" when ready); see the module's docstring."""
        checks: dict[str, str] = {}
        if self._stopping.is_set():
            checks["service"] = "stopping"
        elif not self._started:
            checks["service"] = "starting"
        checks["database"] = await self._database_state()
        subscribers = {getattr(s, "group_id", None) or f"subscriber {i}": s for i, s in enumerate(self.broker.subscribers)}
        for group, subscriber in subscribers.items():
            ready, state = consumer_state(getattr(subscriber, "consumer", None))
            checks[f"consumer group {group}"] = "ok" if ready else state
        checks["outbox relay"] = "ok" if self.relay is not None and self.relay.running else "not running"
        checks["api keys"] = "ok" if self.auth.keys.ready.is_set() else "loading"
        checks["region registry"] = "ok" if self.regions.ready.is_set() else "loading"
        return checks

    async def _watch_kafka(self, stopping: asyncio.Event) -> None:
        """While Kafka is unreachable (as aiokafka's lines say: runtime/logging.py), ask the broker
        every few seconds whether it answers again, so the outage's end is logged once."""
        while not stopping.is_set():
            await pause(stopping, KAFKA_WATCH_SECONDS)
            outage = kafka_outage_log()
            if outage.unreachable and not stopping.is_set():
                try:
                    if await self.broker.ping(timeout=2):
                        outage.reachable()
                except Exception:  # noqa: BLE001 - still away
                    pass
                outage.tick()

    async def _database_state(self) -> str:
        try:
            if self.uow.pool is None:
                return "not connected"
            async with asyncio.timeout(2):
                await self.uow.pool.fetchval("SELECT 1")
            return "ok"
        except Exception:  # noqa: BLE001 - reported as down
            return "down"

    async def health(self) -> dict[str, str]:
        status = {"kafka": "down", "database": "down"}
        try:
            if await self.broker.ping(timeout=2):
                status["kafka"] = "ok"
                kafka_outage_log().reachable()
        except Exception:  # noqa: BLE001 - reported as down
            pass
        try:
            if self.uow.pool is not None:
                async with asyncio.timeout(2):
                    await self.uow.pool.fetchval("SELECT 1")
                status["database"] = "ok"
        except Exception:  # noqa: BLE001 - reported as down
            pass
        return status

    def asgi_app(self, http_api: Any = None) -> ServiceApp:
        part = self.settings.part
        if part not in ("all", "main", *self.workers):
            known = ", ".join(["all", "main", *self.workers])
            raise ValueError(f"{self.name} has no part {part!r} (its parts: {known})")
        if self.is_worker:  # a worker alone: health, readiness and metrics only
            http_api = None
        if http_api is not None:
            http_api.state.auth = self.auth
            http_api.state.links = self.links
        if not self.is_worker:
            self._register_consumer()

        @get
        async def healthz(scope: Any) -> AsgiResponse:
            status = await self.health()
            ok = all(v == "ok" for v in status.values())
            body = json.dumps({"service": self.name, "status": "ok" if ok else "unavailable", **status})
            return AsgiResponse(body.encode(), status_code=200 if ok else 503, headers={"content-type": "application/json"})

        @get
        async def readyz(scope: Any) -> AsgiResponse:
            checks = await self.readiness()
            not_ready = sorted(name for name, state in checks.items() if state != "ok")
            body = json.dumps({"service": self.name, "status": "not ready" if not_ready else "ready",
                               "not_ready": not_ready, "checks": checks})
            return AsgiResponse(body.encode(), status_code=503 if not_ready else 200,
                                headers={"content-type": "application/json", **({"retry-after": "1"} if not_ready else {})})

        return ServiceApp(
            self.broker,
            http_api=http_api,
            consumed_topics=list(self._topics),
            produced_topics=list(self._produced),
            asgi_routes=[("/healthz", healthz), ("/readyz", readyz), ("/metrics", make_asgi_app(self.registry))],
            on_startup=[self._on_startup],
            after_startup=[self._after_startup],
            on_shutdown=[self._on_shutdown],
            after_shutdown=[self._after_shutdown],
            specification=RegionalAsyncAPI(
                title=f"Estafette {self.name}", version="2", schema_version="3.0.0",
                service=self.name, consumed=list(self._topics),
            ),
            asyncapi_path=asyncapi_route("/asyncapi"),  # the viewer served locally (runtime/docs.py)
            logger=logging.getLogger(f"{self.name}.app"),
        )


async def _bounded(what: str, tasks: list[asyncio.Task[Any]], seconds: float) -> None:
    """Wait up to `seconds` for `tasks` to finish, then cancel the rest (and wait for that)."""
    if not tasks:
        return
    done, pending = await asyncio.wait(tasks, timeout=seconds)
    for task in done:
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.warning("stopped with an error", what=what, error=repr(exc))
    if pending:
        log.warning("did not stop in time; cancelled", what=what, tasks=len(pending), seconds=seconds)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
