"""The local statistical analyst: the embedded default and the fallback when a model fails.

It reads the same :class:`~domain.analysis.AnalysisInput` a model reads and answers the same
structure, deterministically, from the computed statistics alone: the staples the consumption
model calls due, the churn band of the customer forecast with the figures behind it, and three
actions chosen by fixed rules. It never costs anything and never fails on a valid input, so its
statements about due staples and churn agree with the statistical models by construction.
"""

from __future__ import annotations

from collections import Counter
from statistics import fmean

from domain.analysis import (
    ACTIONS,
    DUE,
    AnalysisBody,
    AnalysisInput,
    AnalystAnswer,
    ChurnAssessment,
    ConsumptionInsights,
    InputStaple,
    RecommendedAction,
    Regularity,
    SocioeconomicReading,
)
from domain.predictions import Affluence, ChurnRiskBand, ConsumptionStatus

LOCAL_MODEL = "omnix-local-statistics"
LOCAL_PROMPT_VERSION = "rules.v1"

REGULAR_CONFIDENCE = 0.5
"""A staple whose cycle confidence reaches this counts as regular."""


def _names(staples: list[InputStaple], limit: int = 3) -> str:
    names = [s.product for s in staples[:limit]]
    more = len(staples) - len(names)
    text = ", ".join(names)
    return f"{text} and {more} more" if more > 0 else text


def _regularity(given: AnalysisInput) -> Regularity:
    if len(given.staples) < 2:
        return Regularity.SPARSE
    regular = sum(s.confidence >= REGULAR_CONFIDENCE for s in given.staples)
    return Regularity.REGULAR if regular * 2 >= len(given.staples) else Regularity.IRREGULAR


def _consumption(given: AnalysisInput) -> ConsumptionInsights:
    staples = list(given.staples)
    due = [s for s in staples if s.status in DUE]
    lapsed = [s for s in staples if s.status is ConsumptionStatus.LAPSED]
    regularity = _regularity(given)
    if not staples:
        text = "No product has been bought often enough yet to show a cycle."
    else:
        cycles = "; ".join(f"{s.product} every {s.mean_interval_days:g} days" for s in staples[:3])
        text = f"{len(staples)} staples ({regularity.value.lower()}): {cycles}."
        if due:
            text += f" Due now: {_names(due)}."
        if lapsed:
            text += f" No longer bought: {_names(lapsed)}."
    return ConsumptionInsights(
        summary=text,
        regularity=regularity,
        staples=tuple(s.sku for s in staples),
        due=tuple(s.sku for s in due),
    )


def _churn(given: AnalysisInput) -> ChurnAssessment:
    f = given.forecast
    if f is None:
        return ChurnAssessment(
            ChurnRiskBand.MEDIUM,
            ("No customer forecast yet (too little history, or not computed); treated as medium.",),
        )
    reasons = [
        f"Probability still active {f.p_alive:.0%}, "
        f"{f.days_since_last_purchase:g} days since the last purchase."
    ]
    if f.overdue_staples:
        reasons.append(f"{f.overdue_staples} staple(s) overdue or lapsed.")
    reasons.append(
        f"{f.expected_transactions:g} purchases expected in the next {f.horizon_days:g} days."
    )
    return ChurnAssessment(f.churn_risk, tuple(reasons))


def _reading(given: AnalysisInput) -> SocioeconomicReading | None:
    p = given.profile
    if p is None:
        return None
    drivers = ", ".join(d.replace("_", " ") for d in p.drivers[:3]) or "the basket mix"
    return SocioeconomicReading(
        summary=(
            f"{p.affluence.value.lower()} price orientation ({p.confidence:.0%} confidence, "
            f"driven by {drivers}); household of about {p.household_size:g}."
        ),
        affluence=p.affluence,
        household_size=p.household_size,
    )


def _top_category(given: AnalysisInput) -> str | None:
    counts = Counter(line.category for p in given.purchases for line in p.lines if line.category)
    return counts.most_common(1)[0][0] if counts else None


