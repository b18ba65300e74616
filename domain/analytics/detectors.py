"""The anomaly detectors: pure functions from numbers to findings.

Each detector states its rule, its thresholds and how a score maps to a severity (see
docs/anomalies.md, which also gives each one's false-positive rate measured on the demo's normal
traffic). The per-customer rules work on arrays, so the same function judges one customer's
latest basket or a whole replayed history; the service layer (domain/services/anomalies.py)
turns findings into stored anomalies with ids, times and source events.

* BASKET_SPIKE: the basket's total against the customer's own earlier totals, as a robust
  z-score (median and MAD, not mean and standard deviation: one earlier spike must not hide
  the next).
* EARLY_REPURCHASE: a staple bought far before the early edge of its window, judged against
  the stored pattern as it was before this purchase.
* OVERDUE: a staple not bought past the late edge of its window (found by the periodic sweep).
* CHURN_RISK: P(alive) crossing below a threshold between two readings of the forecast.
* BURST: a run of purchases by one customer each within minutes of the previous.
* SALES_RATE: an hourly purchase count of a store or category against its EWMA baseline for
  that hour of the week (:class:`SalesRateBaseline`, whose state survives restarts).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from domain.anomalies import AnomalyKind, Severity

FloatArray = npt.NDArray[np.float64]

SECONDS_PER_DAY = 86_400.0
MAD_TO_SIGMA = 0.6745
"""The MAD of a normal distribution is 0.6745 standard deviations: the usual robust z factor."""


@dataclass(frozen=True, slots=True)
class Finding:
    """What a detector found, before it is stored. ``dedup_key`` names the cause and window:
    the same cause found again in the same window yields the same key."""

    kind: AnomalyKind
    severity: Severity
    score: float
    customer_id: str | None
    subject: str | None
    explanation: str
    evidence: dict[str, Any]
    dedup_key: str


def severity_for(score: float, cuts: tuple[float, float, float]) -> Severity:
    """LOW below ``cuts[0]``..., CRITICAL at or above ``cuts[2]`` (cuts ascending)."""
    if score >= cuts[2]:
        return Severity.CRITICAL
    if score >= cuts[1]:
        return Severity.HIGH
    if score >= cuts[0]:
        return Severity.MEDIUM
    return Severity.LOW


def _days(delta: timedelta) -> float:
    return delta.total_seconds() / SECONDS_PER_DAY


def _money(cents: float) -> str:
    return f"{cents / 100:,.2f}"


# ---------------------------------------------------------------------------------------------
# BASKET_SPIKE
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BasketSpikeRule:
    min_history: int = 5
    """Earlier baskets needed before a customer's "usual" means anything."""
    min_z: float = 6.0
    min_ratio: float = 2.5
    """Both must hold: far out in the customer's own spread, and a multiple of the median."""
    mad_floor_share: float = 0.15
    """The MAD is floored at this share of the median (a very regular shopper's MAD can be ~0,
    which would make any change infinitely surprising)."""
    severity_cuts: tuple[float, float, float] = (10.0, 20.0, 40.0)


def robust_z(history: FloatArray, value: FloatArray, *, mad_floor_share: float) -> FloatArray:
    """Robust z-scores of ``value[i]`` against the non-NaN entries of row ``history[i]``:
    0.6745 * (value - median) / MAD, the MAD floored at ``mad_floor_share`` of the median (and
    at one cent). Rows with no history give NaN."""
    history = np.atleast_2d(np.asarray(history, dtype=np.float64))
    value = np.asarray(value, dtype=np.float64)
    out = np.full(value.shape, np.nan)
    has = ~np.all(np.isnan(history), axis=1)
    if not has.any():
        return out
    h = history[has]
    median = np.nanmedian(h, axis=1)
    mad = np.nanmedian(np.abs(h - median[:, None]), axis=1)
    mad = np.maximum(mad, np.maximum(mad_floor_share * np.abs(median), 1.0))
    out[has] = MAD_TO_SIGMA * (value[has] - median) / mad
    return out


