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


@strawberry.type
class Query:
    customer = strawberry.field(resolver=customers.customer, description=_doc(customers.customer))
    customers = strawberry.field(
        resolver=customers.customers, description=_doc(customers.customers)
    )
    product = strawberry.field(resolver=products.product, description=_doc(products.product))
    products = strawberry.field(resolver=products.products, description=_doc(products.products))
    ai_usage = strawberry.field(resolver=analysis.ai_usage, description=_doc(analysis.ai_usage))
    segments = strawberry.field(
        resolver=segment_resolvers.segments, description=_doc(segment_resolvers.segments)
    )
    segment_migrations = strawberry.field(
        resolver=segment_resolvers.segment_migrations,
        description=_doc(segment_resolvers.segment_migrations),
    )
    migration_matrix = strawberry.field(
        resolver=segment_resolvers.migration_matrix,
        description=_doc(segment_resolvers.migration_matrix),
    )
    segment_clusters = strawberry.field(
        resolver=segment_resolvers.segment_clusters,
        description=_doc(segment_resolvers.segment_clusters),
    )
    anomalies = strawberry.field(
        resolver=anomalies.anomalies, description=_doc(anomalies.anomalies)
    )
    job = strawberry.field(resolver=job_resolvers.job, description=_doc(job_resolvers.job))
    jobs = strawberry.field(resolver=job_resolvers.jobs, description=_doc(job_resolvers.jobs))


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
    run_batch_analysis = strawberry.mutation(
        resolver=job_resolvers.run_batch_analysis,
        description=_doc(job_resolvers.run_batch_analysis),
    )
    start_recompute = strawberry.mutation(
        resolver=job_resolvers.start_recompute, description=_doc(job_resolvers.start_recompute)
    )
    refit_segments = strawberry.mutation(
        resolver=job_resolvers.refit_segments, description=_doc(job_resolvers.refit_segments)
    )


@strawberry.type
class Subscription:
    purchase_recorded = strawberry.subscription(
        resolver=subscriptions.purchase_recorded,
        description=_doc(subscriptions.purchase_recorded),
    )
    segment_changed = strawberry.subscription(
        resolver=segment_subscriptions.segment_changed,
        description=_doc(segment_subscriptions.segment_changed),
    )
    anomalies = strawberry.subscription(
        resolver=anomaly_subscriptions.anomalies,
        description=_doc(anomaly_subscriptions.anomalies),
    )
    customer_insights = strawberry.subscription(
        resolver=anomaly_subscriptions.customer_insights,
        description=_doc(anomaly_subscriptions.customer_insights),
    )
    job_progress = strawberry.subscription(
        resolver=job_subscriptions.job_progress,
        description=_doc(job_subscriptions.job_progress),
    )


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
