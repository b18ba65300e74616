"""Over seeded demo customers, what the analysis says about due staples and churn agrees with
the statistical models (the stored predictions read at the same moment), and its churn ratings
separate the customers the generator made lapse from the active ones."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from domain.analysis import DUE, STAPLE_MIN_PURCHASES
from domain.clock import FixedClock
from domain.demo import generate
from domain.demo.seeding import write
from domain.predictions import ChurnRiskBand
from schema.app import open_container
from schema.settings import Settings

AS_OF = datetime(2026, 3, 14, 15, 30, tzinfo=UTC)
CUSTOMERS = 80


async def test_analysis_agrees_with_the_statistical_models(tmp_path: Path) -> None:
    data = generate(as_of=AS_OF, n_customers=CUSTOMERS, seed=7)
    settings = Settings(data_dir=tmp_path, env="test")
    async with open_container(settings, clock=FixedClock(AS_OF)) as c:
        await write(data, c.customer_store, c.product_store, c.purchase_store)
        assert c.predictions is not None
        assert c.analyst is not None
        await c.predictions.recompute()

        due_agree = churn_agree = named = confirmed = model_due = listed = 0
        high_or_medium = {True: 0, False: 0}
        counts = {True: 0, False: 0}
        for customer in data.customers:
            analysis = await c.analyst.analyse(customer.id)
            predicted = await c.predictions.for_customer(customer.id)
            assert predicted is not None
            assert predicted.forecast is not None
            staples = [p for p in predicted.consumption if p.purchases >= STAPLE_MIN_PURCHASES]
            truly_due = {p.sku for p in staples if p.status in DUE}
            said_due = set(analysis.body.consumption.due)
            named += len(said_due)
            confirmed += len(said_due & truly_due)
            model_due += len(truly_due)
            listed += len(truly_due & said_due)
            due_agree += said_due == truly_due
            churn_agree += analysis.body.churn.risk == predicted.forecast.churn_risk
            lapsed = data.habits[customer.id].lapsed_at is not None
            counts[lapsed] += 1
            high_or_medium[lapsed] += analysis.body.churn.risk is not ChurnRiskBand.LOW

    n = len(data.customers)
    due_rate, churn_rate = due_agree / n, churn_agree / n
    precision = confirmed / named if named else 1.0
    recall = listed / model_due if model_due else 1.0
    print(
        f"\nanalyst agreement over {n} demo customers: due staples {due_rate:.1%} "
        f"(precision {precision:.1%}, recall {recall:.1%} of {model_due} due staples), "
        f"churn band {churn_rate:.1%}; rated MEDIUM/HIGH: lapsed "
        f"{high_or_medium[True]}/{counts[True]}, active {high_or_medium[False]}/{counts[False]}"
    )
    assert precision == 1.0
    assert recall >= 0.95
    assert due_rate >= 0.95
    assert churn_rate >= 0.99
    assert counts[True] > 0
    assert high_or_medium[True] / counts[True] > high_or_medium[False] / counts[False]