def basket_spikes(
    history: FloatArray,
    totals: FloatArray,
    *,
    rule: BasketSpikeRule = BasketSpikeRule(),
) -> tuple[npt.NDArray[np.bool_], FloatArray, FloatArray]:
    """For each basket ``totals[i]`` (cents) against row ``history[i]`` of the customer's earlier
    totals (NaN-padded): whether it is a spike, its robust z and its ratio to the median."""
    history = np.atleast_2d(np.asarray(history, dtype=np.float64))
    totals = np.asarray(totals, dtype=np.float64)
    z = robust_z(history, totals, mad_floor_share=rule.mad_floor_share)
    counts = np.sum(~np.isnan(history), axis=1)
    median = np.full(totals.shape, np.nan)
    has = counts > 0
    if has.any():
        median[has] = np.nanmedian(history[has], axis=1)
    ratio = np.divide(totals, median, out=np.full(totals.shape, np.nan), where=median > 0)
    fires = (counts >= rule.min_history) & (z >= rule.min_z) & (ratio >= rule.min_ratio)
    return np.nan_to_num(fires, nan=False).astype(bool), z, ratio


def basket_spike(
    customer_id: str,
    purchase_id: str,
    total_cents: int,
    earlier_totals: Sequence[int],
    *,
    rule: BasketSpikeRule = BasketSpikeRule(),
) -> Finding | None:
    """One basket against the customer's earlier baskets."""
    if len(earlier_totals) < rule.min_history:
        return None
    history = np.asarray(earlier_totals, dtype=np.float64)[None, :]
    fires, z, ratio = basket_spikes(history, np.array([float(total_cents)]), rule=rule)
    if not fires[0]:
        return None
    median = float(np.median(history))
    mad = float(np.median(np.abs(history - median)))
    score = float(z[0])
    return Finding(
        kind=AnomalyKind.BASKET_SPIKE,
        severity=severity_for(score, rule.severity_cuts),
        score=round(score, 2),
        customer_id=customer_id,
        subject=purchase_id,
        explanation=(
            f"Basket of {_money(total_cents)} is {float(ratio[0]):.1f}x this customer's median "
            f"basket of {_money(median)} (robust z {score:.1f} over {history.shape[1]} earlier "
            f"baskets, MAD {_money(mad)})."
        ),
        evidence={
            "totalCents": int(total_cents),
            "medianCents": round(median, 2),
            "madCents": round(mad, 2),
            "robustZ": round(score, 3),
            "ratio": round(float(ratio[0]), 3),
            "baskets": int(history.shape[1]),
        },
        dedup_key=f"{AnomalyKind.BASKET_SPIKE}:{customer_id}:{purchase_id}",
    )


# ---------------------------------------------------------------------------------------------
# EARLY_REPURCHASE and OVERDUE: a staple's window
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StapleWindow:
    """What the staple rules need from a stored consumption pattern."""

    sku: str
    purchases: int
    confidence: float
    last_purchased_at: datetime
    next_expected_at: datetime
    window_low: datetime
    window_high: datetime


@dataclass(frozen=True, slots=True)
class EarlyRepurchaseRule:
    min_purchases: int = 3
    """A staple: bought on at least this many days before."""
    max_share: float = 0.35
    """Fires when the time since the last purchase is below this share of the time from the
    last purchase to the early edge of the 80% window."""
    min_days_early: float = 2.0
    severity_cuts: tuple[float, float, float] = (0.75, 0.95, 2.0)
    """Score = 1 - share: 0.75 (a quarter of the way) MEDIUM, 0.95 (within a twentieth of the
    gap, typically the same day: a duplicated order) HIGH; never CRITICAL on its own."""