def _actions(given: AnalysisInput, churn: ChurnAssessment) -> tuple[RecommendedAction, ...]:
    staples = list(given.staples)
    due = [s for s in staples if s.status in DUE]
    lapsed = [s for s in staples if s.status is ConsumptionStatus.LAPSED]
    candidates: list[RecommendedAction] = []
    if due:
        s = due[0]
        candidates.append(
            RecommendedAction(
                f"Remind about {s.product}",
                f"Bought every {s.mean_interval_days:g} days, last {s.days_since_last:g} days "
                "ago: a replenishment reminder or offer now matches the cycle.",
                s.sku,
            )
        )
    if churn.risk is ChurnRiskBand.HIGH:
        candidates.append(
            RecommendedAction(
                "Send a win-back offer",
                "The forecast rates this customer as likely lost; a personal incentive is the "
                "last cheap chance to bring them back.",
            )
        )
    elif churn.risk is ChurnRiskBand.MEDIUM:
        candidates.append(
            RecommendedAction(
                "Re-engage before the habit breaks",
                "Activity is slipping against the customer's own rhythm; a timely nudge costs "
                "less than winning them back later.",
            )
        )
    if lapsed:
        s = lapsed[0]
        candidates.append(
            RecommendedAction(
                f"Win back {s.product}",
                f"A former staple (every {s.mean_interval_days:g} days) not bought for "
                f"{s.days_since_last:g} days: probably bought elsewhere now.",
                s.sku,
            )
        )
    if given.profile is not None:
        offer = {
            Affluence.PREMIUM: "Feature the premium range",
            Affluence.MID: "Offer value bundles",
            Affluence.BUDGET: "Lead with promotions and own-brand value",
        }[given.profile.affluence]
        candidates.append(
            RecommendedAction(
                offer,
                f"Matches the {given.profile.affluence.value.lower()} price orientation "
                "seen in the baskets.",
            )
        )
    category = _top_category(given)
    if category:
        candidates.append(
            RecommendedAction(
                f"Cross-sell in {category}",
                f"{category} is the customer's most bought category in the recent baskets.",
            )
        )
    if staples:
        s = staples[0]
        candidates.append(
            RecommendedAction(
                f"Subscribe-and-save on {s.product}",
                f"The most regular staple (every {s.mean_interval_days:g} days) suits a "
                "standing order.",
                s.sku,
            )
        )
    candidates.extend(
        [
            RecommendedAction(
                "Reward loyalty",
                "A thank-you for continued shopping keeps a healthy relationship healthy.",
            ),
            RecommendedAction(
                "Invite a second visit this week",
                "A timed incentive builds the habit that the statistics need to learn from.",
            ),
            RecommendedAction(
                "Ask for preferences",
                "A short preference survey fills gaps the purchase history cannot.",
            ),
        ]
    )
    chosen: dict[str, RecommendedAction] = {}
    for action in candidates:
        chosen.setdefault(action.title, action)
    return tuple(list(chosen.values())[:ACTIONS])


def _summary(given: AnalysisInput, consumption: ConsumptionInsights, churn: ChurnAssessment) -> str:
    parts = [f"{len(given.purchases)} recent purchases"]
    if given.segment:
        parts.append(f"segment {given.segment}")
    parts.append(f"churn risk {churn.risk.value}")
    if consumption.due:
        parts.append(f"{len(consumption.due)} staple(s) due")
    elif given.staples:
        parts.append("no staple due")
    return "; ".join(parts) + "."


def _confidence(given: AnalysisInput) -> float:
    staple = fmean(s.confidence for s in given.staples) if given.staples else 0.0
    history = min(len(given.purchases), 20) / 20
    value = 0.2 + 0.3 * history + 0.3 * staple + (0.2 if given.forecast else 0.0)
    return round(min(value, 1.0), 2)


class LocalAnalyst:
    """Answers from the statistics, deterministically; the Analyst port's embedded adapter."""

    @property
    def model(self) -> str:
        return LOCAL_MODEL

    @property
    def prompt_version(self) -> str:
        return LOCAL_PROMPT_VERSION

    async def analyse(self, given: AnalysisInput) -> AnalystAnswer:
        return AnalystAnswer(self.answer(given), LOCAL_MODEL, LOCAL_PROMPT_VERSION)

    def answer(self, given: AnalysisInput) -> AnalysisBody:
        consumption = _consumption(given)
        churn = _churn(given)
        return AnalysisBody(
            summary=_summary(given, consumption, churn),
            consumption=consumption,
            socioeconomic=_reading(given),
            churn=churn,
            actions=_actions(given, churn),
            confidence=_confidence(given),
        )
