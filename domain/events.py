"""Domain events. Every event has a unique id (consumers de-duplicate on it) and names the
customer it concerns, which orders events per customer and partitions them downstream.
Payloads carry pseudonymous ids only, never names or emails."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.customers import Consent, Customer
from domain.ids import new_id
from domain.purchases import Purchase, PurchaseLine
from domain.segments import SegmentMigration, migration_payload

CUSTOMER_REGISTERED = "CustomerRegistered"
PURCHASE_RECORDED = "PurchaseRecorded"
CONSENT_CHANGED = "ConsentChanged"
ANOMALY_DETECTED = "AnomalyDetected"
INSIGHT_GENERATED = "InsightGenerated"
SEGMENT_CHANGED = "SegmentChanged"


def channel_for(event_type: str) -> str:
    """The bus channel on which live events of one type are fanned out."""
    return f"omnix.events.{event_type}"


@dataclass(frozen=True, slots=True)
class DomainEvent:
    type: str
    customer_id: str
    occurred_at: datetime
    payload: dict[str, Any]
    id: str = field(default_factory=lambda: new_id("evt"))

    def to_json(self) -> str:
        return json.dumps(
            {
                "id": self.id,
                "type": self.type,
                "customerId": self.customer_id,
                "occurredAt": self.occurred_at.isoformat(),
                "payload": self.payload,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> DomainEvent:
        data = json.loads(raw)
        return cls(
            id=data["id"],
            type=data["type"],
            customer_id=data["customerId"],
            occurred_at=datetime.fromisoformat(data["occurredAt"]),
            payload=data["payload"],
        )


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """An event as read back from the event log, with its position there."""

    position: int
    event: DomainEvent


def customer_registered(customer: Customer) -> DomainEvent:
    return DomainEvent(
        type=CUSTOMER_REGISTERED,
        customer_id=customer.id,
        occurred_at=customer.created_at,
        payload={"customerId": customer.id, "consent": consent_payload(customer.consent)},
    )


def consent_changed(customer_id: str, consent: Consent, at: datetime) -> DomainEvent:
    return DomainEvent(
        type=CONSENT_CHANGED,
        customer_id=customer_id,
        occurred_at=at,
        payload={"customerId": customer_id, "consent": consent_payload(consent)},
    )


def purchase_recorded(purchase: Purchase, *, source: str = "api") -> DomainEvent:
    return DomainEvent(
        type=PURCHASE_RECORDED,
        customer_id=purchase.customer_id,
        occurred_at=purchase.recorded_at or purchase.purchased_at,
        payload={"source": source, "purchase": purchase_payload(purchase)},
    )


def segment_changed(migration: SegmentMigration) -> DomainEvent:
    """Published for every stored migration; its id is the migration's, so a migration stored
    again after a retry is de-duplicated downstream like any redelivered event."""
    return DomainEvent(
        type=SEGMENT_CHANGED,
        customer_id=migration.customer_id,
        occurred_at=migration.at,
        payload={"migration": migration_payload(migration)},
        id=migration.id,
    )


def consent_payload(consent: Consent) -> dict[str, bool]:
    return {
        "analytics": consent.analytics,
        "aiProfiling": consent.ai_profiling,
        "marketing": consent.marketing,
    }


def purchase_payload(purchase: Purchase) -> dict[str, Any]:
    return {
        "id": purchase.id,
        "customerId": purchase.customer_id,
        "purchasedAt": purchase.purchased_at.isoformat(),
        "recordedAt": purchase.recorded_at.isoformat() if purchase.recorded_at else None,
        "storeId": purchase.store_id,
        "lines": [
            {
                "sku": ln.sku,
                "quantity": ln.quantity,
                "unitPrice": ln.unit_price,
                "discount": ln.discount,
            }
            for ln in purchase.lines
        ],
    }


def purchase_from_payload(data: dict[str, Any]) -> Purchase:
    recorded = data.get("recordedAt")
    return Purchase(
        id=data["id"],
        customer_id=data["customerId"],
        purchased_at=datetime.fromisoformat(data["purchasedAt"]),
        recorded_at=datetime.fromisoformat(recorded) if recorded else None,
        store_id=data.get("storeId"),
        lines=tuple(
            PurchaseLine(
                sku=ln["sku"],
                quantity=int(ln["quantity"]),
                unit_price=int(ln["unitPrice"]),
                discount=int(ln["discount"]),
            )
            for ln in data["lines"]
        ),
    )
