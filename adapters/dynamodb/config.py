"""Where the DynamoDB stores live: ``dynamodb://?region=eu-west-1&prefix=omnix-``.

Query parameters: ``region`` (else ``AWS_REGION`` / ``AWS_DEFAULT_REGION``), ``prefix`` of every
table name (default ``omnix-``), ``threads`` in the pool that runs pynamodb's blocking calls
(default 16) and ``timeout`` in seconds for one store call (default 10). The endpoint comes from
``AWS_ENDPOINT_URL_DYNAMODB`` or ``AWS_ENDPOINT_URL`` (a local server); credentials from the
usual AWS chain.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import parse_qs, urlsplit

N = TypeVar("N", int, float)

_PREFIX = re.compile(r"^[A-Za-z0-9_.\-]{0,200}$")
_KNOWN = {"region", "prefix", "threads", "timeout"}


class DynamoConfigError(ValueError):
    """An OMNIX_STORE=dynamodb:// URL that cannot be used."""


@dataclass(frozen=True, slots=True)
class DynamoConfig:
    region: str
    prefix: str = "omnix-"
    endpoint: str | None = None
    threads: int = 16
    timeout: float = 10.0

    def table(self, name: str) -> str:
        return f"{self.prefix}{name}"

    @classmethod
    def from_url(cls, url: str, environ: Mapping[str, str] | None = None) -> DynamoConfig:
        env = os.environ if environ is None else environ
        parts = urlsplit(url)
        if parts.scheme != "dynamodb":
            raise DynamoConfigError(f"not a dynamodb:// URL: {url!r}")
        if parts.netloc or parts.path not in {"", "/"}:
            raise DynamoConfigError(
                f"{url!r}: put the settings in the query, e.g. dynamodb://?region=eu-west-1"
            )
        try:
            query = parse_qs(parts.query, strict_parsing=bool(parts.query))
        except ValueError as e:
            raise DynamoConfigError(f"{url!r}: malformed query") from e
        unknown = sorted(set(query) - _KNOWN)
        if unknown:
            raise DynamoConfigError(f"{url!r}: unknown parameter(s) {', '.join(unknown)}")
        one = {name: values[-1] for name, values in query.items()}
        region = one.get("region") or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
        if not region:
            raise DynamoConfigError("no AWS region: add ?region=... or set AWS_REGION")
        prefix = one.get("prefix", "omnix-")
        if not _PREFIX.match(prefix):
            raise DynamoConfigError(f"table prefix {prefix!r} may use only A-Z a-z 0-9 _ . -")
        endpoint = env.get("AWS_ENDPOINT_URL_DYNAMODB") or env.get("AWS_ENDPOINT_URL") or None
        return cls(
            region=region,
            prefix=prefix,
            endpoint=endpoint,
            threads=_number(one.get("threads"), "threads", int, 1, 256, 16),
            timeout=_number(one.get("timeout"), "timeout", float, 0.1, 300.0, 10.0),
        )


def _number(text: str | None, name: str, kind: type[N], low: N, high: N, default: N) -> N:
    if text is None:
        return default
    try:
        value = kind(text)
    except ValueError as e:
        raise DynamoConfigError(f"{name} must be a number, got {text!r}") from e
    if not low <= value <= high:
        raise DynamoConfigError(f"{name} must be between {low} and {high}, got {text}")
    return value
