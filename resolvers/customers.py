"""Customer queries and mutations."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from domain import errors as domain_errors
from domain.access import Role
from domain.ids import is_valid_id
from domain.segments import SegmentCode as DomainSegmentCode
from schema.context import Context
from schema.errors import (
    ConflictError,
    NotFoundError,
    ValidationError,
    conflict_error,
    not_found_error,
    validation_error,
)
from schema.types.customers import ConsentInput, Customer, CustomerConnection
from schema.types.segments import SegmentCode


@strawberry.input
class RegisterCustomerInput:
    name: str
    email: str
    consent: ConsentInput | None = None


@strawberry.type
class RegisterCustomerSuccess:
    customer: Customer


@strawberry.type
class SetConsentSuccess:
    customer: Customer


RegisterCustomerResult = Annotated[
    RegisterCustomerSuccess | ValidationError | ConflictError,
    strawberry.union("RegisterCustomerResult"),
]
SetConsentResult = Annotated[
    SetConsentSuccess | ValidationError | NotFoundError, strawberry.union("SetConsentResult")
]


async def customer(info: Info[Context, None], id: strawberry.ID) -> Customer | None:
    """One customer by id; null when there is none."""
    info.context.principal.require_customer(id)
    if not is_valid_id(id):
        return None
    found = await info.context.loaders.customer.load(id)
    return Customer.from_domain(found) if found else None


async def customers(
    info: Info[Context, None],
    first: int = 20,
    after: str | None = None,
    search: str | None = None,
    segment: SegmentCode | None = None,  # type: ignore[valid-type]
) -> CustomerConnection:
    """Customers in registration order. `search` matches name or email and needs the admin role;
    `segment` keeps the customers currently in that segment."""
    principal = info.context.principal
    principal.require(Role.ADMIN, Role.ANALYST, Role.SERVICE)
    if search is not None:
        principal.require(Role.ADMIN)
    page = await info.context.services.customers.list(
        first=first,
        after=after,
        search=search,
        segment=DomainSegmentCode(segment) if segment is not None else None,
    )
    return CustomerConnection.from_page(page)


async def register_customer(
    info: Info[Context, None], input: RegisterCustomerInput, idempotency_key: str | None = None
) -> RegisterCustomerResult:
    """Register a customer; a retry with the same idempotencyKey returns the first result."""
    info.context.principal.require(Role.ADMIN, Role.SERVICE)
    try:
        created = await info.context.services.customers.register(
            name=input.name,
            email=input.email,
            consent=input.consent.to_domain() if input.consent else None,
            idempotency_key=idempotency_key,
        )
    except domain_errors.ValidationError as e:
        return validation_error(e)
    except domain_errors.ConflictError as e:
        return conflict_error(e)
    return RegisterCustomerSuccess(customer=Customer.from_domain(created))


async def set_consent(
    info: Info[Context, None], customer_id: strawberry.ID, input: ConsentInput
) -> SetConsentResult:
    """Replace a customer's consent flags (the customer themself, or an admin)."""
    principal = info.context.principal
    if not (principal.has(Role.ADMIN) or principal.customer_id == customer_id):
        raise domain_errors.ForbiddenError("only an admin or the customer may change consent")
    try:
        if not is_valid_id(customer_id):
            raise domain_errors.NotFoundError("customer", customer_id, field="customerId")
        updated = await info.context.services.customers.set_consent(customer_id, input.to_domain())
    except domain_errors.ValidationError as e:
        return validation_error(e)
    except domain_errors.NotFoundError as e:
        return not_found_error(e)
    return SetConsentSuccess(customer=Customer.from_domain(updated))
