"""Custom scalars. Money travels as a decimal string ("3.99"), never as a float."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, NewType

import strawberry
from strawberry.types.scalar import ScalarDefinition

from domain.errors import ValidationError
from domain.money import format_cents, parse_cents

Money = NewType("Money", int)


def _parse_money(value: Any) -> int:
    if not isinstance(value, str):
        raise ValueError('Money is a decimal string such as "3.99", not a number')
    try:
        return parse_cents(value)
    except ValidationError as e:
        raise ValueError(e.message) from e


SCALARS: dict[object, ScalarDefinition] = {
    Money: strawberry.scalar(
        name="Money",
        description='An amount of money as a decimal string with two places, e.g. "12.50".',
        serialize=lru_cache(maxsize=16384)(format_cents),
        parse_value=_parse_money,
    )
}
