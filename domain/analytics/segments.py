"""Segmentation kernels: RFM scores against quantile boundaries, the named-segment grid, and
K-means on standardised, log-scaled behaviour features.

Everything works on whole arrays (one row per customer), so the same functions score one
customer after a purchase and a million in a refit:

* :func:`feature_matrix` turns behaviour (dates, counts, money, regularity, diversity, price
  index) into the seven features at a given moment;
* :func:`rfm_boundaries` takes the 20/40/60/80 % quantiles of recency, frequency and monetary
  over the *active* base (customers who bought within the active window), and :func:`rfm_scores`
  scores anyone against stored boundaries (recency inverted: recent is 5);
* :func:`named_segments` maps (R, FM) to the eleven named segments through :data:`GRID`;
* :func:`fit_clusters` standardises the log-scaled features, picks k by silhouette on a sample,
  fits K-means, and :func:`nearest_cluster` assigns rows to the stored centroids.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from threadpoolctl import threadpool_limits

from domain.segments import SegmentCode

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

FEATURES = (
    "recency_days",
    "frequency",
    "monetary_cents",
    "tenure_days",
    "regularity",
    "diversity",
    "price_index",
)
"""The K-means features, in column order."""

QUANTILES = (0.2, 0.4, 0.6, 0.8)
NEW_TENURE_DAYS = 60.0
"""NEW is for customers whose first purchase is this recent; an old customer who buys little
but bought lately is PROMISING instead."""
MIN_RECENCY_CUTS = (7.0, 14.0, 30.0, 60.0)
"""The recency cuts are never finer than these (days): a grocery base's recency quantiles lie a
day or two apart, which would move a regular weekly shopper across bands every other day and
flood the migration log with moves that mean nothing."""
DEFAULT_ACTIVE_WINDOW_DAYS = 365.0
K_CANDIDATES = tuple(range(2, 9))
SILHOUETTE_SAMPLE = 4_000
FIT_SAMPLE = 60_000
OVERLAP_SHARE = 0.10

SEGMENTS: tuple[SegmentCode, ...] = tuple(SegmentCode)
"""Segment codes by index: :func:`named_segments` answers indexes into this tuple."""

_C = SegmentCode
GRID: tuple[tuple[SegmentCode, ...], ...] = (
    # FM:  1            2                      3                      4                5
    (_C.LOST, _C.LOST, _C.AT_RISK, _C.AT_RISK, _C.CANT_LOSE),  # R 1
    (_C.HIBERNATING, _C.HIBERNATING, _C.AT_RISK, _C.AT_RISK, _C.CANT_LOSE),  # R 2
    (_C.ABOUT_TO_SLEEP, _C.ABOUT_TO_SLEEP, _C.NEED_ATTENTION, _C.LOYAL, _C.LOYAL),  # R 3
    (_C.PROMISING, _C.POTENTIAL_LOYALIST, _C.POTENTIAL_LOYALIST, _C.LOYAL, _C.LOYAL),  # R 4
    (_C.NEW, _C.POTENTIAL_LOYALIST, _C.POTENTIAL_LOYALIST, _C.CHAMPIONS, _C.CHAMPIONS),  # R 5
)
"""The named segment of each (R, FM) pair, FM being the mean of F and M rounded half up.
Rows are recency scores 1..5, columns FM scores 1..5 (docs/segments.md explains the map)."""

_NEW = SEGMENTS.index(SegmentCode.NEW)
_PROMISING = SEGMENTS.index(SegmentCode.PROMISING)
_GRID_INDEX = np.array([[SEGMENTS.index(code) for code in row] for row in GRID], dtype=np.int8)


@dataclass(frozen=True, slots=True)
class BehaviourArrays:
    """Per customer: days (since the epoch) of the first and last purchase, purchases,
    spend in cents, regularity (0..1), diversity (category entropy, nats) and price index."""

    first_day: FloatArray
    last_day: FloatArray
    purchases: FloatArray
    spend_cents: FloatArray
    regularity: FloatArray
    diversity: FloatArray
    price_index: FloatArray

    def __len__(self) -> int:
        return len(self.last_day)


@dataclass(frozen=True, slots=True)
class Boundaries:
    recency_days: FloatArray  # (4,)
    frequency: FloatArray
    monetary_cents: FloatArray


@dataclass(frozen=True, slots=True)
class Scores:
    recency: npt.NDArray[np.int8]
    frequency: npt.NDArray[np.int8]
    monetary: npt.NDArray[np.int8]
    segment: npt.NDArray[np.int8]  # index into SEGMENTS


@dataclass(frozen=True, slots=True)
class Clusters:
    """A K-means fit on scaled features: ``(log-scaled x - centre) / scale``."""

    centre: FloatArray  # (features,)
    scale: FloatArray
    centroids: FloatArray  # (k, features), scaled
    silhouette: float
    silhouettes: dict[int, float]

    @property
    def k(self) -> int:
        return len(self.centroids)


def feature_matrix(behaviour: BehaviourArrays, now_day: float) -> FloatArray:
    """The seven features (:data:`FEATURES`) of every customer at ``now_day``."""
    n = len(behaviour)
    matrix = np.empty((n, len(FEATURES)), dtype=np.float64)
    matrix[:, 0] = np.maximum(now_day - behaviour.last_day, 0.0)
    matrix[:, 1] = behaviour.purchases
    matrix[:, 2] = np.maximum(behaviour.spend_cents, 0.0)
    matrix[:, 3] = np.maximum(now_day - behaviour.first_day, 0.0)
    matrix[:, 4] = behaviour.regularity
    matrix[:, 5] = behaviour.diversity
    matrix[:, 6] = behaviour.price_index
    return matrix


def rfm_boundaries(
    features: FloatArray,
    active_window_days: float,
    min_recency_cuts: tuple[float, ...] = MIN_RECENCY_CUTS,
) -> Boundaries:
    """Quantile cuts over the customers who bought within ``active_window_days`` (everyone,
    when nobody did): lapsed customers would otherwise stretch the recency scale until a
    customer idle for months still scored as recent. Recency cuts are floored at
    ``min_recency_cuts``."""
    active = features[:, 0] <= active_window_days
    base = features[active] if active.any() else features
    if len(base) == 0:
        base = np.zeros((1, len(FEATURES)))
    cuts = np.quantile(base[:, :3], QUANTILES, axis=0)  # (4, 3)
    return Boundaries(
        recency_days=np.maximum(cuts[:, 0], np.asarray(min_recency_cuts, dtype=np.float64)),
        frequency=np.ascontiguousarray(cuts[:, 1]),
        monetary_cents=np.ascontiguousarray(cuts[:, 2]),
    )


def rfm_scores(features: FloatArray, boundaries: Boundaries) -> Scores:
    """Scores 1..5 against the boundaries and the named segment of each row. A value equal to
    a cut scores in the lower band, so ties at a cut (many one-purchase customers) share the
    lower score rather than being spread arbitrarily."""
    recency = (5 - np.searchsorted(boundaries.recency_days, features[:, 0], side="left")).astype(
        np.int8
    )
    frequency = (1 + np.searchsorted(boundaries.frequency, features[:, 1], side="left")).astype(
        np.int8
    )
    monetary = (1 + np.searchsorted(boundaries.monetary_cents, features[:, 2], side="left")).astype(
        np.int8
    )
    segment = named_segments(recency, frequency, monetary)
    segment[(segment == _NEW) & (features[:, 3] > NEW_TENURE_DAYS)] = _PROMISING
    return Scores(recency, frequency, monetary, segment)


def named_segments(
    recency: npt.NDArray[np.int8], frequency: npt.NDArray[np.int8], monetary: npt.NDArray[np.int8]
) -> npt.NDArray[np.int8]:
    fm = (frequency.astype(np.int16) + monetary + 1) // 2
    segment: npt.NDArray[np.int8] = _GRID_INDEX[recency.astype(np.int16) - 1, fm - 1]
    return segment


def log_scaled(features: FloatArray) -> FloatArray:
    """Counts, money and durations on a log scale (their spread is multiplicative); the price
    index as a log ratio; regularity and diversity as they are."""
    scaled = np.empty_like(features)
    np.log1p(np.maximum(features[:, :4], 0.0), out=scaled[:, :4])
    scaled[:, 4:6] = features[:, 4:6]
    np.log(np.clip(features[:, 6], 0.05, 20.0), out=scaled[:, 6])
    return scaled


def standardise(features: FloatArray, centre: FloatArray, scale: FloatArray) -> FloatArray:
    return (log_scaled(features) - centre) / scale


def fit_clusters(
    features: FloatArray,
    *,
    seed: int = 0,
    k_candidates: tuple[int, ...] = K_CANDIDATES,
    silhouette_sample: int = SILHOUETTE_SAMPLE,
    fit_sample: int = FIT_SAMPLE,
) -> Clusters:
    """Standardise, choose k by the silhouette of K-means fits on a sample, then fit the
    chosen k on a larger sample; assigning the rest is :func:`nearest_cluster`'s job.

    K-means runs single-threaded: its OpenMP threads contend with the service's own threads
    (and anything else on the host), and on small samples one thread is several times faster
    than two contended ones."""
    with threadpool_limits(limits=1):
        return _fit_clusters(features, seed, k_candidates, silhouette_sample, fit_sample)


def _fit_clusters(
    features: FloatArray,
    seed: int,
    k_candidates: tuple[int, ...],
    silhouette_sample: int,
    fit_sample: int,
) -> Clusters:
    rng = np.random.default_rng(seed)
    logged = log_scaled(features)
    centre = logged.mean(axis=0)
    scale = logged.std(axis=0)
    scale[~(scale > 1e-9)] = 1.0
    x = (logged - centre) / scale
    n = len(x)
    sample = x[rng.choice(n, silhouette_sample, replace=False)] if n > silhouette_sample else x
    distinct = len(np.unique(sample, axis=0))
    silhouettes: dict[int, float] = {}
    for k in k_candidates:
        if k >= distinct:
            break
        labels = KMeans(n_clusters=k, n_init=2, random_state=seed).fit_predict(sample)
        silhouettes[k] = float(silhouette_score(sample, labels))
    if not silhouettes:
        k, best = 1, 0.0
    else:
        k = max(silhouettes, key=lambda c: silhouettes[c])
        best = silhouettes[k]
    fitted = x[rng.choice(n, fit_sample, replace=False)] if n > fit_sample else x
    model = KMeans(n_clusters=min(k, max(len(fitted), 1)), n_init=1, random_state=seed)
    model.fit(fitted if len(fitted) else np.zeros((1, x.shape[1])))
    return Clusters(
        centre=centre,
        scale=scale,
        centroids=np.asarray(model.cluster_centers_, dtype=np.float64),
        silhouette=best,
        silhouettes=silhouettes,
    )


def nearest_cluster(
    features: FloatArray, centre: FloatArray, scale: FloatArray, centroids: FloatArray
) -> IntArray:
    """The index of the nearest centroid of every row, in chunks to bound memory."""
    out = np.empty(len(features), dtype=np.int64)
    c2 = np.einsum("ij,ij->i", centroids, centroids)
    for start in range(0, len(features), 262_144):
        x = standardise(features[start : start + 262_144], centre, scale)
        distances = c2[None, :] - 2.0 * (x @ centroids.T)
        out[start : start + len(x)] = np.argmin(distances, axis=1)
    return out


def centroids_in_units(clusters: Clusters) -> FloatArray:
    """The centroids back in the features' own units (days, purchases, cents...)."""
    logged = clusters.centroids * clusters.scale + clusters.centre
    units = np.empty_like(logged)
    units[:, :4] = np.expm1(logged[:, :4])
    units[:, 4:6] = logged[:, 4:6]
    units[:, 6] = np.exp(logged[:, 6])
    return units


