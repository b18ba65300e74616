"""The batch side of recommendations: item-item co-occurrence with lift, content similarity,
and when and where each sku sells. Everything is computed on whole arrays (scipy.sparse
products, ``bincount``, sorting); there is no Python loop over baskets, customers or skus.

**Input.** :class:`BasketItems`: one entry per distinct (basket, sku) (a sku twice in one basket
counts once), each basket's customer, local time (days since the Unix epoch, shifted to the
shop's clock) and store index (-1 unknown). :class:`ItemDescriptions`: per sku its category,
brand and price tier codes and a sparse sku x tag incidence matrix.

**Co-occurrence.** With ``B`` the basket x sku incidence matrix, ``C = B.T @ B`` counts the
baskets holding both of two skus; its diagonal ``c_i`` counts the baskets holding one. For
``N`` baskets: ``confidence(i -> j) = C_ij / c_i`` (the share of i's baskets that also hold j)
and ``lift_ij = C_ij N / (c_i c_j)`` (how much more often they meet than if bought
independently). A pair is kept when ``C_ij >= min_baskets`` and ``lift_ij >= min_lift``; each
sku keeps its ``top_n`` partners ranked by the *shrunk* lift ``C_ij / (c_i c_j / N + shrink)``,
which is the lift for well-supported pairs and pulls pairs seen in a handful of baskets towards
0, so a rare sku met twice by chance does not top the list.

**Content similarity.** Each sku is a weighted one-hot vector (category, brand, price tier,
each tag with weight ``1/sqrt(tags)``), L2-normalised; the similarity of two skus of the *same
category* is the cosine of their vectors (skus of different categories are never alike). Each
sku keeps its ``top_n`` most similar.

**Context.** The share of a sku's baskets in each daypart (before 12:00, 12:00-17:00, from
17:00), on each weekday and in each store, divided by the same share over all skus: a lift
around 1. Thinly sold skus are shrunk towards 1 with ``shrink`` pseudo-baskets spread like the
whole base.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import sparse

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

DAYPARTS = 3
WEEKDAYS = 7
MORNING_ENDS_HOUR = 12.0
AFTERNOON_ENDS_HOUR = 17.0
REPEAT_BASKETS = 3
"""A buyer with a sku in at least this many baskets rebought it: it is one of their staples."""


@dataclass(frozen=True, slots=True)
class BasketItems:
    basket: IntArray  # per (basket, sku) entry
    sku: IntArray  # per entry
    basket_customer: IntArray  # per basket
    basket_at: FloatArray  # per basket: local days since the epoch
    basket_store: IntArray  # per basket: store index, -1 when unknown
    n_skus: int
    n_stores: int

    @property
    def n_baskets(self) -> int:
        return len(self.basket_at)


@dataclass(frozen=True, slots=True)
class ItemDescriptions:
    category: IntArray
    brand: IntArray
    tier: IntArray
    tags: sparse.csr_matrix  # sku x tag, 1 where the sku has the tag


@dataclass(frozen=True, slots=True)
class Ranked:
    """Up to ``top_n`` partners per sku, best first; ``partner`` is -1 past the last one."""

    partner: IntArray  # (n_skus, top_n)
    score: FloatArray  # (n_skus, top_n): confidence (associations) or similarity (content)
    baskets: IntArray  # (n_skus, top_n): baskets holding both (associations), else 0
    lift: FloatArray  # (n_skus, top_n): lift (associations), else 0


@dataclass(frozen=True, slots=True)
class ItemStatistics:
    baskets: IntArray  # per sku
    buyers: IntArray
    repeat_share: FloatArray
    first_sold_at: FloatArray  # local days; inf when never sold
    daypart_lift: FloatArray  # (n_skus, 3)
    weekday_lift: FloatArray  # (n_skus, 7)
    store_lift: FloatArray  # (n_skus, n_stores)


def incidence(items: BasketItems) -> sparse.csr_matrix:
    """The basket x sku 0/1 matrix."""
    ones = np.ones(len(items.basket), dtype=np.float64)
    matrix = sparse.csr_matrix(
        (ones, (items.basket, items.sku)), shape=(items.n_baskets, items.n_skus)
    )
    matrix.data[:] = 1.0  # duplicates were summed
    return matrix


def _top_per_row(
    rows: IntArray, cols: IntArray, rank: FloatArray, n_rows: int, top_n: int
) -> tuple[IntArray, IntArray, IntArray]:
    """For entries (row, col) ranked by ``rank``, the order of the kept ones (the ``top_n``
    best per row, best first) and each kept entry's row and place in its row."""
    order = np.lexsort((-rank, rows))
    sorted_rows = rows[order]
    first = np.searchsorted(sorted_rows, sorted_rows, side="left")
    place = np.arange(len(order)) - first
    keep = place < top_n
    return order[keep], sorted_rows[keep], place[keep]