def early_repurchase(
    customer_id: str,
    purchase_id: str,
    purchased_at: datetime,
    quantity: int,
    before: StapleWindow,
    *,
    rule: EarlyRepurchaseRule = EarlyRepurchaseRule(),
) -> Finding | None:
    """A staple bought at ``purchased_at`` against its pattern as stored before this purchase."""
    if before.purchases < rule.min_purchases or purchased_at <= before.last_purchased_at:
        return None
    last = before.last_purchased_at
    elapsed = _days(purchased_at - last)
    to_low = _days(before.window_low - last)
    expected = _days(before.next_expected_at - last)
    days_early = _days(before.window_low - purchased_at)
    if to_low <= 0 or days_early < rule.min_days_early:
        return None
    share = elapsed / to_low
    if share >= rule.max_share:
        return None
    score = 1.0 - share
    return Finding(
        kind=AnomalyKind.EARLY_REPURCHASE,
        severity=severity_for(score, rule.severity_cuts),
        score=round(score, 3),
        customer_id=customer_id,
        subject=before.sku,
        explanation=(
            f"{before.sku} bought again {elapsed:.1f} days after the last purchase; its usual "
            f"gap is {expected:.1f} days and the 80% window opened only in {to_low:.1f} days "
            f"({days_early:.1f} days early; {quantity} unit(s))."
        ),
        evidence={
            "sku": before.sku,
            "quantity": quantity,
            "daysSinceLast": round(elapsed, 3),
            "expectedGapDays": round(expected, 3),
            "daysToWindowLow": round(to_low, 3),
            "daysEarly": round(days_early, 3),
            "lastPurchasedAt": before.last_purchased_at.isoformat(),
            "windowLow": before.window_low.isoformat(),
            "purchases": before.purchases,
        },
        dedup_key=f"{AnomalyKind.EARLY_REPURCHASE}:{customer_id}:{before.sku}:{purchase_id}",
    )


@dataclass(frozen=True, slots=True)
class OverdueRule:
    min_purchases: int = 3
    min_confidence: float = 0.5
    """Only staples the model is fairly sure about: an unsure window is wide anyway."""
    grace_share: float = 0.1
    """Days past the late edge, as a share of the usual gap, before it counts."""
    severity_cuts: tuple[float, float, float] = (0.75, 1.5, 3.0)
    """Score = days past the late edge / usual gap: 0.75 of a gap MEDIUM, 1.5 gaps HIGH,
    three gaps CRITICAL."""


def overdue(
    customer_id: str,
    pattern: StapleWindow,
    now: datetime,
    *,
    rule: OverdueRule = OverdueRule(),
) -> Finding | None:
    """A staple not bought past its window's late edge. One finding per cycle: the key names
    the last purchase, so a purchase starts a new cycle and a new key."""
    if pattern.purchases < rule.min_purchases or pattern.confidence < rule.min_confidence:
        return None
    gap = _days(pattern.next_expected_at - pattern.last_purchased_at)
    past = _days(now - pattern.window_high)
    if gap <= 0 or past < rule.grace_share * gap:
        return None
    score = past / gap
    since = _days(now - pattern.last_purchased_at)
    return Finding(
        kind=AnomalyKind.OVERDUE,
        severity=severity_for(score, rule.severity_cuts),
        score=round(score, 3),
        customer_id=customer_id,
        subject=pattern.sku,
        explanation=(
            f"{pattern.sku} not bought for {since:.1f} days; usually every {gap:.1f} days, "
            f"and the 80% window closed {past:.1f} days ago."
        ),
        evidence={
            "sku": pattern.sku,
            "daysSinceLast": round(since, 3),
            "expectedGapDays": round(gap, 3),
            "daysPastWindow": round(past, 3),
            "lastPurchasedAt": pattern.last_purchased_at.isoformat(),
            "windowHigh": pattern.window_high.isoformat(),
            "confidence": round(pattern.confidence, 3),
        },
        dedup_key=(
            f"{AnomalyKind.OVERDUE}:{customer_id}:{pattern.sku}:"
            f"{pattern.last_purchased_at.astimezone(UTC).isoformat()}"
        ),
    )


# ---------------------------------------------------------------------------------------------
# CHURN_RISK
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChurnRule:
    threshold: float = 0.3
    """Fires when P(alive) goes from at or above this to below it."""
    severity_cuts: tuple[float, float, float] = (0.5, 0.75, 0.9)
    """Score = 1 - P(alive) / threshold (how far below it): under 0.5 LOW, then MEDIUM, from
    0.75 HIGH, from 0.9 CRITICAL."""
    segments: frozenset[str] = frozenset({"AT_RISK", "CANT_LOSE"})
    """A migration into one of these is a churn risk too."""


