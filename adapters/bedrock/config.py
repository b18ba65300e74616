"""``bedrock://MODEL_ID?region=R&timeout=S&concurrency=N&max_tokens=T&attempts=A`` and the
per-model price table, parsed into typed settings.

The endpoint comes from botocore's own variables (``AWS_ENDPOINT_URL_BEDROCK_RUNTIME`` or
``AWS_ENDPOINT_URL``), credentials from the usual chain. Prices are USD per million tokens,
on-demand; :data:`DEFAULT_PRICES` holds the published list prices (see docs/ai.md for the date)
and ``OMNIX_AI_PRICES`` (``MODEL=INPUT/OUTPUT,...``) adds or overrides entries.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qs, unquote

from domain.errors import ValidationError

_KNOWN = {"region", "timeout", "concurrency", "max_tokens", "attempts"}
_MODEL_ID = re.compile(r"^[A-Za-z0-9._:/-]{3,2048}$")
# Cross-region inference profiles prefix the model id with a geography: us.anthropic...
_GEOGRAPHY = re.compile(r"^(?:us|eu|apac|jp|au|ca|us-gov|global)\.(?=[a-z]+\.)")


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """On-demand USD per million input and output tokens."""

    input_per_mtok: Decimal
    output_per_mtok: Decimal


DEFAULT_PRICES: Mapping[str, ModelPrice] = {
    model: ModelPrice(Decimal(i), Decimal(o))
    for model, i, o in (
        ("anthropic.claude-3-haiku-20240307-v1:0", "0.25", "1.25"),
        ("anthropic.claude-3-5-haiku-20241022-v1:0", "0.80", "4.00"),
        ("anthropic.claude-haiku-4-5-20251001-v1:0", "1.00", "5.00"),
        ("anthropic.claude-3-5-sonnet-20240620-v1:0", "3.00", "15.00"),
        ("anthropic.claude-3-5-sonnet-20241022-v2:0", "3.00", "15.00"),
        ("anthropic.claude-3-7-sonnet-20250219-v1:0", "3.00", "15.00"),
        ("anthropic.claude-sonnet-4-20250514-v1:0", "3.00", "15.00"),
        ("anthropic.claude-sonnet-4-5-20250929-v1:0", "3.00", "15.00"),
        ("anthropic.claude-opus-4-1-20250805-v1:0", "15.00", "75.00"),
    )
}


@dataclass(frozen=True, slots=True)
class BedrockSettings:
    model_id: str
    region: str | None = None
    timeout: float = 20.0
    concurrency: int = 4
    max_tokens: int = 1024
    attempts: int = 4


def _fail(message: str, field: str = "OMNIX_ANALYST") -> ValidationError:
    return ValidationError(message, field=field)


def _number(query: Mapping[str, list[str]], name: str, low: float, high: float) -> float | None:
    values = query.get(name)
    if not values:
        return None
    try:
        number = float(values[-1])
    except ValueError:
        number = float("nan")
    if not low <= number <= high:
        raise _fail(f"bedrock:// {name} must be {low:g}..{high:g}, got {values[-1]!r}")
    return number


def parse_bedrock_url(url: str) -> BedrockSettings:
    """Raises ValidationError (field ``OMNIX_ANALYST``) for anything but a usable URL. The model
    id is everything between ``bedrock://`` and ``?`` (ids hold ``:`` and ARNs ``/``)."""
    if not url.startswith("bedrock://"):
        raise _fail(f"not a bedrock:// URL: {url!r}")
    rest = url[len("bedrock://") :]
    model, _, raw_query = rest.partition("?")
    model = unquote(model)
    if not _MODEL_ID.match(model):
        raise _fail(f"bedrock:// needs a model id, e.g. bedrock://{next(iter(DEFAULT_PRICES))}")
    query = parse_qs(raw_query, keep_blank_values=True)
    unknown = sorted(set(query) - _KNOWN)
    if unknown:
        raise _fail(
            f"unknown bedrock:// option(s): {', '.join(unknown)} "
            f"(known: {', '.join(sorted(_KNOWN))})"
        )
    timeout = _number(query, "timeout", 1, 600)
    concurrency = _number(query, "concurrency", 1, 256)
    max_tokens = _number(query, "max_tokens", 256, 8192)
    attempts = _number(query, "attempts", 1, 10)
    region = query.get("region", [""])[-1] or None
    return BedrockSettings(
        model_id=model,
        region=region,
        timeout=timeout if timeout is not None else 20.0,
        concurrency=int(concurrency) if concurrency is not None else 4,
        max_tokens=int(max_tokens) if max_tokens is not None else 1024,
        attempts=int(attempts) if attempts is not None else 4,
    )


def parse_price_table(text: str) -> dict[str, ModelPrice]:
    """``MODEL=INPUT/OUTPUT`` entries separated by commas, USD per million tokens."""
    table: dict[str, ModelPrice] = {}
    for entry in filter(None, (e.strip() for e in text.split(","))):
        model, _, prices = entry.rpartition("=")
        low, _, high = prices.partition("/")
        try:
            price = ModelPrice(Decimal(low), Decimal(high))
        except InvalidOperation:
            price = ModelPrice(Decimal(-1), Decimal(-1))
        both = (price.input_per_mtok, price.output_per_mtok)
        valid = all(p.is_finite() and 0 <= p <= 1000 for p in both)
        if not model or not valid:
            raise _fail(
                f"OMNIX_AI_PRICES entries are MODEL=INPUT/OUTPUT in USD per million tokens, "
                f"got {entry!r}",
                field="OMNIX_AI_PRICES",
            )
        table[model] = price
    return table


def base_model(model_id: str) -> str:
    """The foundation model behind an id, inference profile or ARN."""
    name = model_id.rsplit("/", 1)[-1]
    return _GEOGRAPHY.sub("", name)


def price_for(model_id: str, overrides: Mapping[str, ModelPrice]) -> ModelPrice:
    """The price of ``model_id`` (exact entries first, then its foundation model); ValidationError
    when neither the overrides nor the defaults know it, so no call goes uncosted."""
    for table in (overrides, DEFAULT_PRICES):
        for key in (model_id, base_model(model_id)):
            if key in table:
                return table[key]
    raise _fail(
        f"no price known for {model_id!r}: add it to OMNIX_AI_PRICES as "
        f"{base_model(model_id)}=INPUT/OUTPUT (USD per million tokens)",
        field="OMNIX_AI_PRICES",
    )