def associations(
    items: BasketItems,
    *,
    top_n: int = 20,
    min_baskets: int = 3,
    min_lift: float = 1.2,
    shrink: float = 5.0,
) -> Ranked:
    """Each sku's best partners by shrunk lift (see the module docstring)."""
    b = incidence(items)
    co = (b.T @ b).tocoo()
    counts = np.asarray(b.sum(axis=0)).ravel()
    n = float(max(items.n_baskets, 1))
    rows, cols = co.row.astype(np.int64), co.col.astype(np.int64)
    together = co.data
    off_diagonal = rows != cols
    rows, cols, together = rows[off_diagonal], cols[off_diagonal], together[off_diagonal]
    expected = counts[rows] * counts[cols] / n
    lift = together / expected
    kept = (together >= min_baskets) & (lift >= min_lift)
    rows, cols, together, lift = rows[kept], cols[kept], together[kept], lift[kept]
    order, at_row, place = _top_per_row(
        rows, cols, together / (expected[kept] + shrink), items.n_skus, top_n
    )
    ranked = _empty(items.n_skus, top_n)
    ranked.partner[at_row, place] = cols[order]
    ranked.score[at_row, place] = together[order] / counts[rows[order]]
    ranked.baskets[at_row, place] = together[order].astype(np.int64)
    ranked.lift[at_row, place] = lift[order]
    return ranked


def _empty(n_skus: int, top_n: int) -> Ranked:
    return Ranked(
        partner=np.full((n_skus, top_n), -1, dtype=np.int64),
        score=np.zeros((n_skus, top_n)),
        baskets=np.zeros((n_skus, top_n), dtype=np.int64),
        lift=np.zeros((n_skus, top_n)),
    )


def _one_hot(codes: IntArray, weight: float) -> sparse.csr_matrix:
    n = len(codes)
    width = int(codes.max()) + 1 if n else 0
    return sparse.csr_matrix((np.full(n, weight), (np.arange(n), codes)), shape=(n, max(width, 1)))


