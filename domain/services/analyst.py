"""The AI analyst service: a customer's structured analysis, cached, with a local fallback.

``analyse`` builds the pseudonymous input (last purchases, statistics, segment), looks for a
cached analysis under (customer, input fingerprint, model, prompt version), and otherwise asks
the configured analyst. A new purchase changes the input and so the fingerprint: the next read
misses the cache and refreshes. When the configured analyst fails, times out or answers
something invalid, the local statistical analyst answers instead; the result names the reason,
which is logged and counted. Every call and cache hit is recorded as :class:`AiUsage`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta

from domain.analysis import (
    ANALYSIS_PURCHASES,
    AiUsage,
    AiUsageSummary,
    AnalysisInput,
    AnalystAnswer,
    AnalystError,
    CustomerAnalysis,
    ModelUsage,
    build_input,
)
from domain.clock import Clock
from domain.errors import DomainError, NotFoundError, ValidationError
from domain.ids import is_valid_id, new_id
from domain.ports import (
    AiUsageStore,
    Analyst,
    Cache,
    CustomerStore,
    ProductStore,
    PurchasePageRequest,
    PurchaseStore,
)
from domain.predictions import CustomerPredictions

log = logging.getLogger("omnix.analyst")

PredictionLookup = Callable[[str], Awaitable[CustomerPredictions | None]]
SegmentLookup = Callable[[str], Awaitable[str | None]]

DEFAULT_TTL_SECONDS = 24 * 3600.0
FALLBACK_TTL_SECONDS = 60.0
"""A fallback answer is cached briefly under the configured model's key, so an outage costs one
timeout a minute per customer rather than one per read, and the model is tried again soon."""


class AnalystService:
    """The AI analyst's structured view of a customer."""

    def __init__(
        self,
        *,
        analyst: Analyst,
        fallback: Analyst,
        customers: CustomerStore,
        purchases: PurchaseStore,
        products: ProductStore,
        predictions: PredictionLookup,
        cache: Cache,
        usage: AiUsageStore,
        clock: Clock,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        segments: SegmentLookup | None = None,
    ) -> None:
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        self._analyst = analyst
        self._fallback = fallback
        self._customers = customers
        self._purchases = purchases
        self._products = products
        self._predictions = predictions
        self._segments = segments
        self._cache = cache
        self._usage = usage
        self._clock = clock
        self._ttl = ttl_seconds
        self._in_flight: dict[str, asyncio.Future[CustomerAnalysis]] = {}
        self.fallbacks: Counter[str] = Counter()
        """How often the fallback answered, by reason."""
        self.usage_write_failures = 0

    @property
    def model(self) -> str:
        return self._analyst.model

    @property
    def prompt_version(self) -> str:
        return self._analyst.prompt_version

    async def input_for(self, customer_id: str) -> AnalysisInput:
        """The analyst's input for a customer now. NotFoundError when there is no such customer."""
        customer = await self._customers.get(customer_id) if is_valid_id(customer_id) else None
        if customer is None:
            raise NotFoundError("customer", customer_id, field="customerId")
        page_request = PurchasePageRequest(customer_id, ANALYSIS_PURCHASES)
        pages, predictions, segment = await asyncio.gather(
            self._purchases.list_for_customers([page_request]),
            self._predictions(customer_id),
            self._segments(customer_id) if self._segments else _none(),
        )
        purchases = pages[0].items
        skus = {line.sku for p in purchases for line in p.lines}
        if predictions:
            skus |= {c.sku for c in predictions.consumption}
        products = await self._products.get_many(sorted(skus))
        return build_input(
            customer, purchases, predictions, products, as_of=self._clock.now(), segment=segment
        )

    def cache_key(self, given: AnalysisInput) -> str:
        return (
            f"omnix:analysis:{given.customer_id}:{self.model}:{self.prompt_version}:"
            f"{given.fingerprint()}"
        )

    async def analyse(self, customer_id: str, *, refresh: bool = False) -> CustomerAnalysis:
        """The customer's analysis: from the cache unless ``refresh`` or the inputs changed."""
        given = await self.input_for(customer_id)
        key = self.cache_key(given)
        if not refresh:
            hit = await self._cached(key, given)
            if hit is not None:
                return hit
        running = self._in_flight.get(key)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[CustomerAnalysis] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            result = await self._fresh(key, given)
        except BaseException as e:
            future.set_exception(e)
            future.exception()  # retrieved here, so waiters alone decide whether it is seen
            raise
        else:
            future.set_result(result)
            return result
        finally:
            del self._in_flight[key]

    async def _cached(self, key: str, given: AnalysisInput) -> CustomerAnalysis | None:
        raw = await self._cache.get(key)
        if raw is None:
            return None
        try:
            found = CustomerAnalysis.from_json(raw)
        except ValueError:
            log.warning("discarding an unreadable cached analysis for %s", given.customer_id)
            return None
        await self._record(
            given.customer_id,
            found.model,
            found.prompt_version,
            ModelUsage(),
            0.0,
            success=True,
            cached=True,
            fallback=found.fallback_reason is not None,
        )
        return replace(found, cached=True)

    async def _fresh(self, key: str, given: AnalysisInput) -> CustomerAnalysis:
        started = time.perf_counter()
        reason: str | None = None
        try:
            answer = await self._analyst.analyse(given)
        except AnalystError as e:
            reason = e.reason
            await self._record(
                given.customer_id,
                self.model,
                self.prompt_version,
                e.usage or ModelUsage(),
                _ms(started),
                success=False,
                cached=False,
                fallback=False,
                error=e.reason,
            )
            self.fallbacks[reason] += 1
            log.warning(
                "analyst %s failed for %s (%s: %s); the local analyst answers",
                self.model,
                given.customer_id,
                e.reason,
                e.message,
            )
            started = time.perf_counter()
            answer = await self._fallback.analyse(given)
        await self._record(
            given.customer_id,
            answer.model,
            answer.prompt_version,
            answer.usage,
            _ms(started),
            success=True,
            cached=False,
            fallback=reason is not None,
        )
        analysis = self._analysis(given, answer, reason)
        ttl = self._ttl if reason is None else min(self._ttl, FALLBACK_TTL_SECONDS)
        await self._cache.set(key, analysis.to_json(), ttl_seconds=ttl)
        return analysis

    def _analysis(
        self, given: AnalysisInput, answer: AnalystAnswer, reason: str | None
    ) -> CustomerAnalysis:
        return CustomerAnalysis(
            customer_id=given.customer_id,
            body=answer.body,
            model=answer.model,
            prompt_version=answer.prompt_version,
            generated_at=self._clock.now(),
            input_hash=given.fingerprint(),
            usage=answer.usage,
            fallback_reason=reason,
        )

    async def _record(
        self,
        customer_id: str,
        model: str,
        prompt_version: str,
        usage: ModelUsage,
        latency_ms: float,
        *,
        success: bool,
        cached: bool,
        fallback: bool,
        error: str | None = None,
    ) -> None:
        """Record one call; a usage store that is down costs the record, never the analysis."""
        record = AiUsage(
            id=new_id("aiu"),
            occurred_at=self._clock.now(),
            customer_id=customer_id,
            model=model,
            prompt_version=prompt_version,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cost_usd=usage.cost_usd,
            latency_ms=round(latency_ms, 3),
            success=success,
            cached=cached,
            fallback=fallback,
            error=error,
        )
        try:
            await self._usage.record(record)
        except DomainError as e:
            self.usage_write_failures += 1
            log.error("could not record AI usage %s: %s", record.id, e.message)

    async def usage_summary(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> AiUsageSummary:
        """Calls, tokens, cost and latency per model and per UTC day in ``[since, until)``."""
        for name, value in (("since", since), ("until", until)):
            if value is not None and value.tzinfo is None:
                raise ValidationError(f"{name} needs a time zone", field=name)
        if since is not None and until is not None and since >= until:
            raise ValidationError("since must be before until", field="since")
        if since is not None and until is not None and until - since > timedelta(days=3660):
            raise ValidationError("the range may span at most ten years", field="until")
        groups = await self._usage.totals(since=since, until=until)
        return AiUsageSummary.of(groups, since, until)


async def _none() -> None:
    return None


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
