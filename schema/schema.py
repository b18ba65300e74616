"""The assembled GraphQL schema."""

from __future__ import annotations

import inspect
from typing import Any

import strawberry
from graphql.error import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from resolvers import analysis, anomalies, customers, products, purchases
from resolvers import jobs as job_resolvers
from resolvers import segments as segment_resolvers
from schema.errors import ConflictError, NotFoundError, UserError, ValidationError
from schema.errors_policy import ErrorPolicy, log_errors
from schema.fastpath import FastPath
from schema.scalars import SCALARS
from subscriptions import anomalies as anomaly_subscriptions
from subscriptions import jobs as job_subscriptions
from subscriptions import purchases as subscriptions
from subscriptions import segments as segment_subscriptions


def _doc(resolver: Any) -> str | None:
    return inspect.getdoc(resolver)


def _field(resolver: Any) -> Any:
    return strawberry.field(resolver=resolver, description=_doc(resolver))


def _mutation(resolver: Any) -> Any:
    return strawberry.mutation(resolver=resolver, description=_doc(resolver))


def _subscription(resolver: Any) -> Any:
    return strawberry.subscription(resolver=resolver, description=_doc(resolver))


@strawberry.type
class Query:
    customer = _field(customers.customer)
    customers = _field(customers.customers)
    product = _field(products.product)
    products = _field(products.products)
    ai_usage = _field(analysis.ai_usage)
    segments = _field(segment_resolvers.segments)
    segment_migrations = _field(segment_resolvers.segment_migrations)
    migration_matrix = _field(segment_resolvers.migration_matrix)
    segment_clusters = _field(segment_resolvers.segment_clusters)
    anomalies = _field(anomalies.anomalies)
    job = _field(job_resolvers.job)
    jobs = _field(job_resolvers.jobs)


@strawberry.type
class Mutation:
    register_customer = _mutation(customers.register_customer)
    record_purchase = _mutation(purchases.record_purchase)
    set_consent = _mutation(customers.set_consent)
    run_batch_analysis = _mutation(job_resolvers.run_batch_analysis)
    start_recompute = _mutation(job_resolvers.start_recompute)
    refit_segments = _mutation(job_resolvers.refit_segments)


@strawberry.type
class Subscription:
    purchase_recorded = _subscription(subscriptions.purchase_recorded)
    segment_changed = _subscription(segment_subscriptions.segment_changed)
    anomalies = _subscription(anomaly_subscriptions.anomalies)
    customer_insights = _subscription(anomaly_subscriptions.customer_insights)
    job_progress = _subscription(job_subscriptions.job_progress)


class OmnixSchema(strawberry.Schema):
    fast_path: FastPath

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        context = execution_context.context if execution_context else None
        log_errors(errors, getattr(context, "request_id", None))


def build_schema(
    *, max_depth: int = 12, max_tokens: int = 3000, max_aliases: int = 30
) -> OmnixSchema:
    # The limiters' validation rules are classes built per limiter instance; building them once
    # keeps them stable, so the validation cache (keyed by document and rules) actually hits.
    limits = [
        *QueryDepthLimiter(max_depth=max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=max_aliases).validation_rules,
    ]
    extensions: list[Any] = [
        lambda: MaxTokensLimiter(max_token_count=max_tokens),
        lambda: ParserCache(maxsize=512),
        lambda: AddValidationRules(limits),
        lambda: ValidationCache(maxsize=512),
        ErrorPolicy,
    ]
    schema = OmnixSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[ValidationError, NotFoundError, ConflictError, UserError],
        extensions=extensions,
        config=StrawberryConfig(scalar_map=SCALARS),
    )
    schema.fast_path = FastPath(schema._schema, rules=limits, max_tokens=max_tokens)
    return schema
