"""The composition root: the one module that reads settings, builds adapters and domain services,
assembles the GraphQL schema and the Starlette app. Nothing connects at import time; resources
open in ``open_container`` (driven by the app's lifespan or by a CLI command) and close with it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.ides import get_graphql_ide_html
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import Message

from adapters.bedrock.analyst import BedrockAnalyst
from adapters.bedrock.config import parse_bedrock_url, parse_price_table, price_for
from adapters.bedrock.prompts import load_prompt
from adapters.dynamodb.ai_usage import DynamoAiUsageStore
from adapters.dynamodb.anomalies import DynamoAnomalyStore, DynamoInsightStore
from adapters.dynamodb.client import DynamoClient
from adapters.dynamodb.config import DynamoConfig, DynamoConfigError
from adapters.dynamodb.jobs import DynamoJobStore
from adapters.dynamodb.outbox import DynamoOutbox
from adapters.dynamodb.predictions import DynamoPredictionStore
from adapters.dynamodb.recommendations import DynamoRecommendationStore
from adapters.dynamodb.segments import DynamoSegmentStore
from adapters.dynamodb.stores import (
    DynamoCustomerStore,
    DynamoIdempotencyStore,
    DynamoProductStore,
    DynamoPurchaseStore,
)
from adapters.dynamodb.tables import TableSetup
from adapters.kinesis.resources import KinesisResources, open_kinesis, provision
from adapters.memory.bus import MemoryBus
from adapters.memory.cache import MemoryCache
from adapters.redis.bus import RedisBus
from adapters.redis.cache import RedisCache
from adapters.redis.connection import RedisOptions, RedisUrlError, parse_redis_url
from adapters.redis.lease import RedisRelayLease
from adapters.sqlite.ai_usage import SqliteAiUsageStore
from adapters.sqlite.anomalies import SqliteAnomalyStore, SqliteInsightStore
from adapters.sqlite.database import SqliteDatabase
from adapters.sqlite.event_log import SqliteEventLog
from adapters.sqlite.jobs import SqliteJobStore
from adapters.sqlite.migrations import latest_version
from adapters.sqlite.outbox import SqliteOutbox
from adapters.sqlite.predictions import SqlitePredictionStore
from adapters.sqlite.recommendations import SqliteRecommendationStore
from adapters.sqlite.segments import SqliteSegmentStore
from adapters.sqlite.stores import (
    SqliteCustomerStore,
    SqliteIdempotencyStore,
    SqliteProductStore,
    SqlitePurchaseStore,
)
from domain.access import Principal
from domain.clock import Clock, SystemClock
from domain.errors import DomainError, ValidationError
from domain.events import DomainEvent
from domain.ports import (
    AiUsageStore,
    AnomalyStore,
    Cache,
    CustomerStore,
    EventLog,
    EventStream,
    HealthCheck,
    InsightStore,
    JobStore,
    Outbox,
    PredictionStore,
    ProductStore,
    PurchaseStore,
    RecommendationStore,
    RelayLease,
    ReplayBus,
    SegmentStore,
)
from domain.services.analyst import AnalystService
from domain.services.anomalies import AnomalyService
from domain.services.catalogue import CatalogueService
from domain.services.customers import CustomerService
from domain.services.idempotency import Idempotency
from domain.services.importing import TransactionImporter
from domain.services.jobs import JobService
from domain.services.local_analyst import LocalAnalyst
from domain.services.outbox import OutboxRelay
from domain.services.predictions import (
    PredictionService,
    PredictionSettings,
    PredictionUpdater,
)
from domain.services.purchases import PurchaseLimits, PurchaseService
from domain.services.recommendations import RecommendationService
from domain.services.relay import EventRelay
from domain.services.segment_updates import SegmentSweeper, SegmentUpdater
from domain.services.segment_writer import LocalSegmentWriter
from domain.services.segments import SegmentService, SegmentSettings
from schema.auth import AuthenticationError, Authenticator
from schema.collector import CollectorSchedule
from schema.context import Context, Services
from schema.http import graphql_endpoint
from schema.ratelimit import RateLimiter
from schema.schema import OmnixSchema, build_schema
from schema.settings import Settings, SettingsError
from subscriptions.hub import SubscriptionHub
from subscriptions.shared import SharedStreams

log = logging.getLogger("omnix")

ANONYMOUS = Principal(subject="anonymous", roles=frozenset())


@dataclass
class Container:
    """Everything a request, a worker or a CLI command needs, built once per process."""

    settings: Settings
    clock: Clock
    customers: CustomerService
    purchases: PurchaseService
    catalogue: CatalogueService
    importer: TransactionImporter
    # The store's own event log, read by position in this process (SQLite); None on DynamoDB.
    events: EventLog | None
    bus: ReplayBus
    # Tails ``events`` onto the bus when that log is the event log (the embedded default).
    relay: EventRelay | None
    customer_store: CustomerStore
    product_store: ProductStore
    purchase_store: PurchaseStore
    cache: Cache
    predictions: PredictionService | None = None
    prediction_updater: PredictionUpdater | None = None
    analyst: AnalystService | None = None
    recommendations: RecommendationService | None = None
    anomalies: AnomalyService | None = None
    segments: SegmentService | None = None
    segment_updater: SegmentUpdater | None = None
    segment_sweeper: SegmentSweeper | None = None
    jobs: JobService | None = None
    health: list[HealthCheck] = field(default_factory=list)
    # With an external event log (Kinesis): the store outbox's relay, run by ``omnix serve``,
    # and consumers of the log by name, for ``omnix worker``.
    outbox_relay: OutboxRelay | None = None
    event_stream: Callable[[str], EventStream] | None = None
    kinesis: KinesisResources | None = None
    # Where predictions, segments and anomalies are kept current from the event log: True in
    # ``omnix serve`` on the embedded log (the updaters above, the sweeps beside them); False
    # with an external log, which ``omnix worker`` processes and sweeps (schema/worker.py).
    realtime_in_process: bool = True


def _scheme(url: str) -> str:
    return urlsplit(url).scheme


@dataclass
class _Stores:
    customers: CustomerStore
    products: ProductStore
    purchases: PurchaseStore
    idempotency: Idempotency
    health: list[HealthCheck]
    sqlite: SqliteDatabase | None = None
    predictions: PredictionStore | None = None
    recommendations: RecommendationStore | None = None
    anomalies: AnomalyStore | None = None
    insights: InsightStore | None = None
    segments: SegmentStore | None = None
    jobs: JobStore | None = None
    # Events the stores wrote beside their changes, for a relay to move to an external log.
    outbox: Outbox | None = None
    ai_usage: AiUsageStore | None = None


def _dynamo_config(settings: Settings) -> DynamoConfig:
    try:
        return DynamoConfig.from_url(settings.store_url)
    except DynamoConfigError as e:
        raise SettingsError(f"OMNIX_STORE: {e}") from e


async def _open_dynamo(settings: Settings, stack: AsyncExitStack) -> DynamoClient:
    client = DynamoClient(_dynamo_config(settings))
    await client.open()
    stack.push_async_callback(client.close)
    return client


async def _open_stores(settings: Settings, stack: AsyncExitStack) -> _Stores:
    """The stores named by OMNIX_STORE."""
    scheme = _scheme(settings.store_url or "sqlite://")
    if scheme == "dynamodb":
        client = await _open_dynamo(settings, stack)
        return _Stores(
            customers=DynamoCustomerStore(client),
            products=DynamoProductStore(client),
            purchases=DynamoPurchaseStore(client),
            idempotency=Idempotency(DynamoIdempotencyStore(client)),
            health=[client],
            outbox=DynamoOutbox(client),
            predictions=DynamoPredictionStore(client),
            recommendations=DynamoRecommendationStore(client),
            segments=DynamoSegmentStore(client),
            anomalies=DynamoAnomalyStore(client),
            insights=DynamoInsightStore(client),
            jobs=DynamoJobStore(client),
            ai_usage=DynamoAiUsageStore(client),
        )
    if scheme != "sqlite":
        raise SettingsError(
            f"OMNIX_STORE scheme {scheme!r} is not supported; use sqlite:// or dynamodb://"
        )
    path = settings.sqlite_path
    path.parent.mkdir(parents=True, exist_ok=True)
    db = SqliteDatabase(path, readers=settings.db_threads, timeout=settings.db_timeout_seconds)
    await db.open()
    stack.push_async_callback(db.close)
    return _Stores(
        customers=SqliteCustomerStore(db),
        products=SqliteProductStore(db),
        purchases=SqlitePurchaseStore(db),
        idempotency=Idempotency(SqliteIdempotencyStore(db)),
        health=[db],
        sqlite=db,
        predictions=SqlitePredictionStore(db),
        recommendations=SqliteRecommendationStore(db),
        segments=SqliteSegmentStore(db),
        anomalies=SqliteAnomalyStore(db),
        insights=SqliteInsightStore(db),
        jobs=SqliteJobStore(db),
    )


async def init_store(settings: Settings) -> list[str]:
    """Create or update what OMNIX_STORE needs (``omnix init``); one line per thing done.
    Safe to run again: what is already in place is left alone."""
    scheme = _scheme(settings.store_url or "sqlite://")
    if scheme == "dynamodb":
        async with AsyncExitStack() as stack:
            client = await _open_dynamo(settings, stack)
            return await TableSetup(client).ensure()
    async with AsyncExitStack() as stack:
        await _open_stores(settings, stack)  # opening a SQLite file runs its migrations
    return [
        f"{settings.sqlite_path}: SQLite store migrated to schema version {latest_version()} "
        "(migrations also run whenever the store opens)"
    ]


@dataclass
class _Events:
    log: EventLog | None
    live_relay: bool
    outbox_relay: OutboxRelay | None = None
    kinesis: KinesisResources | None = None


async def _open_event_log(settings: Settings, stores: _Stores, stack: AsyncExitStack) -> _Events:
    """The event log named by OMNIX_EVENTS: the SQLite store's own events table (sqlite://,
    relayed onto the bus in this process), or a Kinesis stream (kinesis://STREAM) fed from the
    store's outbox by this process and read by ``omnix worker``."""
    own = SqliteEventLog(stores.sqlite) if stores.sqlite is not None else None
    scheme = _scheme(settings.events_url)
    if scheme == "sqlite":
        if own is None:
            raise SettingsError(
                "OMNIX_EVENTS=sqlite:// needs a sqlite:// store; with OMNIX_STORE="
                f"{settings.store_url} use OMNIX_EVENTS=kinesis://STREAM"
            )
        return _Events(log=own, live_relay=True)
    if scheme == "kinesis":
        outbox = stores.outbox
        if outbox is None and own is not None:
            outbox = SqliteOutbox(own)
        if outbox is None:
            raise SettingsError(f"OMNIX_STORE {settings.store_url!r} has no outbox to relay")
        try:
            kinesis = await stack.enter_async_context(open_kinesis(settings.events_url))
        except ValidationError as e:
            raise SettingsError(f"OMNIX_EVENTS: {e.message}") from e
        relay = OutboxRelay(outbox, kinesis.publisher)
        return _Events(log=own, live_relay=False, outbox_relay=relay, kinesis=kinesis)
    raise SettingsError(
        f"OMNIX_EVENTS {settings.events_url!r} is not supported; use sqlite:// or kinesis://"
    )


async def init_event_log(settings: Settings) -> list[str]:
    """Create what OMNIX_EVENTS needs (``omnix init``): for kinesis://, the stream and the
    consumers' checkpoint table. Safe to run again."""
    if _scheme(settings.events_url) != "kinesis":
        return []
    try:
        return await provision(settings.events_url)
    except ValidationError as e:
        raise SettingsError(f"OMNIX_EVENTS: {e.message}") from e


async def _open_bus(
    settings: Settings, stack: AsyncExitStack
) -> tuple[ReplayBus, RelayLease | None]:
    """The live bus named by OMNIX_BUS: in-process (memory://, the default) or Redis
    (redis://, rediss://) shared by every process, with the lease that lets only one of them
    relay the event log onto it."""
    scheme = _scheme(settings.bus_url)
    if scheme == "memory":
        memory = MemoryBus()
        stack.push_async_callback(memory.close)
        return memory, None
    if scheme in {"redis", "rediss", "unix"}:
        options = _redis_options("OMNIX_BUS", settings.bus_url)
        bus = RedisBus(options, queue_size=max(settings.subscriber_queue_size, 1_000))
        stack.push_async_callback(bus.close)
        await bus.open()
        return bus, RedisRelayLease(bus.client, options)
    raise SettingsError(
        f"OMNIX_BUS {settings.bus_url!r} is not supported; use memory:// or redis://"
    )


def _redis_options(name: str, url: str) -> RedisOptions:
    try:
        return parse_redis_url(url)
    except RedisUrlError as e:
        raise SettingsError(f"{name}: {e}") from e


async def _open_cache(settings: Settings, stack: AsyncExitStack) -> Cache:
    """The TTL cache named by OMNIX_CACHE: in-process (memory://) or Redis (redis://,
    rediss://). A Redis cache connects on first use and never fails a caller."""
    scheme = _scheme(settings.cache_url)
    if scheme == "memory":
        return MemoryCache()
    if scheme in {"redis", "rediss", "unix"}:
        cache = RedisCache(_redis_options("OMNIX_CACHE", settings.cache_url))
        stack.push_async_callback(cache.close)
        return cache
    raise SettingsError(
        f"OMNIX_CACHE {settings.cache_url!r} is not supported; use memory:// or redis://"
    )


async def _open_analyst(settings: Settings, stack: AsyncExitStack) -> BedrockAnalyst | LocalAnalyst:
    """The analyst named by OMNIX_ANALYST: local:// (the statistical analyst, the default) or
    bedrock://MODEL_ID (Claude on Bedrock; the local analyst stays its fallback)."""
    scheme = _scheme(settings.analyst_url)
    if scheme == "local":
        return LocalAnalyst()
    if scheme != "bedrock":
        raise SettingsError(
            f"OMNIX_ANALYST {settings.analyst_url!r} is not supported; "
            "use local:// or bedrock://MODEL_ID"
        )
    try:
        options = parse_bedrock_url(settings.analyst_url)
        price = price_for(options.model_id, parse_price_table(settings.ai_prices))
    except ValidationError as e:
        raise SettingsError(f"{e.field}: {e.message}") from e
    analyst = BedrockAnalyst(options, load_prompt(), price)
    await analyst.open()
    stack.push_async_callback(analyst.close)
    return analyst


async def _open_ai_usage(
    settings: Settings, stores: _Stores, stack: AsyncExitStack
) -> AiUsageStore:
    """AI usage is kept in the store when it can hold it (SQLite, DynamoDB), otherwise in a
    SQLite file of its own in the data directory."""
    if stores.ai_usage is not None:
        return stores.ai_usage
    if stores.sqlite is not None:
        return SqliteAiUsageStore(stores.sqlite)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = SqliteDatabase(
        settings.data_dir / "ai_usage.db", readers=1, timeout=settings.db_timeout_seconds
    )
    await db.open()
    stack.push_async_callback(db.close)
    log.info("AI usage is recorded in %s", db.path)
    return SqliteAiUsageStore(db)


async def _no_predictions(customer_id: str) -> None:
    return None


@asynccontextmanager
async def open_container(
    settings: Settings, *, clock: Clock | None = None
) -> AsyncIterator[Container]:
    clock = clock or SystemClock()
    async with AsyncExitStack() as stack:
        stores = await _open_stores(settings, stack)
        events = await _open_event_log(settings, stores, stack)
        bus, relay_lease = await _open_bus(settings, stack)
        cache = await _open_cache(settings, stack)
        primary_analyst = await _open_analyst(settings, stack)
        ai_usage = await _open_ai_usage(settings, stores, stack)
        customer_store, product_store = stores.customers, stores.products
        purchase_store, idempotency = stores.purchases, stores.idempotency
        limits = PurchaseLimits(max_lines=settings.max_basket_lines)
        predictions = updater = None
        # The updaters tail a log this process reads by position: the embedded one only. With
        # an external log (Kinesis) the worker runs the same services as stream handlers.
        in_process = events.live_relay and events.log is not None
        if stores.predictions is not None:
            predictions = PredictionService(
                stores.predictions,
                customer_store,
                product_store,
                purchase_store,
                clock,
                PredictionSettings(
                    horizon_days=settings.forecast_horizon_days,
                    annual_discount_rate=settings.annual_discount_rate,
                ),
            )
        else:
            log.warning(
                "OMNIX_STORE %s keeps no predictions: forecasts are off", settings.store_url
            )
        recommendations = None
        if stores.recommendations is not None:
            recommendations = RecommendationService(
                stores.recommendations,
                product_store,
                purchase_store,
                clock,
                predictions=predictions.for_customers if predictions is not None else None,
            )
            if predictions is not None:
                predictions.also_refit(recommendations)
        segments = segment_updater = segment_sweeper = None
        if stores.segments is not None:
            segments = SegmentService(
                stores.segments,
                customer_store,
                product_store,
                purchase_store,
                predictions.for_customers if predictions is not None else None,
                LocalSegmentWriter(),
                cache,
                clock,
                SegmentSettings(active_window_days=settings.segment_active_days),
            )
            if recommendations is not None:
                recommendations.use_segments(segments.segment_codes)
            if in_process and events.log is not None:
                segment_updater = SegmentUpdater(
                    events.log,
                    segments,
                    follows=PredictionUpdater.CONSUMER if predictions is not None else None,
                )
            if settings.segment_sweep_seconds > 0:
                segment_sweeper = SegmentSweeper(
                    segments, interval_seconds=settings.segment_sweep_seconds
                )
        analyst = AnalystService(
            analyst=primary_analyst,
            fallback=LocalAnalyst(),
            customers=customer_store,
            purchases=purchase_store,
            products=product_store,
            predictions=predictions.for_customer if predictions else _no_predictions,
            segments=segments.segment_of if segments is not None else None,
            cache=cache,
            usage=ai_usage,
            clock=clock,
            ttl_seconds=settings.analysis_ttl_seconds,
        )
        anomalies = None
        if stores.anomalies and stores.insights and stores.predictions and predictions:
            anomalies = AnomalyService(
                anomalies=stores.anomalies,
                insights=stores.insights,
                predictions=stores.predictions,
                evaluate=predictions.for_customers,
                customers=customer_store,
                purchases=purchase_store,
                products=product_store,
                clock=clock,
                analyse=analyst.analyse,
                analyst_model=analyst.model,
            )
        if predictions is not None and in_process and events.log is not None:
            updater = PredictionUpdater(events.log, predictions, hook=anomalies)
        jobs = None
        if stores.jobs is not None:
            jobs = JobService(
                stores.jobs,
                idempotency,
                bus,
                clock,
                customers=customer_store,
                # Through the updaters when they run here, so their checkpoints move too.
                recompute=updater.recompute
                if updater is not None
                else (predictions.recompute if predictions is not None else None),
                refit=segment_updater.refit
                if segment_updater is not None
                else (segments.refit if segments is not None else None),
                analyse=analyst.analyse,
            )
        yield Container(
            settings=settings,
            clock=clock,
            customers=CustomerService(customer_store, idempotency, clock),
            purchases=PurchaseService(
                purchase_store,
                customer_store,
                product_store,
                idempotency,
                clock,
                limits,
            ),
            catalogue=CatalogueService(product_store),
            importer=TransactionImporter(
                customer_store, product_store, purchase_store, clock, limits
            ),
            events=events.log,
            bus=bus,
            relay=(
                EventRelay(events.log, bus, lease=relay_lease)
                if events.live_relay and events.log is not None
                else None
            ),
            customer_store=customer_store,
            product_store=product_store,
            purchase_store=purchase_store,
            cache=cache,
            predictions=predictions,
            prediction_updater=updater,
            analyst=analyst,
            recommendations=recommendations,
            segments=segments,
            segment_updater=segment_updater,
            segment_sweeper=segment_sweeper,
            anomalies=anomalies,
            jobs=jobs,
            health=[*stores.health, *([events.kinesis] if events.kinesis else [])],
            outbox_relay=events.outbox_relay,
            event_stream=events.kinesis.stream if events.kinesis is not None else None,
            kinesis=events.kinesis,
            realtime_in_process=in_process,
        )


class _TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """The protocol handler, closing with 4400 on a message that is JSON but not an object
    (the stock handler drops the connection without a close code), and serving live
    subscriptions that other sockets run too from the process's shared streams."""

    async def handle_message(self, message: Any) -> None:
        if not isinstance(message, dict):
            await self.handle_invalid_message("WebSocket message must be a JSON object")
            return
        await super().handle_message(cast("Message", message))

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        shared: SharedStreams = cast("_WebSocketGraphQL", self.view).shared_streams
        if not await shared.run(self, operation):
            await super().run_operation(operation)


class _WebSocketGraphQL(GraphQL[Context, None]):
    """graphql-transport-ws on /graphql; credentials come in connection_init's payload."""

    graphql_transport_ws_handler_class = _TransportWSHandler

    def __init__(
        self, schema: OmnixSchema, authenticator: Authenticator, settings: Settings
    ) -> None:
        super().__init__(
            schema,
            graphql_ide=None,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=timedelta(seconds=settings.ws_init_timeout),
            max_subscriptions_per_connection=settings.max_subscriptions_per_socket,
            keep_alive=True,
            keep_alive_interval=15,
        )
        self._authenticator = authenticator
        self.shared_streams = SharedStreams(queue_size=settings.subscriber_queue_size)

    async def get_context(self, request: Any, response: Any) -> Context:
        context = Context(
            services=request.app.state.services,
            principal=ANONYMOUS,
            request_id=uuid.uuid4().hex,
        )
        context.connection_params = None
        return context

    async def on_ws_connect(self, context: Context) -> dict[str, object] | None:
        params = context.connection_params or {}
        authorization = params.get("authorization") or params.get("Authorization")
        if authorization is None and isinstance(params.get("token"), str):
            authorization = f"Bearer {params['token']}"
        try:
            context.principal = self._authenticator.authenticate(
                authorization if isinstance(authorization, str) else None
            )
        except AuthenticationError as e:
            raise ConnectionRejectionError({"message": str(e)}) from e
        return None


def _configure_logging(level: str) -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(
            level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    else:
        logging.getLogger("omnix").setLevel(level.upper())


def create_app(settings: Settings) -> Starlette:
    """The Starlette app. Adapters and services open in its lifespan, not here."""
    _configure_logging(settings.log_level)
    authenticator = Authenticator(settings)
    schema = build_schema(
        max_depth=settings.max_query_depth,
        max_tokens=settings.max_query_tokens,
        max_aliases=settings.max_aliases,
    )
    ide_html = None if settings.production else get_graphql_ide_html(graphql_ide="graphiql")
    websockets = _WebSocketGraphQL(schema, authenticator, settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if settings.auth == "dev":
            log.warning(
                "OMNIX_AUTH=dev: every caller is treated as an admin. Use OMNIX_AUTH=jwt "
                "anywhere but a developer's machine."
            )
        async with open_container(settings) as container:
            hub = SubscriptionHub(
                container.bus,
                queue_size=settings.subscriber_queue_size,
                decode=DomainEvent.from_json,
                key_of=lambda event: event.customer_id,
            )
            app.state.container = container
            app.state.services = Services(
                customers=container.customers,
                purchases=container.purchases,
                catalogue=container.catalogue,
                hub=hub,
                predictions=container.predictions,
                analyst=container.analyst,
                recommendations=container.recommendations,
                segments=container.segments,
                anomalies=container.anomalies,
                jobs=container.jobs,
            )
            if container.jobs is not None:
                await container.jobs.recover()
            relay = None
            if container.relay is not None:
                await container.relay.start()
                relay = asyncio.create_task(container.relay.run(), name="event-relay")
            outbox = None
            if container.outbox_relay is not None:
                outbox = asyncio.create_task(container.outbox_relay.run(), name="outbox-relay")
            updater = None
            if container.prediction_updater is not None:
                updater = asyncio.create_task(
                    container.prediction_updater.run(), name="prediction-updater"
                )
            _log_realtime(container)
            in_process = container.realtime_in_process
            sweeps = None
            if (
                in_process
                and container.anomalies is not None
                and settings.anomaly_sweep_seconds > 0
            ):
                sweeps = asyncio.create_task(
                    container.anomalies.run_sweeps(settings.anomaly_sweep_seconds),
                    name="anomaly-sweeps",
                )
            segment_tasks = []
            if container.segment_updater is not None:
                segment_tasks.append(
                    asyncio.create_task(container.segment_updater.run(), name="segment-updater")
                )
            if in_process and container.segment_sweeper is not None:
                segment_tasks.append(
                    asyncio.create_task(container.segment_sweeper.run(), name="segment-sweep")
                )
            collector = None
            if settings.gc_interval > 0:
                collector = CollectorSchedule(interval=settings.gc_interval)
                collector.start()
            try:
                yield
            finally:
                if container.jobs is not None:
                    await container.jobs.close()
                if collector is not None:
                    await collector.stop()
                if outbox is not None and container.outbox_relay is not None:
                    container.outbox_relay.stop()  # finish the cycle under way and mark it
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(outbox), timeout=10)
                    outbox.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await outbox
                if relay is not None:
                    relay.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await relay
                if container.relay is not None:
                    await container.relay.stop()
                if updater is not None:
                    updater.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await updater
                if sweeps is not None:
                    sweeps.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await sweeps
                for task in segment_tasks:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                await hub.close()

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        container: Container | None = getattr(request.app.state, "container", None)
        if container is None:
            return JSONResponse({"status": "starting"}, status_code=503)
        try:
            for check in container.health:
                await check.ping()
        except DomainError as e:
            return JSONResponse({"status": "unavailable", "reason": e.code}, status_code=503)
        return JSONResponse({"status": "ready"})

    async def statusz(request: Request) -> Response:
        """Live counters for operators: subscriptions per channel and the relay's position."""
        container: Container | None = getattr(request.app.state, "container", None)
        services: Services | None = getattr(request.app.state, "services", None)
        if container is None or services is None:
            return JSONResponse({"status": "starting"}, status_code=503)
        return JSONResponse(
            {
                "subscriptions": {
                    "listeners": services.hub.stats(),
                    "busSubscriptions": services.hub.pumps,
                    "delivered": services.hub.delivered,
                    "shared": websockets.shared_streams.stats(),
                },
                "relay": (
                    {
                        "position": container.relay.position,
                        "published": container.relay.published,
                        "leading": container.relay.leading,
                        "takeovers": container.relay.takeovers,
                    }
                    if container.relay is not None
                    else None
                ),
                "bus": _bus_status(container.bus),
                "cache": _cache_status(container.cache),
                "outbox": _outbox_status(container),
            }
        )

    return Starlette(
        routes=[
            Route(
                "/graphql",
                graphql_endpoint(
                    schema,
                    authenticator,
                    ide_html,
                    compiled_queries=settings.compiled_queries,
                    limiter=(
                        RateLimiter(settings.rate_limit, settings.burst)
                        if settings.rate_limit > 0
                        else None
                    ),
                ),
                methods=["GET", "POST"],
            ),
            WebSocketRoute("/graphql", websockets),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/statusz", statusz),
        ],
        lifespan=lifespan,
    )


def _log_realtime(container: Container) -> None:
    """Say where predictions, segments, anomaly detection and the sweeps run."""
    settings = container.settings
    if not container.realtime_in_process:
        log.info(
            "predictions, segments, anomaly detection and the sweeps run in `omnix worker`, "
            "which reads %s; this process relays the store's outbox to it",
            settings.events_url,
        )
        return
    updater = container.prediction_updater
    running = [
        name
        for name, on in (
            ("predictions", updater is not None),
            ("anomaly detection", updater is not None and container.anomalies is not None),
            ("segments", container.segment_updater is not None),
        )
        if on
    ]
    log.info(
        "in this process, from the event log: %s; anomaly sweep %s, segment sweep %s",
        ", ".join(running) or "nothing (the store keeps no predictions)",
        _every(settings.anomaly_sweep_seconds if container.anomalies else 0),
        _every(settings.segment_sweep_seconds if container.segment_sweeper else 0),
    )


def _every(seconds: float) -> str:
    return f"every {seconds:g} s" if seconds > 0 else "off"


def _bus_status(bus: object) -> dict[str, object]:
    """What the Redis bus has been through (connection, reconnects, repeats dropped)."""
    if isinstance(bus, RedisBus):
        return {
            "kind": "redis",
            "connected": bus.connected,
            "reconnects": bus.reconnects,
            "published": bus.published,
            "duplicatesDropped": bus.duplicates,
            "redisSubscriptions": len(bus.subscribed_channels()),
        }
    return {"kind": "memory"}


def _cache_status(cache: Cache) -> dict[str, object]:
    """Hit and miss counts; for Redis also the failures and the calls skipped after them."""
    if isinstance(cache, RedisCache):
        return {
            "kind": "redis",
            "available": cache.available,
            "hits": cache.hits,
            "misses": cache.misses,
            "errors": cache.errors,
            "skipped": cache.skipped,
        }
    if isinstance(cache, MemoryCache):
        return {
            "kind": "memory",
            "entries": len(cache),
            "hits": cache.hits,
            "misses": cache.misses,
            "evictions": cache.evictions,
        }
    return {"kind": type(cache).__name__}


def _outbox_status(container: Container) -> dict[str, Any] | None:
    """The outbox relay's counters and the event log's PutRecords figures (Kinesis)."""
    if container.outbox_relay is None:
        return None
    relay = container.outbox_relay.stats
    status: dict[str, Any] = {
        "relayed": relay.relayed,
        "cycles": relay.cycles,
        "failures": relay.failures,
        "refused": relay.refused,
        "lastError": relay.last_error,
    }
    if container.kinesis is not None:
        put = container.kinesis.publisher.stats
        status["putRecords"] = {
            "calls": put.calls,
            "records": put.records,
            "meanBatchFill": round(put.mean_batch_fill, 2),
            "retriedRecords": put.retried_records,
            "failedRecords": put.failed_records,
        }
    return status


def app_from_env() -> Starlette:
    """Factory for ``uvicorn --factory schema.app:app_from_env``."""
    return create_app(Settings.from_env())
