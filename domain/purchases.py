"""Purchases: a basket of lines bought by one customer at one moment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from domain.money import Cents


class PurchaseLine(NamedTuple):
    """One line of a basket: an immutable value. A tuple, because baskets are read by the
    hundred on the request path and tuples are several times cheaper to build."""

    sku: str
    quantity: int
    unit_price: Cents
    discount: Cents = 0

    @property
    def amount(self) -> Cents:
        return self.quantity * self.unit_price - self.discount


@dataclass(frozen=True, slots=True)
class Purchase:
    id: str
    customer_id: str
    purchased_at: datetime
    lines: tuple[PurchaseLine, ...]
    store_id: str | None = None
    recorded_at: datetime | None = None

    @property
    def total(self) -> Cents:
        return sum(line.amount for line in self.lines)
