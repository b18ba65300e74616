"""Customers and their consent."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Consent:
    """What the customer allowed. Everything is opt-in: a new customer has consented to nothing."""

    analytics: bool = False
    ai_profiling: bool = False
    marketing: bool = False


@dataclass(frozen=True, slots=True)
class Customer:
    id: str
    created_at: datetime
    name: str | None = None
    email: str | None = None
    consent: Consent = field(default_factory=Consent)
    household_size: int | None = None
