"""``kinesis://STREAM?region=R&checkpoints=TABLE&shards=N`` parsed into typed settings.

Endpoints come from botocore's own variables (``AWS_ENDPOINT_URL_KINESIS``,
``AWS_ENDPOINT_URL_DYNAMODB`` or ``AWS_ENDPOINT_URL``), credentials from the usual chain."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from domain.errors import ValidationError

_STREAM_NAME = re.compile(r"^[a-zA-Z0-9_.-]{1,128}$")
_TABLE_NAME = re.compile(r"^[a-zA-Z0-9_.-]{3,255}$")
_KNOWN = {"region", "checkpoints", "shards", "poll"}


@dataclass(frozen=True, slots=True)
class KinesisSettings:
    stream: str
    region: str | None = None
    checkpoint_table: str = ""
    shards: int | None = None
    poll_interval: float = 0.25

    @property
    def checkpoints(self) -> str:
        return self.checkpoint_table or f"{self.stream}-checkpoints"


def parse_kinesis_url(url: str) -> KinesisSettings:
    """Raises ValidationError (field ``OMNIX_EVENTS``) for anything but a usable URL."""
    parts = urlsplit(url)
    if parts.scheme != "kinesis":
        raise ValidationError(f"not a kinesis:// URL: {url!r}", field="OMNIX_EVENTS")
    stream = parts.netloc or parts.path.lstrip("/")
    if not _STREAM_NAME.match(stream):
        raise ValidationError(
            f"kinesis:// needs a stream name (1-128 of a-z A-Z 0-9 _ . -), got {stream!r}",
            field="OMNIX_EVENTS",
        )
    query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=False)
    unknown = sorted(set(query) - _KNOWN)
    if unknown:
        raise ValidationError(
            f"unknown kinesis:// option(s): {', '.join(unknown)} "
            f"(known: {', '.join(sorted(_KNOWN))})",
            field="OMNIX_EVENTS",
        )

    def one(name: str) -> str | None:
        values = query.get(name)
        return values[-1] if values else None

    table = one("checkpoints") or ""
    if table and not _TABLE_NAME.match(table):
        raise ValidationError(f"not a DynamoDB table name: {table!r}", field="OMNIX_EVENTS")
    shards = one("shards")
    if shards is not None and not (shards.isdigit() and 1 <= int(shards) <= 10_000):
        raise ValidationError(f"shards must be 1..10000, got {shards!r}", field="OMNIX_EVENTS")
    poll = one("poll")
    try:
        poll_interval = float(poll) if poll is not None else 0.25
    except ValueError:
        poll_interval = -1.0
    if not 0.2 <= poll_interval <= 60:
        raise ValidationError(
            f"poll must be 0.2..60 seconds (GetRecords allows 5 calls/s per shard), got {poll!r}",
            field="OMNIX_EVENTS",
        )
    return KinesisSettings(
        stream=stream,
        region=one("region") or None,
        checkpoint_table=table,
        shards=int(shards) if shards is not None else None,
        poll_interval=poll_interval,
    )
