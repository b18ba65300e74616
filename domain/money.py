"""Money is held as integer cents end to end; it is never a float."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from domain.errors import ValidationError

Cents = int

_MONEY = re.compile(r"^-?\d{1,12}(\.\d{1,2})?$")


def parse_cents(text: str, *, field: str | None = None) -> Cents:
    """Parse a decimal string such as "12.5" or "3.99" into cents, refusing more than 2 decimals."""
    text = text.strip()
    if not _MONEY.match(text):
        raise ValidationError(
            f'{text!r} is not an amount of money (up to 12 digits and 2 decimals, e.g. "3.99")',
            field=field,
            code="INVALID_MONEY",
        )
    try:
        return int((Decimal(text) * 100).to_integral_exact())
    except InvalidOperation as e:  # pragma: no cover - the regex admits only valid decimals
        raise ValidationError(f"{text!r} is not an amount of money", field=field) from e


def format_cents(cents: Cents) -> str:
    """Render cents as a decimal string with exactly two places: 1234 -> "12.34"."""
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    return f"{sign}{whole}.{frac:02d}"
