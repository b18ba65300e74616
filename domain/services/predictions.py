"""The prediction engine in the product: batch recompute, incremental update, reads.

* :meth:`PredictionService.recompute` fits every model on the whole base (consumption priors,
  BG/NBD, Gamma-Gamma, the profile reference), stores the fitted :class:`PredictionModel` and every
  customer's predictions.
* :meth:`PredictionService.update` re-predicts a few customers after their purchases against the
  stored model: the cost is that of their own histories, not of the base.
* :meth:`PredictionService.for_customers` reads what is stored and evaluates the time-dependent
  parts at the current moment: a staple's status, its conditional next date and window, P(alive)
  and the expected purchases move as days pass without a purchase, without refitting anything.

:class:`PredictionUpdater` drives ``update`` from the event log (PurchaseRecorded and
ConsentChanged), with a checkpoint, so a restart resumes where it stopped. Heavy numerical work
runs in a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Protocol

import numpy as np
import numpy.typing as npt

from domain.analytics.btyd import (
    CHURN_RISK_BANDS,
    churn_risk,
    conditional_expected_transactions,
    customer_lifetime_value,
    probability_alive,
)
from domain.analytics.consumption import PopulationPriors, Status, cycle_timing
from domain.analytics.profile import (
    SCORE_FEATURES,
    AffluenceBand,
    ProfileReference,
    Profiles,
    build_profiles,
    profile_inputs,
)
from domain.clock import Clock
from domain.customers import Customer
from domain.errors import ValidationError
from domain.events import CONSENT_CHANGED, PURCHASE_RECORDED, DomainEvent
from domain.ports import (
    CustomerStore,
    EventLog,
    PredictionStore,
    ProductStore,
    PurchaseStore,
)
from domain.predictions import (
    Affluence,
    ChurnRiskBand,
    ConsumptionPattern,
    ConsumptionStatus,
    CustomerForecast,
    CustomerPredictions,
    PredictionModel,
    Prior,
    SocioeconomicProfile,
    StoredProfileReference,
)
from domain.products import Product
from domain.purchases import Purchase
from domain.services.forecasting import (
    DEFAULT_DISCOUNT_RATE,
    DEFAULT_HORIZON_DAYS,
    STAPLE_MIN_PURCHASES,
    FittedModels,
    Forecast,
    ForecastError,
    Transactions,
    forecast,
)
from domain.services.reading import all_customers, all_products, histories
from domain.services.tailing import run_consumer

log = logging.getLogger(__name__)

ALGORITHMS = "cycles1-bgnbd1-gg1-profile1"
"""Names the algorithms behind a model version; change it whenever a model's maths changes."""

SECONDS_PER_DAY = 86_400.0
SAVE_CHUNK = 500