def content_similarity(descriptions: ItemDescriptions, *, top_n: int = 10) -> Ranked:
    """Each sku's most similar skus of the same category (see the module docstring)."""
    n = len(descriptions.category)
    tags = descriptions.tags.astype(np.float64).tocsr()
    per_sku = np.asarray(tags.sum(axis=1)).ravel()
    tags = sparse.diags(1.0 / np.sqrt(np.maximum(per_sku, 1.0))) @ tags
    x = sparse.hstack(
        [
            _one_hot(descriptions.category, 1.0),
            _one_hot(descriptions.brand, 1.0),
            _one_hot(descriptions.tier, 1.0),
            tags,
        ]
    ).tocsr()
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    x = sparse.diags(1.0 / np.maximum(norms, 1e-12)) @ x
    # Only pairs within a category are compared: one block product per category, so the work
    # grows with the square of the largest category, not of the catalogue.
    order = np.argsort(descriptions.category, kind="stable")
    bounds = np.flatnonzero(np.diff(descriptions.category[order])) + 1
    rows_parts, cols_parts, sims_parts = [], [], []
    for members in np.split(order, bounds):
        block = x[members]
        sim = (block @ block.T).tocoo()
        r, c = members[sim.row], members[sim.col]
        keep = r != c
        rows_parts.append(r[keep])
        cols_parts.append(c[keep])
        sims_parts.append(sim.data[keep])
    rows = np.concatenate(rows_parts).astype(np.int64) if rows_parts else np.zeros(0, np.int64)
    cols = np.concatenate(cols_parts).astype(np.int64) if cols_parts else np.zeros(0, np.int64)
    sims = np.concatenate(sims_parts) if sims_parts else np.zeros(0)
    kept, at_row, place = _top_per_row(rows, cols, sims, n, top_n)
    ranked = _empty(n, top_n)
    ranked.partner[at_row, place] = cols[kept]
    ranked.score[at_row, place] = np.minimum(sims[kept], 1.0)
    return ranked


def daypart(local_days: FloatArray) -> IntArray:
    """0 morning (before 12:00), 1 afternoon (to 17:00), 2 evening, of local times in days."""
    hour = (local_days % 1.0) * 24.0
    return np.where(hour < MORNING_ENDS_HOUR, 0, np.where(hour < AFTERNOON_ENDS_HOUR, 1, 2))


def weekday(local_days: FloatArray) -> IntArray:
    """Monday 0 .. Sunday 6 (the epoch, day 0, was a Thursday)."""
    return ((np.floor(local_days).astype(np.int64) + 3) % 7).astype(np.int64)


def _context_lift(
    sku: IntArray, level: IntArray, n_skus: int, n_levels: int, shrink: float
) -> FloatArray:
    """(n_skus, n_levels): each sku's share of entries at each level over the base's share,
    shrunk towards 1 with ``shrink`` pseudo-entries."""
    if n_levels == 0:
        return np.ones((n_skus, 0))
    known = level >= 0
    counts = (
        np.bincount(sku[known] * n_levels + level[known], minlength=n_skus * n_levels)
        .reshape(n_skus, n_levels)
        .astype(np.float64)
    )
    overall = counts.sum(axis=0)
    base = overall / max(overall.sum(), 1.0)
    share = (counts + shrink * base) / (counts.sum(axis=1, keepdims=True) + shrink)
    with np.errstate(invalid="ignore", divide="ignore"):
        lift = np.where(base > 0, share / base, 1.0)
    return lift


def item_statistics(items: BasketItems, *, shrink: float = 20.0) -> ItemStatistics:
    """Popularity, staple-ness, first sale and context lifts per sku."""
    n = items.n_skus
    baskets = np.bincount(items.sku, minlength=n)
    pair = items.basket_customer[items.basket] * n + items.sku
    pairs, per_pair = np.unique(pair, return_counts=True)
    pair_sku = pairs % n
    buyers = np.bincount(pair_sku, minlength=n)
    repeaters = np.bincount(pair_sku, weights=(per_pair >= REPEAT_BASKETS), minlength=n)
    first = np.full(n, np.inf)
    np.minimum.at(first, items.sku, items.basket_at[items.basket])
    at = items.basket_at[items.basket]
    return ItemStatistics(
        baskets=baskets.astype(np.int64),
        buyers=buyers.astype(np.int64),
        repeat_share=np.divide(repeaters, buyers, out=np.zeros(n), where=buyers > 0),
        first_sold_at=first,
        daypart_lift=_context_lift(items.sku, daypart(at), n, DAYPARTS, shrink),
        weekday_lift=_context_lift(items.sku, weekday(at), n, WEEKDAYS, shrink),
        store_lift=_context_lift(
            items.sku, items.basket_store[items.basket], n, items.n_stores, shrink
        ),
    )
