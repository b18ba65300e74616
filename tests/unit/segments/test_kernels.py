"""The segmentation kernels: RFM scores against boundaries, the named-segment grid, K-means with
k chosen by silhouette, nearest-centroid assignment and the KPIs."""

from __future__ import annotations

import numpy as np

from domain.analytics.segments import (
    GRID,
    SEGMENTS,
    BehaviourArrays,
    feature_matrix,
    fit_clusters,
    named_segments,
    nearest_cluster,
    rfm_boundaries,
    rfm_scores,
    segment_kpis,
)
from domain.segments import SegmentCode


def _behaviour(n: int, rng: np.random.Generator) -> BehaviourArrays:
    first = rng.uniform(0, 300, n)
    return BehaviourArrays(
        first_day=first,
        last_day=first + rng.uniform(0, 1, n) * (365 - first),
        purchases=rng.poisson(10, n) + 1.0,
        spend_cents=rng.gamma(2, 5000, n),
        regularity=rng.uniform(0, 1, n),
        diversity=rng.uniform(0, 2.5, n),
        price_index=rng.lognormal(0, 0.2, n),
    )


def test_the_grid_covers_every_named_segment() -> None:
    assert {code for row in GRID for code in row} == set(SegmentCode)
    r = np.array([5, 5, 1, 1, 2], dtype=np.int8)
    f = np.array([5, 1, 1, 5, 4], dtype=np.int8)
    m = np.array([5, 1, 1, 5, 3], dtype=np.int8)
    codes = [SEGMENTS[i] for i in named_segments(r, f, m)]
    assert codes == [
        SegmentCode.CHAMPIONS, SegmentCode.NEW, SegmentCode.LOST, SegmentCode.CANT_LOSE,
        SegmentCode.AT_RISK,
    ]  # fmt: skip


def test_scores_follow_the_boundaries_of_the_active_base() -> None:
    rng = np.random.default_rng(3)
    features = feature_matrix(_behaviour(5_000, rng), 365.0)
    lapsed = features.copy()
    lapsed[:, 0] = 900.0  # nobody this idle is active: they do not move the cuts
    both = np.vstack([features, lapsed])
    cuts = rfm_boundaries(both, active_window_days=365.0)
    assert np.allclose(cuts.recency_days, rfm_boundaries(features, 365.0).recency_days)
    assert (cuts.recency_days >= (7, 14, 30, 60)).all()
    scores = rfm_scores(both, cuts)
    assert set(np.unique(scores.recency[: len(features)])) == {1, 2, 3, 4, 5}
    assert (scores.recency[len(features) :] == 1).all()
    # More recent never scores lower; more purchases or spend never score lower.
    order = np.argsort(features[:, 0])
    assert (np.diff(scores.recency[order].astype(int)) <= 0).all()
    order = np.argsort(features[:, 1])
    assert (np.diff(scores.frequency[order].astype(int)) >= 0).all()
    # Each band holds about a fifth of the active base.
    shares = np.bincount(scores.monetary[: len(features)], minlength=6)[1:] / len(features)
    assert np.allclose(shares, 0.2, atol=0.02)


def test_k_means_finds_separated_groups_and_assigns_to_them() -> None:
    rng = np.random.default_rng(5)
    n = 3_000
    groups = rng.integers(0, 3, n)
    features = np.empty((n, 7))
    features[:, 0] = np.array([2.0, 40.0, 200.0])[groups] * rng.lognormal(0, 0.1, n)
    features[:, 1] = np.array([60.0, 12.0, 2.0])[groups] * rng.lognormal(0, 0.1, n)
    features[:, 2] = features[:, 1] * 2_500.0
    features[:, 3] = 300.0
    features[:, 4] = np.array([0.8, 0.5, 0.1])[groups]
    features[:, 5] = 1.5
    features[:, 6] = 1.0
    clusters = fit_clusters(features, seed=1)
    assert clusters.k == 3
    assigned = nearest_cluster(features, clusters.centre, clusters.scale, clusters.centroids)
    # Every true group falls into one cluster.
    for g in range(3):
        assert len(np.unique(assigned[groups == g])) == 1
    one = nearest_cluster(features[:1], clusters.centre, clusters.scale, clusters.centroids)
    assert one[0] == assigned[0]


def test_kpis_per_segment() -> None:
    segment = np.array([0, 0, 10], dtype=np.int8)
    features = np.zeros((3, 7))
    features[:, 0] = [1.0, 500.0, 2.0]
    features[:, 1] = [10.0, 20.0, 1.0]
    features[:, 2] = [3_000.0, 1_000.0, 0.0]
    clv = np.array([100.0, np.nan, 5.0])
    table = segment_kpis(segment, features, clv, 365.0)
    assert table[0].tolist() == [2.0, 1.0, 100.0, 15.0, 0.5]
    assert table[10].tolist() == [1.0, 0.0, 5.0, 1.0, 1.0]
    assert table[1].tolist() == [0.0, 0.0, 0.0, 0.0, 0.0]
