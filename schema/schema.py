"""The assembled GraphQL schema."""

from __future__ import annotations

import inspect
from typing import Any

import strawberry
from graphql.error import GraphQLError
from strawberry.extensions import (
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from resolvers import customers, products, purchases
from schema.errors import ConflictError, NotFoundError, UserError, ValidationError
from schema.errors_policy import ErrorPolicy, log_errors
from schema.scalars import SCALARS
from subscriptions import purchases as subscriptions


def _doc(resolver: Any) -> str | None:
    return inspect.getdoc(resolver)


@strawberry.type
class Query:
    customer = strawberry.field(resolver=customers.customer, description=_doc(customers.customer))
    customers = strawberry.field(
        resolver=customers.customers, description=_doc(customers.customers)
    )
    product = strawberry.field(resolver=products.product, description=_doc(products.product))
    products = strawberry.field(resolver=products.products, description=_doc(products.products))


@strawberry.type
class Mutation:
    register_customer = strawberry.mutation(
        resolver=customers.register_customer, description=_doc(customers.register_customer)
    )
    record_purchase = strawberry.mutation(
        resolver=purchases.record_purchase, description=_doc(purchases.record_purchase)
    )
    set_consent = strawberry.mutation(
        resolver=customers.set_consent, description=_doc(customers.set_consent)
    )


@strawberry.type
class Subscription:
    purchase_recorded = strawberry.subscription(
        resolver=subscriptions.purchase_recorded,
        description=_doc(subscriptions.purchase_recorded),
    )


class OmnixSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        log_errors(errors, execution_context)


def build_schema(
    *, max_depth: int = 12, max_tokens: int = 3000, max_aliases: int = 30
) -> OmnixSchema:
    extensions: list[Any] = [
        lambda: MaxTokensLimiter(max_token_count=max_tokens),
        lambda: ParserCache(maxsize=512),
        lambda: ValidationCache(maxsize=512),
        lambda: QueryDepthLimiter(max_depth=max_depth),
        lambda: MaxAliasesLimiter(max_alias_count=max_aliases),
        ErrorPolicy,
    ]
    return OmnixSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[ValidationError, NotFoundError, ConflictError, UserError],
        extensions=extensions,
        config=StrawberryConfig(scalar_map=SCALARS),
    )