def churn_risk(
    customer_id: str,
    before: float | None,
    after: float,
    *,
    anchor: datetime,
    clv_cents: float | None = None,
    rule: ChurnRule = ChurnRule(),
) -> Finding | None:
    """P(alive) crossing below the threshold, from ``before`` to ``after``. ``anchor`` (the
    customer's last purchase) names the window: one finding per lapse."""
    if after >= rule.threshold or (before is not None and before < rule.threshold):
        return None
    score = 1.0 - after / rule.threshold
    clv = f"; lifetime value {_money(clv_cents)}" if clv_cents is not None else ""
    was = f"{before:.2f}" if before is not None else "unknown"
    return Finding(
        kind=AnomalyKind.CHURN_RISK,
        severity=severity_for(score, rule.severity_cuts),
        score=round(score, 3),
        customer_id=customer_id,
        subject=None,
        explanation=(f"P(alive) fell from {was} to {after:.2f}, below {rule.threshold:.2f}{clv}."),
        evidence={
            "pAliveBefore": None if before is None else round(before, 4),
            "pAlive": round(after, 4),
            "threshold": rule.threshold,
            "clvCents": None if clv_cents is None else round(clv_cents, 2),
            "lastPurchasedAt": anchor.isoformat(),
        },
        dedup_key=f"{AnomalyKind.CHURN_RISK}:{customer_id}:{anchor.astimezone(UTC).isoformat()}",
    )


def segment_slide(
    customer_id: str,
    migration_id: str,
    from_segment: str,
    to_segment: str,
    *,
    rule: ChurnRule = ChurnRule(),
) -> Finding | None:
    """A migration into AT_RISK or CANT_LOSE (from a segment outside them)."""
    if to_segment not in rule.segments or from_segment in rule.segments:
        return None
    severity = Severity.HIGH if to_segment == "CANT_LOSE" else Severity.MEDIUM
    return Finding(
        kind=AnomalyKind.CHURN_RISK,
        severity=severity,
        score=1.0 if severity is Severity.HIGH else 0.75,
        customer_id=customer_id,
        subject=to_segment,
        explanation=f"Moved from segment {from_segment} to {to_segment}.",
        evidence={"from": from_segment, "to": to_segment, "migrationId": migration_id},
        dedup_key=f"{AnomalyKind.CHURN_RISK}:{customer_id}:segment:{migration_id}",
    )


# ---------------------------------------------------------------------------------------------
# BURST
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BurstRule:
    gap_minutes: float = 10.0
    """Purchases each within this many minutes of the previous form one run."""
    min_purchases: int = 4
    severity_cuts: tuple[float, float, float] = (6.0, 10.0, 20.0)
    """Score = purchases in the run: 4-5 LOW, 6-9 MEDIUM, 10-19 HIGH, 20+ CRITICAL."""


def run_starts(times: FloatArray, gap_seconds: float) -> npt.NDArray[np.int64]:
    """For epoch seconds sorted ascending, the index where each one's run begins (a run is a
    chain of purchases each within ``gap_seconds`` of the previous)."""
    times = np.asarray(times, dtype=np.float64)
    if times.size == 0:
        return np.zeros(0, dtype=np.int64)
    breaks = np.concatenate(([True], np.diff(times) > gap_seconds))
    index = np.arange(times.size, dtype=np.int64)
    return np.maximum.accumulate(np.where(breaks, index, 0))


