"""The batch kernels on tiny hand-made data, and the offline evaluation on demo data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from scipy import sparse

from domain.analytics.recommendations import (
    BasketItems,
    ItemDescriptions,
    associations,
    content_similarity,
    item_statistics,
)
from domain.demo import generate
from domain.services.recommendations import evaluate


def baskets(*contents: tuple[int, ...], customers: tuple[int, ...] | None = None) -> BasketItems:
    pairs = [(b, s) for b, skus in enumerate(contents) for s in skus]
    n = len(contents)
    return BasketItems(
        basket=np.array([b for b, _ in pairs]),
        sku=np.array([s for _, s in pairs]),
        basket_customer=np.array(customers if customers is not None else range(n)),
        basket_at=np.arange(n, dtype=np.float64) + 0.25,  # 06:00 each day
        basket_store=np.zeros(n, dtype=np.int64),
        n_skus=4,
        n_stores=1,
    )


def test_lift_and_confidence_of_a_pair() -> None:
    # 10 baskets: sku 0 in 4, sku 1 in 5, both in 4 -> lift 4 * 10 / (4 * 5) = 2.
    items = baskets(*([(0, 1)] * 4 + [(1,)] + [(2,)] * 5))

    ranked = associations(items, min_baskets=3, min_lift=1.2)

    assert ranked.partner[0, 0] == 1
    assert ranked.lift[0, 0] == pytest.approx(2.0)
    assert ranked.score[0, 0] == pytest.approx(1.0)  # every basket with 0 holds 1
    assert ranked.score[1, 0] == pytest.approx(0.8)  # 4 of 1's 5 baskets hold 0
    assert ranked.baskets[0, 0] == 4
    assert ranked.partner[2, 0] == -1  # 2 is never bought with anything


def test_pairs_below_the_support_or_lift_are_dropped() -> None:
    items = baskets(*([(0, 1)] * 2 + [(0,)] * 2 + [(1,)] * 2 + [(3,)] * 4))

    assert associations(items, min_baskets=3).partner[0, 0] == -1
    assert associations(items, min_baskets=2, min_lift=5.0).partner[0, 0] == -1
    assert associations(items, min_baskets=2, min_lift=1.2).partner[0, 0] == 1


def test_similarity_stays_within_a_category_and_prefers_shared_attributes() -> None:
    tags = sparse.csr_matrix(np.array([[1, 0], [1, 0], [0, 1], [1, 0]]))
    descriptions = ItemDescriptions(
        category=np.array([0, 0, 0, 1]),
        brand=np.array([0, 0, 1, 0]),
        tier=np.array([0, 0, 1, 0]),
        tags=tags,
    )

    ranked = content_similarity(descriptions, top_n=3)

    assert list(ranked.partner[0][:2]) == [1, 2]
    assert ranked.score[0, 0] == pytest.approx(1.0)
    assert 0 < ranked.score[0, 1] < ranked.score[0, 0]
    assert 3 not in ranked.partner[0]
    assert ranked.partner[3, 0] == -1  # alone in its category


def test_item_statistics() -> None:
    items = baskets((0, 1), (0,), (0,), (1,), customers=(0, 0, 0, 1))

    stats = item_statistics(items)

    assert list(stats.baskets) == [3, 2, 0, 0]
    assert list(stats.buyers) == [1, 2, 0, 0]
    assert stats.repeat_share[0] == 1.0  # its one buyer bought it in 3 baskets
    assert stats.repeat_share[1] == 0.0
    assert stats.first_sold_at[1] == pytest.approx(0.25)
    assert stats.daypart_lift.shape == (4, 3)
    assert np.allclose(stats.store_lift[:2], 1.0)  # one store: no store says anything


def test_the_offline_evaluation_beats_popularity_by_the_bar() -> None:
    as_of = datetime(2026, 11, 22, tzinfo=UTC)
    demo = generate(as_of=as_of, n_customers=120, seed=5)

    result = evaluate(
        demo.products, demo.customers, demo.purchases, as_of - timedelta(days=30), days=30
    )

    assert result.customers > 80
    assert result.model.recall >= 1.5 * result.popularity.recall
    assert result.model.precision > result.popularity.precision
    assert result.reasons["REPLENISHMENT_DUE"] > 0
