"""The RecommendationStore contract. Fixture: ``recommendation_store``."""

from __future__ import annotations

from datetime import timedelta

from domain.ports import RecommendationStore
from domain.recommendations import Alike, ItemProfile, Neighbour, RecommendationModel
from tests.contracts.builders import T0


def model(
    version: str, *, hours: int = 0, skus: tuple[str, ...] = ("MILK", "BREAD")
) -> RecommendationModel:
    return RecommendationModel(
        version=version, fitted_at=T0 + timedelta(hours=hours), as_of=T0, baskets=1200,
        customers=80, popular=skus, staples=skus[:1], newest=(), skus=skus, utc_offset_hours=1.0,
    )  # fmt: skip


def profile(sku: str, *, partners: int = 2) -> ItemProfile:
    return ItemProfile(
        sku=sku, baskets=420, buyers=61, repeat_share=0.52, first_sold_at=T0 - timedelta(days=300),
        bought_with=tuple(Neighbour(f"P{i}", 40 - i, 0.31, 2.25) for i in range(partners)),
        alike=(Alike("OAT-MILK", 0.81),), daypart_lift=(1.2, 0.9, 0.8),
        weekday_lift=(1.0, 1.1, 0.9, 1.0, 1.0, 1.3, 0.7), store_lift={"store_01": 1.4},
    )  # fmt: skip


async def test_a_model_and_its_profiles_round_trip(
    recommendation_store: RecommendationStore,
) -> None:
    assert await recommendation_store.current_model() is None
    stored = model("v1")
    await recommendation_store.save_model(stored, [profile("MILK"), profile("BREAD", partners=0)])

    assert await recommendation_store.current_model() == stored
    found = await recommendation_store.items("v1", ["MILK", "BREAD", "UNKNOWN"])

    assert found == {"MILK": profile("MILK"), "BREAD": profile("BREAD", partners=0)}


async def test_profiles_are_read_per_version(recommendation_store: RecommendationStore) -> None:
    await recommendation_store.save_model(model("v1"), [profile("MILK", partners=1)])
    await recommendation_store.save_model(model("v2", hours=1), [profile("MILK", partners=3)])

    assert (await recommendation_store.current_model()) == model("v2", hours=1)
    assert len((await recommendation_store.items("v1", ["MILK"]))["MILK"].bought_with) == 1
    assert len((await recommendation_store.items("v2", ["MILK"]))["MILK"].bought_with) == 3
    assert await recommendation_store.items("v3", ["MILK"]) == {}
    assert await recommendation_store.items("v2", []) == {}


async def test_only_the_newest_versions_are_kept(recommendation_store: RecommendationStore) -> None:
    for hour in range(5):
        await recommendation_store.save_model(model(f"v{hour}", hours=hour), [profile("MILK")])
    await recommendation_store.save_model(model("v4", hours=4), [profile("MILK")])  # again

    assert (await recommendation_store.current_model()) == model("v4", hours=4)
    assert await recommendation_store.items("v0", ["MILK"]) == {}
    assert await recommendation_store.items("v1", ["MILK"]) == {}
    assert set(await recommendation_store.items("v2", ["MILK"])) == {"MILK"}


async def test_many_profiles_read_back(recommendation_store: RecommendationStore) -> None:
    skus = tuple(f"SKU-{i:03d}" for i in range(230))
    await recommendation_store.save_model(model("v1", skus=skus), [profile(s) for s in skus])

    found = await recommendation_store.items("v1", list(skus))

    assert set(found) == set(skus)
    assert found["SKU-229"] == profile("SKU-229")
