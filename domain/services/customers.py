"""Registering customers, reading them, and recording their consent."""

from __future__ import annotations

import re
from collections.abc import Sequence

from domain.clock import Clock
from domain.customers import Consent, Customer
from domain.errors import NotFoundError, ValidationError
from domain.events import consent_changed, customer_registered
from domain.ids import new_id
from domain.pagination import Page, check_page_size
from domain.ports import CustomerStore, IdempotencyClaim
from domain.segments import SegmentCode
from domain.services.idempotency import Idempotency

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
MAX_NAME_LENGTH = 200
MAX_EMAIL_LENGTH = 254
MAX_SEARCH_LENGTH = 100


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    if len(email) > MAX_EMAIL_LENGTH or not _EMAIL.match(email):
        raise ValidationError(
            f"{email!r} is not an email address", field="email", code="INVALID_EMAIL"
        )
    return email


def normalise_name(name: str) -> str:
    name = " ".join(name.split())
    if not name or len(name) > MAX_NAME_LENGTH:
        raise ValidationError(
            f"name must be 1-{MAX_NAME_LENGTH} characters", field="name", code="INVALID_NAME"
        )
    return name


class CustomerService:
    """Customers: who they are and what they consented to."""

    def __init__(self, store: CustomerStore, idempotency: Idempotency, clock: Clock) -> None:
        self._store = store
        self._idempotency = idempotency
        self._clock = clock

    async def register(
        self, *, name: str, email: str, consent: Consent | None, idempotency_key: str | None
    ) -> Customer:
        """Register a customer. Emails are unique (case-insensitive); consent defaults to none."""
        customer = Customer(
            id=new_id("cus"),
            created_at=self._clock.now(),
            name=normalise_name(name),
            email=normalise_email(email),
            consent=consent or Consent(),
        )
        request = {"name": customer.name, "email": customer.email, "consent": customer.consent}

        async def create(claim: IdempotencyClaim | None) -> Customer:
            await self._store.add(customer, customer_registered(customer), claim)
            return customer

        return await self._idempotency.run(
            scope="registerCustomer",
            key=idempotency_key,
            request=request,
            now=customer.created_at,
            new_id=customer.id,
            create=create,
            replay=self.require,
        )

    async def get(self, customer_id: str) -> Customer | None:
        return await self._store.get(customer_id)

    async def require(self, customer_id: str) -> Customer:
        customer = await self._store.get(customer_id)
        if customer is None:
            raise NotFoundError("customer", customer_id, field="customerId")
        return customer

    async def get_many(self, customer_ids: Sequence[str]) -> dict[str, Customer]:
        return await self._store.get_many(customer_ids)

    async def list(
        self,
        *,
        first: int,
        after: str | None,
        search: str | None,
        segment: SegmentCode | None = None,
    ) -> Page[Customer]:
        check_page_size(first)
        if search is not None:
            search = search.strip()
            if len(search) > MAX_SEARCH_LENGTH:
                raise ValidationError(
                    f"search is limited to {MAX_SEARCH_LENGTH} characters", field="search"
                )
        return await self._store.list(
            first=first, after=after, search=search or None, segment=segment
        )

    async def set_consent(self, customer_id: str, consent: Consent) -> Customer:
        """Replace the customer's consent flags; takes effect on the next request."""
        return await self._store.set_consent(
            customer_id, consent, consent_changed(customer_id, consent, self._clock.now())
        )