def overlap(cluster: IntArray, segment: npt.NDArray[np.int8], k: int) -> FloatArray:
    """``shares[c, s]``: the share of cluster ``c``'s members in named segment ``s``."""
    counts = np.zeros((k, len(SEGMENTS)), dtype=np.float64)
    np.add.at(counts, (cluster, segment.astype(np.int64)), 1.0)
    sizes = counts.sum(axis=1, keepdims=True)
    shares = np.zeros_like(counts)
    np.divide(counts, sizes, out=shares, where=sizes > 0)
    return shares


def segment_kpis(
    segment: npt.NDArray[np.int8],
    features: FloatArray,
    clv_cents: FloatArray,
    active_window_days: float,
) -> FloatArray:
    """Per named segment (rows in :data:`SEGMENTS` order): size, revenue share, average CLV
    (over members with one), average frequency and share active."""
    s = segment.astype(np.int64)
    m = len(SEGMENTS)
    size = np.bincount(s, minlength=m).astype(np.float64)
    spend = np.bincount(s, weights=features[:, 2], minlength=m)
    frequency = np.bincount(s, weights=features[:, 1], minlength=m)
    active = np.bincount(s, weights=(features[:, 0] <= active_window_days), minlength=m)
    known = np.isfinite(clv_cents)
    clv_sum = np.bincount(s[known], weights=clv_cents[known], minlength=m)
    clv_n = np.bincount(s[known], minlength=m).astype(np.float64)
    total = spend.sum()
    out = np.zeros((m, 5), dtype=np.float64)
    out[:, 0] = size
    out[:, 1] = spend / total if total > 0 else 0.0
    np.divide(clv_sum, clv_n, out=out[:, 2], where=clv_n > 0)
    np.divide(frequency, size, out=out[:, 3], where=size > 0)
    np.divide(active, size, out=out[:, 4], where=size > 0)
    return out