def burst(
    customer_id: str,
    purchase_ids: Sequence[str],
    purchased_at: Sequence[datetime],
    *,
    rule: BurstRule = BurstRule(),
) -> Finding | None:
    """The run ending at the newest of these purchases (sorted by time, oldest first). One
    finding per run: the key names the run's first purchase."""
    if len(purchased_at) < rule.min_purchases:
        return None
    times = np.array([t.timestamp() for t in purchased_at], dtype=np.float64)
    start = int(run_starts(times, rule.gap_minutes * 60.0)[-1])
    count = len(times) - start
    if count < rule.min_purchases:
        return None
    span = (times[-1] - times[start]) / 60.0
    return Finding(
        kind=AnomalyKind.BURST,
        severity=severity_for(float(count), rule.severity_cuts),
        score=float(count),
        customer_id=customer_id,
        subject=None,
        explanation=(
            f"{count} purchases within {span:.1f} minutes, each within "
            f"{rule.gap_minutes:g} minutes of the previous."
        ),
        evidence={
            "purchases": count,
            "spanMinutes": round(span, 2),
            "firstPurchaseId": purchase_ids[start],
            "firstAt": purchased_at[start].isoformat(),
        },
        dedup_key=f"{AnomalyKind.BURST}:{customer_id}:{purchase_ids[start]}",
    )


# ---------------------------------------------------------------------------------------------
# SALES_RATE
# ---------------------------------------------------------------------------------------------

HOURS_PER_WEEK = 168
HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class SalesRateRule:
    alpha: float = 0.25
    """EWMA weight of the newest week for an hour of the week."""
    warmup_weeks: int = 3
    """Weeks of that hour seen before it is judged."""
    min_z: float = 4.5
    severity_cuts: tuple[float, float, float] = (6.0, 10.0, 20.0)
    max_gap_hours: int = HOURS_PER_WEEK
    """Hours without any event are closed as zero counts, up to a week of them."""


def hour_of_week(hour_start: datetime) -> int:
    """Monday 00:00 UTC is 0."""
    at = hour_start.astimezone(UTC)
    return at.weekday() * 24 + at.hour


