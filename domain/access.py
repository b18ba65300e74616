"""Who may see what. The API turns credentials into a Principal; services and resolvers ask it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from domain.errors import ForbiddenError


class Role(StrEnum):
    ADMIN = "admin"
    ANALYST = "analyst"
    SERVICE = "service"
    CUSTOMER = "customer"


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    roles: frozenset[Role]
    customer_id: str | None = None

    def has(self, *roles: Role) -> bool:
        return not self.roles.isdisjoint(roles)

    def can_read_customer(self, customer_id: str) -> bool:
        """Staff roles read every customer; a customer reads only themself."""
        if self.has(Role.ADMIN, Role.ANALYST, Role.SERVICE):
            return True
        return self.customer_id is not None and self.customer_id == customer_id

    def can_read_pii(self, customer_id: str) -> bool:
        """Name and email: admins, and the customer themself."""
        return self.has(Role.ADMIN) or (self.has(Role.CUSTOMER) and self.customer_id == customer_id)

    def require_customer(self, customer_id: str) -> None:
        if not self.can_read_customer(customer_id):
            raise ForbiddenError("this principal may not access that customer")

    def require(self, *roles: Role) -> None:
        if not self.has(*roles):
            names = ", ".join(r.value for r in roles)
            raise ForbiddenError(f"this operation needs one of the roles: {names}")


DEV_ADMIN = Principal(subject="dev", roles=frozenset({Role.ADMIN}))
