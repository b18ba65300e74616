"""OMNIX_ANALYST=bedrock://MODEL_ID through the composition root, against the local Converse
server named by AWS_ENDPOINT_URL_BEDROCK_RUNTIME."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from domain.analysis import body_to_answer
from domain.customers import Consent, Customer
from domain.events import customer_registered
from domain.services.local_analyst import LOCAL_MODEL, LocalAnalyst
from schema.app import open_container
from schema.settings import Settings
from tests.integration.bedrock.server import ConverseServer, throttled, tool_answer
from tests.unit.analysis.fakes import NOW

MODEL = "us.anthropic.claude-3-5-haiku-20241022-v1:0"


async def test_the_configured_bedrock_analyst_answers_and_falls_back(
    bedrock: ConverseServer, tmp_path: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        env="test",
        analyst_url=f"bedrock://{MODEL}?timeout=5&attempts=2",
        ai_prices="",
    )
    async with open_container(settings) as c:
        assert c.analyst is not None
        person = Customer("cus_9", NOW, "Grace Hopper", "grace@example.com", Consent(True, True))
        await c.customer_store.add_many([person], [customer_registered(person)])
        given = await c.analyst.input_for("cus_9")
        bedrock.script.append(tool_answer(body_to_answer(LocalAnalyst().answer(given))))

        answered = await c.analyst.analyse("cus_9")
        assert (answered.model, answered.fallback_reason) == (MODEL, None)
        # 3.5 Haiku: $0.80 / $4.00 per million tokens
        assert answered.usage.cost_usd == Decimal("0.0022712")

        bedrock.script.extend([throttled(), throttled()])
        fallback = await c.analyst.analyse("cus_9", refresh=True)
        assert (fallback.model, fallback.fallback_reason) == (LOCAL_MODEL, "THROTTLED")
        assert len(bedrock.requests) == 3
        summary = await c.analyst.usage_summary()
        assert summary.total.calls == 3
        assert summary.total.failures == 1

    assert bedrock.requests[0].model_id == MODEL
    for request in bedrock.requests:
        assert "Grace" not in request.raw
        assert "example.com" not in request.raw
