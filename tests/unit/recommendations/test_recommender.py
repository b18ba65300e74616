"""The recommender on hand-made customers: one labelled case per source and rule."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from domain.predictions import (
    ChurnRiskBand,
    ConsumptionPattern,
    ConsumptionStatus,
    CustomerForecast,
    CustomerPredictions,
)
from domain.products import PriceTier, Product
from domain.purchases import Purchase, PurchaseLine
from domain.recommendations import (
    Alike,
    ItemProfile,
    Neighbour,
    Recommendation,
    RecommendationContext,
    RecommendationModel,
    RecommendationReason,
)
from domain.segments import SegmentCode
from domain.services.recommendations import CustomerView, Recommender

NOW = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)  # a Wednesday morning


def product(
    sku: str,
    category: str = "dairy",
    *,
    tier: PriceTier = PriceTier.STANDARD,
    brand: str = "Meadowfield",
    tags: tuple[str, ...] = (),
) -> Product:
    return Product(sku, f"Product {sku}", category, brand, tier, 1.0, "l", 199, tags)  # fmt: skip


def profile(
    sku: str,
    *,
    baskets: int = 100,
    with_: tuple[Neighbour, ...] = (),
    alike: tuple[Alike, ...] = (),
    daypart: tuple[float, float, float] = (1.0, 1.0, 1.0),
    store: dict[str, float] | None = None,
    repeat: float = 0.3,
) -> ItemProfile:
    return ItemProfile(
        sku=sku, baskets=baskets, buyers=40, repeat_share=repeat,
        first_sold_at=NOW - timedelta(days=300), bought_with=with_, alike=alike,
        daypart_lift=daypart, store_lift=store or {},
    )  # fmt: skip


def cycle(
    sku: str, *, every_days: float, last_days_ago: float, spread: float = 0.2
) -> ConsumptionPattern:
    last = NOW - timedelta(days=last_days_ago)
    return ConsumptionPattern(
        customer_id="cus_1", sku=sku, purchases=8, mean_interval_days=every_days,
        units_per_day=1 / every_days, last_purchased_at=last, last_quantity=1,
        next_expected_at=last + timedelta(days=every_days), window_low=last, window_high=last,
        status=ConsumptionStatus.ON_TRACK, confidence=0.8, log_days_per_unit=math.log(every_days),
        log_spread=spread, computed_at=NOW - timedelta(days=1), model_version="v",
    )  # fmt: skip


def forecast(p_alive: float = 0.95) -> CustomerForecast:
    return CustomerForecast(
        customer_id="cus_1", frequency=20, recency_days=200, age_days=210, p_alive=p_alive,
        expected_transactions=30, horizon_days=365, expected_spend_cents=2000, clv_cents=50000,
        monetary_cents=2000, churn_risk=ChurnRiskBand.LOW, overdue_staples=0,
        computed_at=NOW - timedelta(days=1), model_version="v",
    )  # fmt: skip


def basket(days_ago: float, *skus: str) -> Purchase:
    at = NOW - timedelta(days=days_ago)
    return Purchase(f"pur_{days_ago}_{'_'.join(skus)}", "cus_1", at,
                    tuple(PurchaseLine(s, 1, 199) for s in skus))  # fmt: skip


MODEL = RecommendationModel(
    version="v1", fitted_at=NOW, as_of=NOW, baskets=5000, customers=300, popular=(),
    staples=(), newest=(), skus=(),
)  # fmt: skip


def view(
    *,
    history: tuple[Purchase, ...] = (),
    cycles: tuple[ConsumptionPattern, ...] = (),
    consent: bool = True,
    segment: SegmentCode | None = None,
) -> CustomerView:
    predictions = CustomerPredictions("cus_1", cycles, forecast(), None) if cycles else None
    return CustomerView("cus_1", consent, segment, list(history), predictions)  # fmt: skip


def recommend(
    v: CustomerView,
    profiles: list[ItemProfile],
    products: list[Product],
    context: RecommendationContext | None = None,
    model: RecommendationModel = MODEL,
    limit: int = 10,
) -> list[Recommendation]:
    return Recommender().recommend(
        v, context or RecommendationContext(), (context.at if context and context.at else NOW),
        limit, model, {p.sku: p for p in profiles}, {p.sku: p for p in products},
    )  # fmt: skip


def test_a_due_staple_ranks_first() -> None:
    v = view(
        history=(basket(9, "MILK", "BREAD"), basket(20, "MILK", "BREAD")),
        cycles=(cycle("MILK", every_days=7, last_days_ago=9),
                cycle("BREAD", every_days=30, last_days_ago=9)),
    )  # fmt: skip
    profiles = [profile("MILK", with_=(Neighbour("CEREAL", 50, 0.4, 1.8),)), profile("BREAD")]

    recs = recommend(v, profiles, [product("MILK"), product("BREAD"), product("CEREAL")])

    assert recs[0].sku == "MILK"
    assert recs[0].reason is RecommendationReason.REPLENISHMENT_DUE
    assert "overdue" in recs[0].explanation or "due" in recs[0].explanation
    assert recs[0].score > 0.5
    assert "BREAD" not in {
        r.sku for r in recs if r.reason is RecommendationReason.REPLENISHMENT_DUE
    }


def test_a_bought_together_pair_appears_with_its_lift() -> None:
    profiles = [profile("PASTA", with_=(Neighbour("SAUCE", 120, 0.45, 3.2),)), profile("SAUCE")]

    recs = recommend(
        view(), profiles, [product("PASTA", "pantry"), product("SAUCE", "pantry")],
        RecommendationContext(basket=("PASTA",)),
    )  # fmt: skip

    assert [r.sku for r in recs] == ["SAUCE"]
    assert recs[0].reason is RecommendationReason.BOUGHT_TOGETHER
    assert "Product PASTA" in recs[0].explanation
    assert "lift 3.2" in recs[0].explanation
    assert recs[0].score == pytest.approx(0.45, abs=0.01)


def test_a_promotional_item_needs_marketing_consent() -> None:
    profiles = [profile("PASTA", with_=(Neighbour("PROMO-WINE", 80, 0.5, 2.0),
                                        Neighbour("SAUCE", 80, 0.4, 2.0)))]  # fmt: skip
    products = [product("PASTA"), product("PROMO-WINE", tags=("promo",)), product("SAUCE")]
    context = RecommendationContext(basket=("PASTA",))

    with_consent = recommend(view(consent=True), profiles, products, context)
    without = recommend(view(consent=False), profiles, products, context)

    assert {r.sku: r.promotional for r in with_consent} == {"PROMO-WINE": True, "SAUCE": False}
    assert [r.sku for r in without] == ["SAUCE"]


def test_segment_offers_need_marketing_consent() -> None:
    history = tuple(basket(40 + i, "COFFEE", "TEA") for i in range(6))
    products = [product("COFFEE", "breakfast"), product("TEA", "breakfast")]
    profiles = [profile("COFFEE"), profile("TEA")]

    at_risk = recommend(view(history=history, segment=SegmentCode.AT_RISK), profiles, products)
    no_consent = recommend(
        view(history=history, segment=SegmentCode.AT_RISK, consent=False), profiles, products
    )

    assert {r.sku for r in at_risk} == {"COFFEE", "TEA"}
    assert all(r.reason is RecommendationReason.SEGMENT_STRATEGY and r.promotional for r in at_risk)
    assert "we miss you" in at_risk[0].explanation
    assert no_consent == []


def test_champions_are_offered_premium_items_in_their_favourite_categories() -> None:
    history = tuple(basket(3 + 7 * i, "MILK") for i in range(5))
    products = [product("MILK"), product("ORGANIC-MILK", tier=PriceTier.PREMIUM),
                product("ORGANIC-STEAK", "meat", tier=PriceTier.PREMIUM)]  # fmt: skip
    profiles = [profile("MILK"), profile("ORGANIC-MILK"), profile("ORGANIC-STEAK")]

    recs = recommend(view(history=history, segment=SegmentCode.CHAMPIONS), profiles, products)

    assert [r.sku for r in recs] == ["ORGANIC-MILK"]
    assert recs[0].reason is RecommendationReason.SEGMENT_STRATEGY


def test_just_bought_items_are_left_out_unless_due() -> None:
    # Bought yesterday: the sauce (a 30-day cycle) is not due, the water (a 1-day cycle) is.
    v = view(
        history=(basket(1, "SAUCE", "WATER"), basket(2, "WATER")),
        cycles=(cycle("SAUCE", every_days=30, last_days_ago=1),
                cycle("WATER", every_days=1, last_days_ago=1, spread=0.1)),
    )  # fmt: skip
    profiles = [profile("PASTA", with_=(Neighbour("SAUCE", 100, 0.6, 3.0),
                                        Neighbour("WATER", 100, 0.5, 1.5)))]  # fmt: skip
    products = [product("PASTA"), product("SAUCE"), product("WATER")]

    recs = recommend(v, profiles, products, RecommendationContext(basket=("PASTA",)))

    assert "SAUCE" not in {r.sku for r in recs}
    assert "WATER" in {r.sku for r in recs}


def test_similar_items_follow_a_favourite() -> None:
    history = tuple(basket(4 + 3 * i, "YOGHURT") for i in range(4))
    profiles = [profile("YOGHURT", alike=(Alike("GREEK-YOGHURT", 0.8), Alike("YOGHURT", 1.0)))]
    products = [product("YOGHURT"), product("GREEK-YOGHURT", tags=("chilled",))]

    recs = recommend(view(history=history, consent=False), profiles, products)

    assert [r.sku for r in recs] == ["GREEK-YOGHURT"]
    assert recs[0].reason is RecommendationReason.SIMILAR
    assert "like Product YOGHURT" in recs[0].explanation


@pytest.mark.parametrize(
    ("hour", "store", "first"),
    [
        pytest.param(8, None, "CROISSANT", id="morning favours what sells in the morning"),
        pytest.param(19, None, "WINE", id="evening favours what sells in the evening"),
        pytest.param(8, "store_02", "WINE", id="a store where wine sells well outweighs morning"),
    ],
)
def test_the_context_reranks(hour: int, store: str | None, first: str) -> None:
    profiles = [
        profile("CHEESE", with_=(Neighbour("CROISSANT", 50, 0.3, 2.0),
                                 Neighbour("WINE", 50, 0.3, 2.0))),
        profile("CROISSANT", daypart=(1.8, 1.0, 0.5)),
        profile("WINE", daypart=(0.5, 1.0, 1.8), store={"store_02": 4.0}),
    ]  # fmt: skip
    products = [product("CHEESE"), product("CROISSANT", "bakery"), product("WINE", "wine")]
    at = NOW.replace(hour=hour)

    recs = recommend(view(), profiles, products,
                     RecommendationContext(at=at, store_id=store, basket=("CHEESE",)))  # fmt: skip

    assert recs[0].sku == first
    assert recs[0].score > recs[1].score


def test_nothing_is_known_about_a_new_customer_without_a_model() -> None:
    assert recommend(view(consent=True), [], [], model=MODEL) == []


def test_a_new_customer_with_consent_is_offered_the_staples() -> None:
    model = RecommendationModel(
        version="v1", fitted_at=NOW, as_of=NOW, baskets=5000, customers=300, popular=("MILK",),
        staples=("MILK", "EGGS"), newest=(), skus=("MILK", "EGGS"),
    )  # fmt: skip
    products = [product("MILK"), product("EGGS")]
    profiles = [profile("MILK", repeat=0.6), profile("EGGS", repeat=0.4)]

    recs = recommend(view(consent=True), profiles, products, model=model)

    assert [r.sku for r in recs] == ["MILK", "EGGS"]
    assert all(r.reason is RecommendationReason.SEGMENT_STRATEGY for r in recs)
