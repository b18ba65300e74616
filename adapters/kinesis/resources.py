"""Opening the Kinesis event log: the aioboto3 clients, the publisher, consumers on demand, and
the provisioning ``omnix init`` runs (the stream and the checkpoint table)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aioboto3
from botocore.config import Config
from botocore.exceptions import ClientError, NoRegionError

from adapters.kinesis.checkpoints import CheckpointTable
from adapters.kinesis.config import KinesisSettings, parse_kinesis_url
from adapters.kinesis.consumer import KinesisEventStream
from adapters.kinesis.errors import AWS_ERRORS, error_code, unavailable
from adapters.kinesis.publisher import KinesisEventLog
from domain.errors import StoreUnavailableError, ValidationError
from domain.ports import HealthCheck

STREAM_READY_TIMEOUT = 120.0

_CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=5,
    read_timeout=15,
)


@dataclass
class KinesisResources(HealthCheck):
    settings: KinesisSettings
    kinesis: Any
    dynamodb: Any
    publisher: KinesisEventLog
    _streams: list[KinesisEventStream] = field(default_factory=list)

    def stream(self, consumer: str, *, refresh_interval: float = 10.0) -> KinesisEventStream:
        """A consumer of every shard, checkpointed under ``consumer``, that looks for new
        shards every ``refresh_interval`` seconds; closed with these resources."""
        stream = KinesisEventStream(
            self.kinesis,
            CheckpointTable(self.dynamodb, self.settings.checkpoints),
            self.settings.stream,
            consumer,
            poll_interval=self.settings.poll_interval,
            refresh_interval=refresh_interval,
        )
        self._streams.append(stream)
        return stream

    async def ping(self) -> None:
        await describe_stream(self.kinesis, self.settings.stream)

    async def close_streams(self) -> None:
        streams, self._streams = self._streams, []
        for stream in streams:
            await stream.close()


async def describe_stream(kinesis: Any, name: str) -> dict[str, Any]:
    try:
        response: dict[str, Any] = await kinesis.describe_stream_summary(StreamName=name)
    except ClientError as e:
        if error_code(e) == "ResourceNotFoundException":
            raise StoreUnavailableError(
                f"Kinesis stream {name!r} does not exist (omnix init creates it)"
            ) from e
        raise unavailable(f"describing Kinesis stream {name}", e) from e
    except AWS_ERRORS as e:
        raise unavailable(f"describing Kinesis stream {name}", e) from e
    return dict(response["StreamDescriptionSummary"])


@asynccontextmanager
async def open_kinesis(url: str, *, check: bool = True) -> AsyncIterator[KinesisResources]:
    """The clients for ``kinesis://STREAM?...``; with ``check`` the stream must exist."""
    settings = parse_kinesis_url(url)
    session = aioboto3.Session()
    async with AsyncExitStack() as stack:
        try:
            kinesis = await stack.enter_async_context(
                session.client("kinesis", region_name=settings.region, config=_CLIENT_CONFIG)
            )
            dynamodb = await stack.enter_async_context(
                session.client("dynamodb", region_name=settings.region, config=_CLIENT_CONFIG)
            )
        except NoRegionError as e:
            raise ValidationError(
                "no AWS region: add ?region=... to OMNIX_EVENTS or set AWS_REGION",
                field="OMNIX_EVENTS",
            ) from e
        resources = KinesisResources(
            settings=settings,
            kinesis=kinesis,
            dynamodb=dynamodb,
            publisher=KinesisEventLog(kinesis, settings.stream),
        )
        stack.push_async_callback(resources.close_streams)
        if check:
            await resources.ping()
        yield resources


async def provision(url: str) -> list[str]:
    """Create the stream (``?shards=N`` provisioned, otherwise on-demand) and the checkpoint
    table unless they exist, waiting until both are active. Returns what it did, for display."""
    async with open_kinesis(url, check=False) as resources:
        settings = resources.settings
        done = [await ensure_stream(resources.kinesis, settings.stream, settings.shards)]
        await CheckpointTable(resources.dynamodb, settings.checkpoints).ensure()
        done.append(f"checkpoint table {settings.checkpoints} ready")
        return done


async def ensure_stream(kinesis: Any, name: str, shards: int | None) -> str:
    args: dict[str, Any] = {"StreamName": name}
    if shards is None:
        args["StreamModeDetails"] = {"StreamMode": "ON_DEMAND"}
    else:
        args["ShardCount"] = shards
    created = True
    try:
        await kinesis.create_stream(**args)
    except ClientError as e:
        if error_code(e) != "ResourceInUseException":
            raise unavailable(f"creating Kinesis stream {name}", e) from e
        created = False
    except AWS_ERRORS as e:
        raise unavailable(f"creating Kinesis stream {name}", e) from e
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STREAM_READY_TIMEOUT
    while (summary := await describe_stream(kinesis, name))["StreamStatus"] != "ACTIVE":
        if loop.time() > deadline:
            raise StoreUnavailableError(f"Kinesis stream {name} is not ACTIVE after 120 s")
        await asyncio.sleep(0.5)
    shards_open = summary.get("OpenShardCount", "?")
    return f"Kinesis stream {name} {'created' if created else 'exists'} ({shards_open} open shards)"