_STATUS = {
    Status.ON_TRACK: ConsumptionStatus.ON_TRACK,
    Status.DUE_SOON: ConsumptionStatus.DUE_SOON,
    Status.OVERDUE: ConsumptionStatus.OVERDUE,
    Status.LAPSED: ConsumptionStatus.LAPSED,
}
_AFFLUENCE = {
    AffluenceBand.BUDGET: Affluence.BUDGET,
    AffluenceBand.MID: Affluence.MID,
    AffluenceBand.PREMIUM: Affluence.PREMIUM,
}

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: stages are ``reading``, ``computing`` and ``saving``."""


@dataclass(frozen=True, slots=True)
class PredictionSettings:
    horizon_days: float = DEFAULT_HORIZON_DAYS
    annual_discount_rate: float = DEFAULT_DISCOUNT_RATE
    utc_offset_hours: float = 0.0


@dataclass(frozen=True, slots=True)
class RecomputeReport:
    model_version: str | None
    customers: int
    predicted: int
    patterns: int
    profiles: int
    purchases: int
    lines: int
    read_seconds: float
    compute_seconds: float
    save_seconds: float
    skipped_reason: str | None = None


class BatchRefit(Protocol):
    """Another batch model refitted by every recompute, on the base the recompute has read."""

    async def refit(
        self,
        products: Sequence[Product],
        customers: Sequence[Customer],
        purchases: Sequence[Purchase],
        as_of: datetime,
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class _Computed:
    predictions: list[CustomerPredictions]
    model: PredictionModel | None


class PredictionService:
    def __init__(
        self,
        predictions: PredictionStore,
        customers: CustomerStore,
        products: ProductStore,
        purchases: PurchaseStore,
        clock: Clock,
        settings: PredictionSettings | None = None,
    ) -> None:
        self._store = predictions
        self._customers = customers
        self._products = products
        self._purchases = purchases
        self._clock = clock
        self._settings = settings or PredictionSettings()
        self._model: PredictionModel | None = None
        self._lock = asyncio.Lock()
        self._also_refit: list[BatchRefit] = []

    def also_refit(self, step: BatchRefit) -> None:
        """Have every recompute refit ``step`` too, after the predictions are saved."""
        self._also_refit.append(step)

    @property
    def settings(self) -> PredictionSettings:
        return self._settings

    async def model(self) -> PredictionModel | None:
        """The current model (read once, then kept until a recompute replaces it)."""
        if self._model is None:
            self._model = await self._store.current_model()
        return self._model

    # ---------------------------------------------------------------------------------------
    # Writes
    # ---------------------------------------------------------------------------------------

    async def recompute(self, *, progress: Progress | None = None) -> RecomputeReport:
        """Refit every model on the whole base and re-predict everyone."""
        report = progress or _no_progress
        async with self._lock:
            started = time.perf_counter()
            products = await self._all_products()
            customers = await self._all_customers(report)
            histories = await self._histories([c.id for c in customers], report)
            purchases = [p for h in histories.values() for p in h]
            read_seconds = time.perf_counter() - started

            report("computing", 0, len(customers))
            started = time.perf_counter()
            as_of = self._clock.now()
            try:
                computed = await asyncio.to_thread(
                    _compute, products, customers, purchases, as_of, self._settings, None
                )
            except ForecastError as e:
                log.warning("predictions not recomputed: %s", e)
                return RecomputeReport(
                    None, len(customers), 0, 0, 0, len(purchases), _lines(purchases),
                    read_seconds, time.perf_counter() - started, 0.0, skipped_reason=str(e),
                )  # fmt: skip
            compute_seconds = time.perf_counter() - started
            report("computing", len(customers), len(customers))

            started = time.perf_counter()
            assert computed.model is not None
            await self._store.save_model(computed.model)
            by_id = {p.customer_id: p for p in computed.predictions}
            # Customers without purchases get an empty record, replacing anything older.
            everyone = [
                by_id.get(c.id) or CustomerPredictions(c.id, (), None, None) for c in customers
            ]
            for i in range(0, len(everyone), SAVE_CHUNK):
                await self._store.save(everyone[i : i + SAVE_CHUNK])
                report("saving", min(i + SAVE_CHUNK, len(everyone)), len(everyone))
            self._model = computed.model
            save_seconds = time.perf_counter() - started
            for step in self._also_refit:
                await step.refit(products, customers, purchases, as_of)
            return RecomputeReport(
                model_version=computed.model.version,
                customers=len(customers),
                predicted=len(computed.predictions),
                patterns=sum(len(p.consumption) for p in computed.predictions),
                profiles=sum(p.profile is not None for p in computed.predictions),
                purchases=len(purchases),
                lines=_lines(purchases),
                read_seconds=read_seconds,
                compute_seconds=compute_seconds,
                save_seconds=save_seconds,
            )

    async def update(self, customer_ids: Iterable[str]) -> int:
        """Re-predict these customers against the stored model; returns how many were updated.
        Before the first recompute there is no model: this runs one."""
        ids = list(dict.fromkeys(customer_ids))
        if not ids:
            return 0
        model = await self.model()
        if model is None:
            report = await self.recompute()
            return report.predicted
        customers = await self._customers.get_many(ids)
        known = [customers[i] for i in ids if i in customers]
        if not known:
            return 0
        products = await self._all_products()
        histories = await self._histories([c.id for c in known])
        purchases = [p for h in histories.values() for p in h]
        computed = await asyncio.to_thread(
            _compute, products, known, purchases, self._clock.now(), self._settings, model
        )
        by_id = {p.customer_id: p for p in computed.predictions}
        await self._store.save(
            [by_id.get(c.id) or CustomerPredictions(c.id, (), None, None) for c in known]
        )
        return len(known)

    # ---------------------------------------------------------------------------------------
    # Reads
    # ---------------------------------------------------------------------------------------

    async def for_customers(self, customer_ids: Sequence[str]) -> dict[str, CustomerPredictions]:
        """What is stored on each customer, evaluated at the current moment."""
        stored = await self._store.get_many(customer_ids)
        if not stored:
            return {}
        model = await self.model()
        now = self._clock.now()
        return {cid: _as_of(p, model, now) for cid, p in stored.items()}

    async def for_customer(self, customer_id: str) -> CustomerPredictions | None:
        return (await self.for_customers([customer_id])).get(customer_id)

    async def expected_purchases(self, forecast_: CustomerForecast, days: int) -> float:
        """Expected purchases (transaction days) in the next ``days``."""
        _check_days(days)
        return expected_purchases(forecast_, await self.model(), float(days))

    def probability_within(
        self, pattern: ConsumptionPattern, days: int, *, p_alive: float = 1.0
    ) -> float:
        """Probability of buying the pattern's sku within ``days`` from now: the cycle's
        conditional probability times ``p_alive``, the probability the customer is still
        active at all (a long-lapsed customer is not "about to buy" just because the cycle's
        tail says so)."""
        _check_days(days)
        return p_alive * probability_within(pattern, self._clock.now(), float(days))

    def days_overdue(self, pattern: ConsumptionPattern) -> float:
        """Days past the usual gap (last purchase + mean interval); 0 when not yet due."""
        usual = pattern.last_purchased_at + timedelta(days=pattern.mean_interval_days)
        return max((self._clock.now() - usual).total_seconds() / SECONDS_PER_DAY, 0.0)

    # ---------------------------------------------------------------------------------------
    # Reading the base
    # ---------------------------------------------------------------------------------------

    async def _all_products(self) -> list[Product]:
        return await all_products(self._products)

    async def _all_customers(self, progress: Progress) -> list[Customer]:
        return await all_customers(self._customers, progress)

    async def _histories(
        self, customer_ids: Sequence[str], progress: Progress | None = None
    ) -> dict[str, list[Purchase]]:
        return await histories(self._purchases, customer_ids, progress)


MAX_DAYS = 3650


def _check_days(days: int) -> None:
    if not 1 <= days <= MAX_DAYS:
        raise ValidationError(
            f"days must be between 1 and {MAX_DAYS}, got {days}",
            field="days",
            code="DAYS_OUT_OF_RANGE",
        )


def _no_progress(stage: str, done: int, total: int) -> None:
    return None


def _lines(purchases: Sequence[Purchase]) -> int:
    return sum(len(p.lines) for p in purchases)


# -------------------------------------------------------------------------------------------
# The computation (runs in a worker thread)
# -------------------------------------------------------------------------------------------


def _day(at: datetime) -> float:
    return at.timestamp() / SECONDS_PER_DAY


def _moment(days: float) -> datetime:
    return datetime.fromtimestamp(days * SECONDS_PER_DAY, UTC)


def _version(fitted_at: datetime) -> str:
    return f"{ALGORITHMS}@{fitted_at.astimezone(UTC):%Y%m%dT%H%M%SZ}"


def predict(
    products: Sequence[Product],
    customers: Sequence[Customer],
    purchases: Sequence[Purchase],
    as_of: datetime,
    settings: PredictionSettings,
) -> list[CustomerPredictions]:
    """Fit every model on ``purchases`` up to ``as_of`` and predict ``customers`` (blocking;
    offline evaluations use it to see what the engine would have said at a past moment)."""
    return _compute(products, customers, purchases, as_of, settings, None).predictions


def _compute(
    products: Sequence[Product],
    customers: Sequence[Customer],
    purchases: Sequence[Purchase],
    as_of: datetime,
    settings: PredictionSettings,
    model: PredictionModel | None,
) -> _Computed:
    """Predict ``customers`` from their ``purchases``: fitting every model when ``model`` is
    None (and returning the new one), applying ``model`` otherwise."""
    inputs = profile_inputs(products, customers, purchases)
    lines = inputs.lines
    if len(lines) == 0:
        if model is None:
            raise ForecastError("no purchases to learn from")
        return _Computed([], None)
    catalogue = inputs.catalogue
    amount = lines.quantity * lines.unit_price_cents - lines.discount_cents
    transactions = Transactions(
        customer=lines.customer,
        purchased_at=lines.purchased_at,
        amount=amount,
        sku=lines.sku,
        quantity=lines.quantity,
        sku_category=catalogue.category,
    )
    fitted = None
    reference = None
    if model is not None:
        fitted = FittedModels(
            consumption=_priors_for(model, inputs.skus, inputs.categories, catalogue.category),
            bgnbd=model.bgnbd,
            gamma_gamma=model.gamma_gamma,
        )
        reference = _reference_from(model.profile_reference)
    day = _day(as_of)
    result = forecast(
        transactions,
        as_of=day,
        horizon_days=model.horizon_days if model else settings.horizon_days,
        annual_discount_rate=(
            model.annual_discount_rate if model else settings.annual_discount_rate
        ),
        fitted=fitted,
    )
    profiles = None
    if inputs.consent.any():
        profiles = build_profiles(
            lines,
            catalogue,
            inputs.consent,
            utc_offset_hours=settings.utc_offset_hours,
            reference=reference,
        )
    new_model = None
    if model is None:
        new_model = _model_from(result, profiles, inputs.skus, inputs.categories, as_of, settings)
        new_model = replace(
            new_model, customers=len(customers), purchases=len(purchases), lines=len(lines)
        )
    version = (new_model or model).version  # type: ignore[union-attr]
    return _Computed(
        _assemble(result, profiles, inputs.customer_ids, inputs.skus, as_of, version),
        new_model,
    )


def _priors_for(
    model: PredictionModel,
    skus: Sequence[str],
    categories: Sequence[str],
    sku_category: npt.NDArray[np.int64],
) -> PopulationPriors:
    """The stored priors aligned with this computation's sku and category indexes: a sku the fit
    never saw takes its category's prior, an unknown category the whole base's."""
    base = model.base_prior
    by_category = [model.category_priors.get(c, base) for c in categories]
    by_sku = [
        model.sku_priors.get(sku) or by_category[int(sku_category[i])] for i, sku in enumerate(skus)
    ]

    def column(priors: Sequence[Prior], name: str) -> npt.NDArray[np.float64]:
        return np.array([getattr(p, name) for p in priors], dtype=np.float64)

    return PopulationPriors(
        sku_mean=column(by_sku, "mean"),
        sku_tau2=column(by_sku, "tau2"),
        sku_sigma2=column(by_sku, "sigma2"),
        category_mean=column(by_category, "mean"),
        category_tau2=column(by_category, "tau2"),
        category_sigma2=column(by_category, "sigma2"),
        base_mean=base.mean,
        base_tau2=base.tau2,
        base_sigma2=base.sigma2,
    )


def _reference_from(stored: StoredProfileReference | None) -> ProfileReference | None:
    if stored is None:
        return None
    return ProfileReference(
        centre=np.array(stored.centre, dtype=np.float64),
        scale=np.array(stored.scale, dtype=np.float64),
        cuts=stored.cuts,
        median_units_per_week=stored.median_units_per_week,
        typical_household_size=stored.typical_household_size,
        customers=stored.customers,
    )


def _model_from(
    result: Forecast,
    profiles: Profiles | None,
    skus: Sequence[str],
    categories: Sequence[str],
    as_of: datetime,
    settings: PredictionSettings,
) -> PredictionModel:
    priors = result.consumption_priors
    sku_priors: dict[str, Prior] = {}
    category_priors: dict[str, Prior] = {}
    base = Prior(0.0, 0.36, 0.25)
    if priors is not None:
        for i, sku in enumerate(skus[: len(priors.sku_mean)]):
            sku_priors[sku] = Prior(
                float(priors.sku_mean[i]), float(priors.sku_tau2[i]), float(priors.sku_sigma2[i])
            )
        for i, category in enumerate(categories[: len(priors.category_mean)]):
            category_priors[category] = Prior(
                float(priors.category_mean[i]),
                float(priors.category_tau2[i]),
                float(priors.category_sigma2[i]),
            )
        base = Prior(priors.base_mean, priors.base_tau2, priors.base_sigma2)
    reference = None
    if profiles is not None and profiles.reference.customers > 0:
        r = profiles.reference
        reference = StoredProfileReference(
            centre=tuple(float(x) for x in r.centre),
            scale=tuple(float(x) for x in r.scale),
            cuts=(float(r.cuts[0]), float(r.cuts[1])),
            median_units_per_week=float(r.median_units_per_week),
            typical_household_size=float(r.typical_household_size),
            customers=int(r.customers),
        )
    return PredictionModel(
        version=_version(as_of),
        fitted_at=as_of,
        as_of=as_of,
        horizon_days=settings.horizon_days,
        annual_discount_rate=settings.annual_discount_rate,
        bgnbd=result.bgnbd,
        gamma_gamma=result.gamma_gamma,
        sku_priors=sku_priors,
        category_priors=category_priors,
        base_prior=base,
        profile_reference=reference,
        customers=0,
        purchases=0,
        lines=0,
    )


def _assemble(
    result: Forecast,
    profiles: Profiles | None,
    customer_ids: Sequence[str],
    skus: Sequence[str],
    computed_at: datetime,
    version: str,
) -> list[CustomerPredictions]:
    patterns: dict[int, list[ConsumptionPattern]] = {}
    consumption = result.consumption
    if consumption is not None:
        c = consumption.cycles
        for i in range(len(consumption)):
            owner = int(consumption.customer[i])
            patterns.setdefault(owner, []).append(
                ConsumptionPattern(
                    customer_id=customer_ids[owner],
                    sku=skus[int(consumption.sku[i])],
                    purchases=int(c.purchases[i]),
                    mean_interval_days=float(c.mean_interval_days[i]),
                    units_per_day=float(c.units_per_day[i]),
                    last_purchased_at=_moment(float(c.last_purchased_at[i])),
                    last_quantity=int(c.last_quantity[i]),
                    next_expected_at=_moment(float(c.next_expected_at[i])),
                    window_low=_moment(float(c.window_low[i])),
                    window_high=_moment(float(c.window_high[i])),
                    status=_STATUS[Status(int(c.status[i]))],
                    confidence=float(c.confidence[i]),
                    log_days_per_unit=float(c.log_days_per_unit[i]),
                    log_spread=float(c.log_spread[i]),
                    computed_at=computed_at,
                    model_version=version,
                )
            )
    forecasts: dict[int, CustomerForecast] = {}
    f = result.customers
    for i in range(len(f)):
        owner = int(f.customer[i])
        forecasts[owner] = CustomerForecast(
            customer_id=customer_ids[owner],
            frequency=int(f.frequency[i]),
            recency_days=float(f.recency_days[i]),
            age_days=float(f.t_days[i]),
            p_alive=float(f.p_alive[i]),
            expected_transactions=float(f.expected_transactions[i]),
            horizon_days=result.horizon_days,
            expected_spend_cents=float(f.expected_spend[i]),
            clv_cents=float(f.clv[i]),
            monetary_cents=float(f.monetary[i]),
            churn_risk=ChurnRiskBand(CHURN_RISK_BANDS[int(f.churn_risk[i])].value),
            overdue_staples=int(f.overdue_staples[i]),
            computed_at=computed_at,
            model_version=version,
        )
    profiled: dict[int, SocioeconomicProfile] = {}
    if profiles is not None:
        for index in np.flatnonzero(profiles.profiled & (profiles.features.lines > 0)):
            profiled[int(index)] = _profile(
                profiles, int(index), customer_ids, computed_at, version
            )
    owners = sorted(set(patterns) | set(forecasts) | set(profiled))
    return [
        CustomerPredictions(
            customer_id=customer_ids[o],
            consumption=tuple(sorted(patterns.get(o, ()), key=lambda p: p.next_expected_at)),
            forecast=forecasts.get(o),
            profile=profiled.get(o),
        )
        for o in owners
    ]


def _profile(
    profiles: Profiles, i: int, customer_ids: Sequence[str], computed_at: datetime, version: str
) -> SocioeconomicProfile:
    f = profiles.features
    drivers = tuple(SCORE_FEATURES[int(code)] for code in profiles.drivers[i] if code >= 0)
    return SocioeconomicProfile(
        customer_id=customer_ids[i],
        affluence=_AFFLUENCE[AffluenceBand(int(profiles.band[i]))],
        confidence=float(profiles.confidence[i]),
        affluence_score=float(profiles.affluence_score[i]),
        drivers=drivers,
        household_size=float(profiles.household_size[i]),
        tier_share_budget=float(f.tier_share[i, 0]),
        tier_share_standard=float(f.tier_share[i, 1]),
        tier_share_premium=float(f.tier_share[i, 2]),
        relative_price_index=float(f.relative_price_index[i]),
        promotion_share=float(f.promo_line_share[i]),
        lines_per_basket=float(f.lines_per_basket[i]),
        spend_per_basket_cents=float(f.spend_per_basket[i]),
        categories_per_basket=float(f.categories_per_basket[i]),
        category_entropy=float(f.category_entropy[i]),
        units_per_week=float(f.units_per_week[i]),
        weekend_share=float(f.weekend_share[i]),
        morning_share=float(f.morning_share[i]),
        afternoon_share=float(f.afternoon_share[i]),
        evening_share=float(f.evening_share[i]),
        computed_at=computed_at,
        model_version=version,
    )


# -------------------------------------------------------------------------------------------
# Reading stored predictions at a later moment
# -------------------------------------------------------------------------------------------


def _as_of(
    stored: CustomerPredictions, model: PredictionModel | None, now: datetime
) -> CustomerPredictions:
    """The stored predictions as they read at ``now``: no purchase has happened since they were
    computed (else the update would have replaced them), so only time has moved."""
    consumption = stored.consumption
    day = _day(now)
    overdue = 0
    if consumption:
        timing = cycle_timing(
            [p.log_days_per_unit for p in consumption],
            [p.log_spread for p in consumption],
            [_day(p.last_purchased_at) for p in consumption],
            [p.last_quantity for p in consumption],
            max(day, max(_day(p.computed_at) for p in consumption)),
        )
        consumption = tuple(
            replace(
                p,
                next_expected_at=_moment(float(timing.next_expected_at[i])),
                window_low=_moment(float(timing.window_low[i])),
                window_high=_moment(float(timing.window_high[i])),
                status=_STATUS[Status(int(timing.status[i]))],
            )
            for i, p in enumerate(consumption)
        )
        overdue = sum(
            p.purchases >= STAPLE_MIN_PURCHASES
            and p.status in (ConsumptionStatus.OVERDUE, ConsumptionStatus.LAPSED)
            for p in consumption
        )
    forecast_now = stored.forecast
    if forecast_now is not None and model is not None:
        forecast_now = _forecast_at(forecast_now, model, day, overdue if consumption else None)
    return replace(stored, consumption=consumption, forecast=forecast_now)


def _forecast_at(
    stored: CustomerForecast, model: PredictionModel, day: float, overdue: int | None
) -> CustomerForecast:
    elapsed = max(day - _day(stored.computed_at), 0.0)
    if elapsed <= 0 and overdue is None:
        return stored
    unit = model.bgnbd.params.time_unit_days
    x = stored.frequency
    t_x = stored.recency_days / unit
    age = (stored.age_days + elapsed) / unit
    p_alive = float(probability_alive(model.bgnbd.params, x, t_x, age))
    expected = float(
        conditional_expected_transactions(
            model.bgnbd.params, stored.horizon_days / unit, x, t_x, age
        )
    )
    clv = float(
        customer_lifetime_value(
            model.bgnbd.params,
            model.gamma_gamma.params,
            np.array([x]),
            np.array([t_x]),
            np.array([age]),
            np.array([stored.monetary_cents]),
            horizon_days=stored.horizon_days,
            annual_discount_rate=model.annual_discount_rate,
        )[0]
    )
    staples = overdue if overdue is not None else stored.overdue_staples
    band = CHURN_RISK_BANDS[int(churn_risk([p_alive], [staples])[0])]
    return replace(
        stored,
        age_days=stored.age_days + elapsed,
        p_alive=p_alive,
        expected_transactions=expected,
        clv_cents=clv if math.isfinite(clv) else stored.clv_cents,
        churn_risk=ChurnRiskBand(band.value),
        overdue_staples=staples,
    )


def expected_purchases(
    forecast_: CustomerForecast, model: PredictionModel | None, days: float
) -> float:
    """Expected transactions in the next ``days``, from the stored summary (already moved to
    the present by :meth:`PredictionService.for_customers`)."""
    if model is None:
        return forecast_.expected_transactions * days / forecast_.horizon_days
    unit = model.bgnbd.params.time_unit_days
    return float(
        conditional_expected_transactions(
            model.bgnbd.params,
            days / unit,
            forecast_.frequency,
            forecast_.recency_days / unit,
            forecast_.age_days / unit,
        )
    )


def probability_within(pattern: ConsumptionPattern, now: datetime, days: float) -> float:
    """Probability the customer buys this sku within ``days`` from ``now``."""
    timing = cycle_timing(
        [pattern.log_days_per_unit],
        [pattern.log_spread],
        [_day(pattern.last_purchased_at)],
        [pattern.last_quantity],
        _day(now),
        within_days=days,
    )
    return float(timing.probability_within[0])


# -------------------------------------------------------------------------------------------
# The event-driven update
# -------------------------------------------------------------------------------------------


class UpdateHook(Protocol):
    """Runs around each batch's prediction update (the anomaly detectors): ``update`` is the
    update itself, to be awaited once; the checkpoint moves only after the hook returns."""

    async def around_update(
        self, events: Sequence[DomainEvent], update: Callable[[], Awaitable[int]]
    ) -> int: ...


class PredictionUpdater:
    """Tails the event log from its checkpoint and re-predicts the customers whose purchases or
    consent changed. Re-predicting is idempotent (it reads the whole history), so an event
    delivered twice costs time, never correctness. A ``hook`` (the anomaly processor) runs
    around each batch's update, in the same pass and before the checkpoint moves."""

    CONSUMER = "predictions"

    def __init__(
        self,
        events: EventLog,
        service: PredictionService,
        *,
        batch_size: int = 500,
        poll_interval: float = 0.5,
        hook: UpdateHook | None = None,
    ) -> None:
        self._events = events
        self._service = service
        self._hook = hook
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self.position = 0
        self.updated = 0

    async def start(self) -> None:
        """Resume from the checkpoint. Without one, the first recompute covers the history: it
        runs now (when nothing is stored yet) and the checkpoint starts at the head it saw."""
        self.position = await self._events.checkpoint(self.CONSUMER)
        if self.position == 0:
            head = await self._events.head()
            if await self._service.model() is None:
                await self._service.recompute()
            self.position = head
            await self._events.save_checkpoint(self.CONSUMER, head)

    async def recompute(self, *, progress: Progress | None = None) -> RecomputeReport:
        """Refit everyone and move the checkpoint past every event the refit has seen (the head
        is read first, so an event appended meanwhile is still handled incrementally)."""
        head = await self._events.head()
        report = await self._service.recompute(progress=progress)
        if report.model_version is not None and head > self.position:
            self.position = head
            await self._events.save_checkpoint(self.CONSUMER, head)
        return report

    async def process_once(self) -> int:
        """Handle what was appended since the checkpoint; returns how many events were read."""
        batch = await self._events.read(after=self.position, limit=self._batch_size)
        if not batch:
            return 0
        customers = [
            e.event.customer_id
            for e in batch
            if e.event.type in (PURCHASE_RECORDED, CONSENT_CHANGED)
        ]
        if self._hook is None:
            self.updated += await self._service.update(customers)
        else:
            self.updated += await self._hook.around_update(
                [e.event for e in batch], partial(self._service.update, customers)
            )
        self.position = batch[-1].position
        await self._events.save_checkpoint(self.CONSUMER, self.position)
        return len(batch)

    async def run(self) -> None:
        """Start (see :meth:`start`), then update until cancelled; a failure is logged and
        retried with backoff, never skipped."""
        await run_consumer(
            self, self._events, name="prediction", batch_size=self._batch_size,
            poll_interval=self._poll_interval,
        )  # fmt: skip