def _hour_floor(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


@dataclass
class SalesRateBaseline:
    """Per aggregate key (``store:<id>``, ``category:<name>``), an EWMA of the hourly purchase
    count for each of the 168 hours of the week, its EWMA variance and how many weeks fed it,
    plus the open hour's counts. Events count toward the hour of their purchase time; one older
    than the open hour is late and counted only in ``late``. A purchase counted once is never
    counted again (the open hour keeps the event ids it counted), so a redelivered batch
    changes nothing."""

    rule: SalesRateRule = field(default_factory=SalesRateRule)
    keys: list[str] = field(default_factory=list)
    mean: FloatArray = field(default_factory=lambda: np.zeros((0, HOURS_PER_WEEK)))
    var: FloatArray = field(default_factory=lambda: np.zeros((0, HOURS_PER_WEEK)))
    weeks: npt.NDArray[np.int64] = field(
        default_factory=lambda: np.zeros((0, HOURS_PER_WEEK), dtype=np.int64)
    )
    open_hour: datetime | None = None
    open_counts: dict[str, int] = field(default_factory=dict)
    open_ids: set[str] = field(default_factory=set)
    late: int = 0

    def _index(self, key: str) -> int:
        try:
            return self.keys.index(key)
        except ValueError:
            self.keys.append(key)
            self.mean = np.vstack([self.mean, np.zeros(HOURS_PER_WEEK)])
            self.var = np.vstack([self.var, np.zeros(HOURS_PER_WEEK)])
            self.weeks = np.vstack([self.weeks, np.zeros(HOURS_PER_WEEK, dtype=np.int64)])
            return len(self.keys) - 1

    def observe(self, event_id: str, purchased_at: datetime, keys: Sequence[str]) -> list[Finding]:
        """Count one purchase toward ``keys``; returns what closing earlier hours found."""
        hour = _hour_floor(purchased_at)
        findings: list[Finding] = []
        if self.open_hour is None:
            self.open_hour = hour
        elif hour > self.open_hour:
            findings = self.advance(hour)
        elif hour < self.open_hour:
            self.late += 1
            return findings
        if event_id in self.open_ids:
            return findings
        self.open_ids.add(event_id)
        for key in dict.fromkeys(keys):
            self._index(key)
            self.open_counts[key] = self.open_counts.get(key, 0) + 1
        return findings

    def advance(self, now: datetime) -> list[Finding]:
        """Close every hour before the one holding ``now`` (judging each, then folding it into
        the baseline); hours without purchases count as zero."""
        hour = _hour_floor(now)
        findings: list[Finding] = []
        if self.open_hour is None or hour <= self.open_hour:
            return findings
        closing = self.open_hour
        gap = int((hour - closing) / HOUR)
        if gap > self.rule.max_gap_hours:
            closing = hour - self.rule.max_gap_hours * HOUR
        while closing < hour:
            findings.extend(self._close(closing))
            closing += HOUR
        self.open_hour = hour
        return findings

    def _close(self, hour_start: datetime) -> list[Finding]:
        counts = np.array([self.open_counts.get(k, 0) for k in self.keys], dtype=np.float64)
        self.open_counts = {}
        self.open_ids = set()
        if not self.keys:
            return []
        h = hour_of_week(hour_start)
        mean, var, weeks = self.mean[:, h], self.var[:, h], self.weeks[:, h]
        spread = np.sqrt(np.maximum(var, mean) + 1.0)  # Poisson floor, and never zero
        z = (counts - mean) / spread
        judged = weeks >= self.rule.warmup_weeks
        fires = judged & (np.abs(z) >= self.rule.min_z)
        findings = [
            self._finding(self.keys[i], hour_start, counts[i], mean[i], spread[i], z[i])
            for i in np.flatnonzero(fires)
        ]
        a = self.rule.alpha
        seen = weeks > 0
        delta = counts - mean
        self.mean[:, h] = np.where(seen, mean + a * delta, counts)
        self.var[:, h] = np.where(seen, (1 - a) * (var + a * delta * delta), 0.0)
        self.weeks[:, h] = weeks + 1
        return findings

    def _finding(
        self, key: str, hour_start: datetime, count: float, mean: float, spread: float, z: float
    ) -> Finding:
        direction = "above" if z > 0 else "below"
        score = abs(float(z))
        return Finding(
            kind=AnomalyKind.SALES_RATE,
            severity=severity_for(score, self.rule.severity_cuts),
            score=round(score, 3),
            customer_id=None,
            subject=key,
            explanation=(
                f"{key}: {int(count)} purchases in the hour from {hour_start.isoformat()}, "
                f"{direction} the usual {mean:.1f} for that hour of the week "
                f"(z {float(z):+.1f})."
            ),
            evidence={
                "key": key,
                "hourStart": hour_start.isoformat(),
                "hourOfWeek": hour_of_week(hour_start),
                "count": int(count),
                "baseline": round(float(mean), 3),
                "spread": round(float(spread), 3),
                "z": round(float(z), 3),
            },
            dedup_key=f"{AnomalyKind.SALES_RATE}:{key}:{hour_start.isoformat()}",
        )

    # -- state, kept so a restart does not reset the baseline ------------------------------

    def to_state(self) -> dict[str, Any]:
        return {
            "keys": list(self.keys),
            "mean": np.round(self.mean, 6).tolist(),
            "var": np.round(self.var, 6).tolist(),
            "weeks": self.weeks.tolist(),
            "openHour": self.open_hour.isoformat() if self.open_hour else None,
            "openCounts": dict(self.open_counts),
            "openIds": sorted(self.open_ids),
            "late": self.late,
        }

    @classmethod
    def from_state(
        cls, state: Mapping[str, Any], rule: SalesRateRule | None = None
    ) -> SalesRateBaseline:
        n = len(state["keys"])
        shape = (n, HOURS_PER_WEEK)
        open_hour = state.get("openHour")
        return cls(
            rule=rule or SalesRateRule(),
            keys=list(state["keys"]),
            mean=np.asarray(state["mean"], dtype=np.float64).reshape(shape),
            var=np.asarray(state["var"], dtype=np.float64).reshape(shape),
            weeks=np.asarray(state["weeks"], dtype=np.int64).reshape(shape),
            open_hour=datetime.fromisoformat(open_hour) if open_hour else None,
            open_counts={str(k): int(v) for k, v in state.get("openCounts", {}).items()},
            open_ids=set(state.get("openIds", [])),
            late=int(state.get("late", 0)),
        )
