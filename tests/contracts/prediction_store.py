"""The PredictionStore contract. Fixture: ``prediction_store``."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from domain.analytics.btyd import BgNbdFit, BgNbdParams, GammaGammaFit, GammaGammaParams
from domain.ports import PredictionStore
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
from tests.contracts.builders import T0

VERSION = "cycles1-bgnbd1-gg1-profile1@20261122T060000Z"


def pattern(customer_id: str, sku: str, *, days_ago: float = 3.0) -> ConsumptionPattern:
    last = T0 - timedelta(days=days_ago)
    return ConsumptionPattern(
        customer_id=customer_id, sku=sku, purchases=7, mean_interval_days=5.5,
        units_per_day=0.18, last_purchased_at=last, last_quantity=2,
        next_expected_at=last + timedelta(days=5), window_low=last + timedelta(days=3),
        window_high=last + timedelta(days=8), status=ConsumptionStatus.DUE_SOON,
        confidence=0.71, log_days_per_unit=1.01, log_spread=0.34, computed_at=T0,
        model_version=VERSION,
    )  # fmt: skip


def forecast(customer_id: str) -> CustomerForecast:
    return CustomerForecast(
        customer_id=customer_id, frequency=12, recency_days=80.0, age_days=120.5, p_alive=0.93,
        expected_transactions=30.2, horizon_days=365.0, expected_spend_cents=2314.5,
        clv_cents=61234.7, monetary_cents=2250.0, churn_risk=ChurnRiskBand.LOW,
        overdue_staples=1, computed_at=T0, model_version=VERSION,
    )  # fmt: skip


def profile(customer_id: str) -> SocioeconomicProfile:
    return SocioeconomicProfile(
        customer_id=customer_id, affluence=Affluence.PREMIUM, confidence=0.66,
        affluence_score=1.2, drivers=("tier_mix", "relative_price_index", "promotion_share"),
        household_size=2.4, tier_share_budget=0.1, tier_share_standard=0.5,
        tier_share_premium=0.4, relative_price_index=1.3, promotion_share=0.05,
        lines_per_basket=6.5, spend_per_basket_cents=4210.0, categories_per_basket=4.1,
        category_entropy=2.2, units_per_week=14.0, weekend_share=0.4, morning_share=0.3,
        afternoon_share=0.5, evening_share=0.2, computed_at=T0, model_version=VERSION,
    )  # fmt: skip


def everything(customer_id: str, skus: tuple[str, ...] = ("MILK", "BREAD")) -> CustomerPredictions:
    return CustomerPredictions(
        customer_id=customer_id,
        consumption=tuple(pattern(customer_id, s) for s in skus),
        forecast=forecast(customer_id),
        profile=profile(customer_id),
    )


def model(version: str = VERSION, *, hours: int = 0) -> PredictionModel:
    return PredictionModel(
        version=version, fitted_at=T0 + timedelta(hours=hours), as_of=T0, horizon_days=365.0,
        annual_discount_rate=0.1,
        bgnbd=BgNbdFit(BgNbdParams(0.243, 4.414, 0.793, 2.426, 7.0), -9582.4, 40, True, 2357),
        gamma_gamma=GammaGammaFit(GammaGammaParams(6.25, 3.74, 15.44), -4000.0, 20, True, 946),
        sku_priors={"MILK": Prior(0.9, 0.2, 0.1)}, category_priors={"dairy": Prior(1.0, 0.3, 0.2)},
        base_prior=Prior(1.2, 0.36, 0.25),
        profile_reference=StoredProfileReference((0.1, 0.0, 0.2), (1.0, 0.5, 0.3), (-0.4, 0.4),
                                                 10.0, 2.0, 300),
        customers=500, purchases=42_000, lines=250_000,
    )  # fmt: skip


def _sorted(p: CustomerPredictions) -> CustomerPredictions:
    return replace(p, consumption=tuple(sorted(p.consumption, key=lambda c: c.sku)))


async def test_predictions_round_trip(prediction_store: PredictionStore) -> None:
    stored = everything("cus_1")
    await prediction_store.save([stored, everything("cus_2", ("EGGS",))])

    found = await prediction_store.get_many(["cus_1", "cus_2", "cus_none"])

    assert set(found) == {"cus_1", "cus_2"}
    assert _sorted(found["cus_1"]) == _sorted(stored)
    assert found["cus_2"].consumption[0].sku == "EGGS"
    assert found["cus_1"].forecast is not None
    assert found["cus_1"].forecast.computed_at == T0


async def test_saving_replaces_everything_held_on_the_customer(
    prediction_store: PredictionStore,
) -> None:
    await prediction_store.save([everything("cus_1", ("MILK", "BREAD"))])
    await prediction_store.save(
        [CustomerPredictions("cus_1", (pattern("cus_1", "EGGS"),), forecast("cus_1"), None)]
    )

    found = (await prediction_store.get_many(["cus_1"]))["cus_1"]

    assert [c.sku for c in found.consumption] == ["EGGS"]
    assert found.profile is None


async def test_an_empty_record_removes_the_customer(prediction_store: PredictionStore) -> None:
    await prediction_store.save([everything("cus_1")])
    await prediction_store.save([CustomerPredictions("cus_1", (), None, None)])

    assert await prediction_store.get_many(["cus_1"]) == {}


async def test_deleting_the_profile_keeps_the_rest(prediction_store: PredictionStore) -> None:
    await prediction_store.save([everything("cus_1")])
    await prediction_store.delete_profile("cus_1")
    await prediction_store.delete_profile("cus_unknown")

    found = (await prediction_store.get_many(["cus_1"]))["cus_1"]

    assert found.profile is None
    assert found.forecast is not None
    assert len(found.consumption) == 2


async def test_the_newest_model_is_current(prediction_store: PredictionStore) -> None:
    assert await prediction_store.current_model() is None
    await prediction_store.save_model(model("v-old"))
    newest = model("v-new", hours=5)
    await prediction_store.save_model(newest)
    await prediction_store.save_model(newest)  # saving again is harmless

    current = await prediction_store.current_model()

    assert current == newest


async def test_a_page_of_many_customers_reads_back(prediction_store: PredictionStore) -> None:
    ids = [f"cus_{i:03d}" for i in range(230)]
    await prediction_store.save([everything(c, ("MILK",)) for c in ids])

    found = await prediction_store.get_many(ids)

    assert list(found) == ids
