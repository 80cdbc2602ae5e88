"""Service app factory helpers.

    rt = Runtime(settings, migrations=Path(__file__).parent / "migrations", repository=Repository)
    rt.subscribe(OFFERS, "offers", {OfferPublished: handlers.offer_published, ...})
    app = rt.asgi_app(http_api=fastapi_app)          # served by uvicorn

The app is a FastStream `AsgiFastStream` (Kafka broker + lifecycle) that serves `/healthz` and
`/metrics`, and hands every other HTTP path to the service's own FastAPI app, if it has one.
Start-up: database pool, migrations, then the broker (subscribers), then the outbox relay and any
background loops. Shutdown runs in reverse and lets in-flight work finish. Topics are not created by
services (their Kafka principals may not): `estafette kafka setup` and `estafette regions apply` do.

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

from estafette.runtime.auth import Authenticator, KeyRing, Links, Oidc, OidcConfig
from estafette.runtime.consumer import BatchConsumer, ConsumerMetrics, EventHandler, Handler, TombstoneHandler, dispatch
from estafette.runtime.db import create_pool, migrate
from estafette.runtime.docs import RegionalAsyncAPI, asyncapi_route
from estafette.runtime.logging import configure_logging
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
        self.kafka = settings.kafka
        #: The regions this instance serves (None: every region, also ones added later).
        self.served_regions = settings.served_regions
        self.broker = KafkaBroker(
            settings.kafka_bootstrap,
            client_id=self.name,
            security=self.kafka.security(),
            metadata_max_age_ms=settings.kafka_metadata_max_age_ms,
            acks="all",  # (the broker's own producer is not used: the outbox relay has one)
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
        self.links = Links(settings.link_secret.get_secret_value())
        self.uow: UnitOfWork[Any] = (
            UnitOfWork(settings.db_schema, repository) if repository else UnitOfWork(settings.db_schema)
        )
        self.consumer_metrics = ConsumerMetrics(self.registry)
        self._consumers: dict[Topic, BatchConsumer] = {}
        self._topics: list[Topic] = []
        self._produced: list[Topic] = []
        self.relay: OutboxRelay | None = None
        self._loops: list[BackgroundLoop] = [self.auth.keys.run, self.regions.run]
        self._loop_tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()

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

    def background(self, loop: BackgroundLoop) -> None:
        """Run `loop(stopping)` while the app runs (e.g. an e-mail sender)."""
        self._loops.append(loop)

    # --- lifecycle ----------------------------------------------------------------------------
    async def _on_startup(self) -> None:
        self.uow.pool = await create_pool(self.settings.database_url, self.settings.db_schema)
        await migrate(self.uow.pool, self.settings.db_schema, self.migrations)

    async def _after_startup(self) -> None:
        assert self.uow.pool is not None
        self.relay = OutboxRelay(
            self.uow.pool,
            self.kafka,
            self.settings.db_schema,
            self.registry,
            batch_size=self.settings.outbox_batch_size,
            poll_seconds=self.settings.outbox_poll_seconds,
        )
        await self.relay.start()
        self._loop_tasks = [asyncio.create_task(loop(self._stopping)) for loop in self._loops]
        log.info("service started", port=self.settings.http_port,
                 regions=",".join(self.served_regions) if self.served_regions else "all")

    async def _on_shutdown(self) -> None:
        self._stopping.set()
        await asyncio.gather(*self._loop_tasks, return_exceptions=True)
        if self.relay:
            await self.relay.stop()

    async def _after_shutdown(self) -> None:
        if self.uow.pool is not None:
            await self.uow.pool.close()
        log.info("service stopped")

    async def health(self) -> dict[str, str]:
        status = {"kafka": "down", "database": "down"}
        try:
            if await self.broker.ping(timeout=2):
                status["kafka"] = "ok"
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
        if http_api is not None:
            http_api.state.auth = self.auth
            http_api.state.links = self.links
        self._register_consumer()

        @get
        async def healthz(scope: Any) -> AsgiResponse:
            status = await self.health()
            ok = all(v == "ok" for v in status.values())
            body = json.dumps({"service": self.name, "status": "ok" if ok else "unavailable", **status})
            return AsgiResponse(body.encode(), status_code=200 if ok else 503, headers={"content-type": "application/json"})

        return ServiceApp(
            self.broker,
            http_api=http_api,
            consumed_topics=list(self._topics),
            produced_topics=list(self._produced),
            asgi_routes=[("/healthz", healthz), ("/metrics", make_asgi_app(self.registry))],
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
