"""The purchaseRecorded subscription."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry
from strawberry.types import Info

from domain.access import Role
from domain.events import PURCHASE_RECORDED, DomainEvent, channel_for, purchase_from_payload
from schema.context import Context
from schema.types.purchases import Purchase


async def purchase_recorded(
    info: Info[Context, None], customer_id: strawberry.ID | None = None
) -> AsyncGenerator[Purchase, None]:
    """Purchases as they are accepted: all of them (staff roles) or one customer's."""
    principal = info.context.principal
    if customer_id is None:
        principal.require(Role.ADMIN, Role.ANALYST, Role.SERVICE)
    else:
        principal.require_customer(customer_id)
    hub = info.context.services.hub
    async with hub.listen(channel_for(PURCHASE_RECORDED), key=customer_id) as events:
        async for event in events:
            assert isinstance(event, DomainEvent)
            yield Purchase.from_domain(purchase_from_payload(event.payload["purchase"]))
