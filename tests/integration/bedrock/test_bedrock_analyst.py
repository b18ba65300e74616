"""The Bedrock analyst with the real aioboto3 client (SigV4 signing, dummy credentials) against
a local server speaking the Converse wire format."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.bedrock.analyst import TOOL_NAME, BedrockAnalyst
from adapters.bedrock.config import parse_bedrock_url, price_for
from adapters.bedrock.prompts import load_prompt
from domain.analysis import AnalysisInput, AnalystError, body_to_answer, build_input
from domain.services.local_analyst import LOCAL_MODEL, LocalAnalyst
from tests.integration.bedrock.server import (
    ConverseServer,
    Reply,
    server_error,
    throttled,
    tool_answer,
)
from tests.unit.analysis.fakes import NOW, PRODUCTS, customer, predictions, purchases
from tests.unit.analysis.world import open_world

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
Open = Callable[..., BedrockAnalyst]


@pytest.fixture
async def open_analyst(bedrock: ConverseServer) -> AsyncIterator[Open]:
    opened: list[BedrockAnalyst] = []

    def make(query: str = "timeout=3&attempts=3") -> BedrockAnalyst:
        settings = parse_bedrock_url(f"bedrock://{HAIKU}?{query}")
        analyst = BedrockAnalyst(settings, load_prompt(), price_for(HAIKU, {}), base_delay=0.01)
        opened.append(analyst)
        return analyst

    yield make
    for analyst in opened:
        await analyst.close()


def _input(*, profiling: bool = True) -> AnalysisInput:
    return build_input(
        customer(profiling=profiling), purchases(), predictions(), PRODUCTS, as_of=NOW
    )


def _good(given: AnalysisInput) -> Reply:
    return tool_answer(body_to_answer(LocalAnalyst().answer(given)))


async def test_a_signed_forced_tool_call_is_answered_and_costed(
    bedrock: ConverseServer, open_analyst: Open
) -> None:
    analyst = open_analyst()
    await analyst.open()
    given = _input()
    bedrock.script.append(_good(given))

    answer = await analyst.analyse(given)

    assert answer.body == LocalAnalyst().answer(given)
    assert (answer.model, answer.prompt_version) == (HAIKU, "customer_analysis.v1")
    # 1234 input tokens at $0.25/M + 321 output tokens at $1.25/M
    assert answer.usage.cost_usd == Decimal("0.00070975")
    [request] = bedrock.requests
    assert request.model_id == HAIKU
    assert request.headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=testing/")
    assert "/us-east-1/bedrock/aws4_request" in request.headers["Authorization"]
    assert request.body["toolConfig"]["toolChoice"] == {"tool": {"name": TOOL_NAME}}
    assert request.body["inferenceConfig"]["maxTokens"] == 1024
    assert "record_customer_analysis" in request.raw
    assert '\\"customer_id\\":\\"cus_1\\"' in request.raw
    for pii in ("Ada", "Lovelace", "@example.com"):
        assert pii not in request.raw


async def test_throttling_is_retried_with_backoff(
    bedrock: ConverseServer, open_analyst: Open
) -> None:
    analyst = open_analyst()
    await analyst.open()
    given = _input()
    bedrock.script.extend([throttled(), server_error(), _good(given)])

    answer = await analyst.analyse(given)

    assert answer.usage.input_tokens == 1234
    assert len(bedrock.requests) == 3
    assert (analyst.attempts, analyst.retries) == (3, 2)


async def test_persistent_throttling_gives_up_after_the_attempts(
    bedrock: ConverseServer, open_analyst: Open
) -> None:
    analyst = open_analyst("attempts=3")
    await analyst.open()
    bedrock.script.extend([throttled()] * 5)

    with pytest.raises(AnalystError) as caught:
        await analyst.analyse(_input())

    assert caught.value.reason == "THROTTLED"
    assert len(bedrock.requests) == 3


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (lambda a: tool_answer({**a, "actions": a["actions"][:2]}), "INVALID_OUTPUT"),
        (
            lambda a: tool_answer({**a, "consumption": {**a["consumption"], "due": ["NOPE"]}}),
            "INVALID_OUTPUT",
        ),
        (lambda a: tool_answer("not an object"), "INVALID_OUTPUT"),
        (lambda a: tool_answer(a, stop="max_tokens"), "TRUNCATED"),
        (lambda a: tool_answer(a, stop="guardrail_intervened"), "INVALID_OUTPUT"),
    ],
)
async def test_a_malformed_or_truncated_answer_is_rejected_and_still_costed(
    bedrock: ConverseServer, open_analyst: Open, reply, reason: str
) -> None:
    analyst = open_analyst()
    await analyst.open()
    given = _input()
    bedrock.script.append(reply(body_to_answer(LocalAnalyst().answer(given))))

    with pytest.raises(AnalystError) as caught:
        await analyst.analyse(given)

    assert caught.value.reason == reason
    assert caught.value.usage is not None
    assert caught.value.usage.cost_usd == Decimal("0.00070975")
    assert len(bedrock.requests) == 1


async def test_a_slow_answer_times_out(bedrock: ConverseServer, open_analyst: Open) -> None:
    analyst = open_analyst("timeout=1")
    await analyst.open()
    given = _input()
    slow = _good(given)
    bedrock.script.append(Reply(slow.status, slow.body, slow.headers, delay=2.5))

    started = time.perf_counter()
    with pytest.raises(AnalystError) as caught:
        await analyst.analyse(given)

    assert caught.value.reason == "TIMEOUT"
    assert time.perf_counter() - started < 2.0


async def test_concurrent_calls_are_capped(bedrock: ConverseServer, open_analyst: Open) -> None:
    analyst = open_analyst("concurrency=2&timeout=10")
    await analyst.open()
    given = _input()
    good = _good(given)
    bedrock.script.extend([Reply(good.status, good.body, delay=0.2)] * 6)

    answers = await asyncio.gather(*(analyst.analyse(given) for _ in range(6)))

    assert len(answers) == 6
    assert len(bedrock.requests) == 6
    assert bedrock.peak_in_flight == 2


async def test_the_service_falls_back_to_the_local_analyst_and_records_the_cost(
    bedrock: ConverseServer, open_analyst: Open, tmp_path: Path
) -> None:
    analyst = open_analyst()
    await analyst.open()
    bedrock.script.append(tool_answer({"summary": "incomplete"}))

    async with open_world(tmp_path, analyst) as world:
        result = await world.service.analyse("cus_2")
        assert result.model == LOCAL_MODEL
        assert result.fallback_reason == "INVALID_OUTPUT"
        assert world.service.fallbacks["INVALID_OUTPUT"] == 1
        failed, answered = world.usage.records
        assert (failed.model, failed.success, failed.cost_usd) == (
            HAIKU,
            False,
            Decimal("0.00070975"),
        )
        assert (answered.model, answered.fallback) == (LOCAL_MODEL, True)

        given = await world.service.input_for("cus_1")
        bedrock.script.append(_good(given))
        good = await world.service.analyse("cus_1")
        assert (good.model, good.fallback_reason) == (HAIKU, None)
        summary = await world.service.usage_summary()
        assert dict(summary.by_model)[HAIKU].cost_usd == Decimal("0.00070975") * 2

    for request in bedrock.requests:
        for pii in ("Ada", "Lovelace", "@example.com"):
            assert pii not in request.raw
