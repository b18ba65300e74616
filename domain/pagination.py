"""Cursor pages. Cursors are opaque to clients; each store encodes its own position in them."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from domain.errors import ValidationError

T = TypeVar("T")

MAX_PAGE_SIZE = 100


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    end_cursor: str | None
    has_next_page: bool


def check_page_size(first: int) -> int:
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise ValidationError(
            f"first must be between 1 and {MAX_PAGE_SIZE}, got {first}",
            field="first",
            code="PAGE_SIZE_OUT_OF_RANGE",
        )
    return first


def encode_cursor(kind: str, position: list[Any]) -> str:
    raw = json.dumps([kind, *position], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str) -> list[Any]:
    """Decode a cursor made by ``encode_cursor(kind, ...)``; anything else is a validation error."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError) as e:
        raise ValidationError("malformed cursor", field="after", code="INVALID_CURSOR") from e
    if not isinstance(value, list) or not value or value[0] != kind:
        raise ValidationError(
            "cursor does not belong to this list", field="after", code="INVALID_CURSOR"
        )
    return value[1:]
