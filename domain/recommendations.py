"""Recommendations: what to offer a customer next, why, and the batch model behind them.

A :class:`Recommendation` names a product, a score in [0, 1] (roughly the chance the customer
takes it up now) and the :class:`RecommendationReason` that contributed most. The batch fit
(``omnix recompute``) stores a :class:`RecommendationModel` and one :class:`ItemProfile` per sku
under the model's version: the skus bought with it (lift), the skus like it (content), and when
and where it sells (context). Serving one customer reads only the profiles of the skus involved.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple


class RecommendationReason(StrEnum):
    REPLENISHMENT_DUE = "REPLENISHMENT_DUE"
    BOUGHT_TOGETHER = "BOUGHT_TOGETHER"
    SIMILAR = "SIMILAR"
    SEGMENT_STRATEGY = "SEGMENT_STRATEGY"


PROMOTION_TAGS = frozenset({"promo", "offer", "sponsored"})
"""Catalogue tags that make a product a promotional offer (shown only with marketing consent)."""


@dataclass(frozen=True, slots=True)
class RecommendationContext:
    """Where and when the recommendations are shown: ``at`` (None: now), the store, and the
    skus already in the basket being built."""

    at: datetime | None = None
    store_id: str | None = None
    basket: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Recommendation:
    customer_id: str
    sku: str
    score: float
    reason: RecommendationReason
    explanation: str
    promotional: bool = False


class Neighbour(NamedTuple):
    """A sku bought with another: ``baskets`` holding both, ``confidence`` = P(this | the other),
    ``lift`` = confidence over this sku's overall basket share. A tuple: profiles are decoded
    by the hundred per request."""

    sku: str
    baskets: int
    confidence: float
    lift: float


class Alike(NamedTuple):
    """A sku like another by its catalogue description; ``similarity`` in (0, 1]."""

    sku: str
    similarity: float


@dataclass(frozen=True, slots=True)
class ItemProfile:
    """What the batch fit learnt about one sku.

    ``repeat_share`` is the share of its buyers who bought it in at least three baskets (how much
    of a staple it is). The context lifts are the sku's share of baskets in a daypart (morning
    before 12:00, afternoon to 17:00, evening), on a weekday (Monday first) or in a store, over
    the same share for all skus, shrunk towards 1 for thinly sold skus: above 1 it sells more
    then or there than the average product does."""

    sku: str
    baskets: int
    buyers: int
    repeat_share: float
    first_sold_at: datetime
    bought_with: tuple[Neighbour, ...] = ()
    alike: tuple[Alike, ...] = ()
    daypart_lift: tuple[float, float, float] = (1.0, 1.0, 1.0)
    weekday_lift: tuple[float, ...] = (1.0,) * 7
    store_lift: Mapping[str, float] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {
                "baskets": self.baskets,
                "buyers": self.buyers,
                "repeat": self.repeat_share,
                "first": self.first_sold_at.isoformat(),
                "with": [[n.sku, n.baskets, n.confidence, n.lift] for n in self.bought_with],
                "alike": [[a.sku, a.similarity] for a in self.alike],
                "daypart": list(self.daypart_lift),
                "weekday": list(self.weekday_lift),
                "store": dict(self.store_lift),
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, sku: str, raw: str | bytes) -> ItemProfile:
        d: dict[str, Any] = json.loads(raw)
        daypart = d["daypart"]
        return cls(
            sku=sku,
            baskets=d["baskets"],
            buyers=d["buyers"],
            repeat_share=d["repeat"],
            first_sold_at=datetime.fromisoformat(d["first"]),
            bought_with=tuple(map(Neighbour._make, d["with"])),
            alike=tuple(map(Alike._make, d["alike"])),
            daypart_lift=(daypart[0], daypart[1], daypart[2]),
            weekday_lift=tuple(d["weekday"]),
            store_lift=d["store"],
        )


@dataclass(frozen=True, slots=True)
class RecommendationModel:
    """One batch fit. ``popular`` lists the most bought skus (most baskets first), ``staples``
    the skus most often rebought by their buyers, ``newest`` the skus first sold shortly before
    ``as_of`` (newest first); ``skus`` every sku with a stored profile."""

    version: str
    fitted_at: datetime
    as_of: datetime
    baskets: int
    customers: int
    popular: tuple[str, ...]
    staples: tuple[str, ...]
    newest: tuple[str, ...]
    skus: tuple[str, ...]
    utc_offset_hours: float = 0.0

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": self.version,
                "fitted_at": self.fitted_at.isoformat(),
                "as_of": self.as_of.isoformat(),
                "baskets": self.baskets,
                "customers": self.customers,
                "popular": list(self.popular),
                "staples": list(self.staples),
                "newest": list(self.newest),
                "skus": list(self.skus),
                "utc_offset_hours": self.utc_offset_hours,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> RecommendationModel:
        d: dict[str, Any] = json.loads(raw)
        return cls(
            version=d["version"],
            fitted_at=datetime.fromisoformat(d["fitted_at"]),
            as_of=datetime.fromisoformat(d["as_of"]),
            baskets=d["baskets"],
            customers=d["customers"],
            popular=tuple(d["popular"]),
            staples=tuple(d["staples"]),
            newest=tuple(d["newest"]),
            skus=tuple(d["skus"]),
            utc_offset_hours=d["utc_offset_hours"],
        )
