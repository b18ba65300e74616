"""The local writer of segment descriptions and strategies: deterministic text from what each
segment means (docs/segments.md) and its current figures. It answers whenever no model-based
writer is configured, and for the same figures it always writes the same words."""

from __future__ import annotations

from domain.ports import SegmentWriter
from domain.segments import (
    SEGMENT_NAMES,
    SegmentCode,
    SegmentKpis,
    SegmentModel,
    SegmentStrategy,
    SegmentText,
)

_C = SegmentCode

_MEANING: dict[SegmentCode, tuple[str, str, str]] = {
    _C.CHAMPIONS: (
        "Bought very recently, buy often and spend the most.",
        "Premium ranges, new products first, loyalty rewards and early access.",
        "Deep discounts they do not need; generic mass mailings.",
    ),
    _C.LOYAL: (
        "Buy regularly and spend well, though not as recently or as much as champions.",
        "Replenishment reminders for their staples, bundles, upgrades within their brands.",
        "Win-back offers; treating them as price-driven.",
    ),
    _C.POTENTIAL_LOYALIST: (
        "Recent customers with a few purchases and average spend: on their way to loyal.",
        "Staples they have started buying, bundles, a membership or subscription offer.",
        "Pushing premium upgrades before the habit is formed.",
    ),
    _C.NEW: (
        "Bought for the first time, or only once, very recently.",
        "Staples and a welcome offer on a second basket; help them find the range.",
        "Heavy promotion of niche or premium items; long questionnaires.",
    ),
    _C.PROMISING: (
        "Recent shoppers who have bought little so far.",
        "Everyday essentials and easy add-ons; free delivery over a modest basket.",
        "Expensive first offers; frequent contact.",
    ),
    _C.NEED_ATTENTION: (
        "Average recency, frequency and spend: neither growing nor lapsing yet.",
        "Limited-time offers on their favourite categories, personalised recommendations.",
        "Silence: they drift without a reason to come back.",
    ),
    _C.ABOUT_TO_SLEEP: (
        "Below-average recency and little buying: about to drift away.",
        "Reminders of items due, popular products, a small incentive to return this week.",
        "Full-price premium pushes; too many messages at once.",
    ),
    _C.AT_RISK: (
        "Bought often and spent well, but not for a long while.",
        "Win-back offers on their favourite categories, personal messages, a service check.",
        "Generic promotions that ignore what they used to buy.",
    ),
    _C.CANT_LOSE: (
        "Used to be among the most frequent, highest-spending customers; gone quiet.",
        "Personal outreach, strong win-back offers on their old staples, ask what changed.",
        "Losing them to silence; treating them like new customers.",
    ),
    _C.HIBERNATING: (
        "Last bought long ago, bought little and spent little.",
        "Low-cost reactivation: relevant seasonal offers, popular items at a good price.",
        "Expensive campaigns; frequent contact that turns into unsubscribes.",
    ),
    _C.LOST: (
        "Lowest recency, frequency and spend: very likely gone.",
        "At most an occasional broad reactivation campaign.",
        "Spending on individual outreach.",
    ),
}


def _money(cents: float) -> str:
    return f"{cents / 100:,.2f}"


class LocalSegmentWriter(SegmentWriter):
    """Writes from a fixed text per segment plus its KPIs; no model call."""

    @property
    def name(self) -> str:
        return "local"

    async def write(self, segment: SegmentKpis, model: SegmentModel | None) -> SegmentText:
        meaning, offer, avoid = _MEANING[segment.segment]
        if segment.size == 0:
            figures = "No customer is in this segment at the moment."
        else:
            figures = (
                f"{segment.size:,} customer{'s' if segment.size != 1 else ''} "
                f"({segment.revenue_share:.1%} of revenue), "
                f"{segment.average_frequency:.1f} purchases on average, "
                f"average lifetime value {_money(segment.average_clv_cents)}, "
                f"{segment.share_active:.0%} active."
            )
        overlaps = ""
        if model is not None:
            clusters = [
                str(c.index)
                for c in model.clusters
                if c.segments and c.segments[0][0] is segment.segment
            ]
            if clusters:
                overlaps = f" Mostly behaviour cluster{'s' if len(clusters) > 1 else ''} " + (
                    ", ".join(clusters) + "."
                )
        return SegmentText(
            description=f"{SEGMENT_NAMES[segment.segment]}: {meaning} {figures}{overlaps}",
            strategy=SegmentStrategy(offer=offer, avoid=avoid),
            written_by=self.name,
        )
