"""The product catalogue."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from domain.money import Cents


class PriceTier(StrEnum):
    BUDGET = "BUDGET"
    STANDARD = "STANDARD"
    PREMIUM = "PREMIUM"


@dataclass(frozen=True, slots=True)
class Product:
    sku: str
    name: str
    category: str
    brand: str
    price_tier: PriceTier
    pack_size: float
    unit: str
    price: Cents
    tags: tuple[str, ...] = ()
