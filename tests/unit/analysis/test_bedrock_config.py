from decimal import Decimal

import pytest

from adapters.bedrock.config import (
    BedrockSettings,
    ModelPrice,
    base_model,
    parse_bedrock_url,
    parse_price_table,
    price_for,
)
from adapters.bedrock.prompts import CUSTOMER_ANALYSIS, load_prompt
from domain.analysis import body_to_answer, build_input
from domain.errors import ValidationError
from domain.services.local_analyst import LocalAnalyst
from tests.unit.analysis.fakes import NOW, PRODUCTS, customer, predictions, purchases


def test_url_with_defaults_and_options() -> None:
    assert parse_bedrock_url("bedrock://anthropic.claude-3-haiku-20240307-v1:0") == BedrockSettings(
        "anthropic.claude-3-haiku-20240307-v1:0"
    )
    arn = "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.anthropic.claude-3-haiku-20240307-v1:0"
    s = parse_bedrock_url(
        f"bedrock://{arn}?region=eu-west-1&timeout=5&concurrency=8&max_tokens=2048&attempts=2"
    )
    assert s == BedrockSettings(arn, "eu-west-1", 5.0, 8, 2048, 2)


@pytest.mark.parametrize(
    "url",
    [
        "bedrock://",
        "bedrock://a b",
        "local://x",
        "bedrock://m.x?timeout=0",
        "bedrock://m.x?timeout=abc",
        "bedrock://m.x?max_tokens=10",
        "bedrock://m.x?concurrency=0",
        "bedrock://m.x?bogus=1",
    ],
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_bedrock_url(url)
    assert caught.value.field == "OMNIX_ANALYST"


def test_prices_by_model_profile_and_override() -> None:
    haiku = price_for("anthropic.claude-3-haiku-20240307-v1:0", {})
    assert haiku == ModelPrice(Decimal("0.25"), Decimal("1.25"))
    assert price_for("us.anthropic.claude-3-haiku-20240307-v1:0", {}) == haiku
    assert (
        base_model("arn:aws:bedrock:us-east-1:1:inference-profile/global.anthropic.x-v1:0")
        == "anthropic.x-v1:0"
    )
    table = parse_price_table(
        " custom.model-v1:0=1.5/7 , anthropic.claude-3-haiku-20240307-v1:0=0.3/1.5"
    )
    assert price_for("custom.model-v1:0", table) == ModelPrice(Decimal("1.5"), Decimal(7))
    assert price_for("anthropic.claude-3-haiku-20240307-v1:0", table).input_per_mtok == Decimal(
        "0.3"
    )
    with pytest.raises(ValidationError, match="OMNIX_AI_PRICES"):
        price_for("unknown.model-v1:0", table)
    assert parse_price_table("") == {}


@pytest.mark.parametrize("text", ["m=1", "=1/2", "m=a/b", "m=-1/2", "m=1/NaN", "m=1/5000"])
def test_bad_price_tables_are_refused(text: str) -> None:
    with pytest.raises(ValidationError):
        parse_price_table(text)


def test_the_prompt_loads_and_its_schema_matches_the_answer_shape() -> None:
    prompt = load_prompt()
    assert prompt.version == CUSTOMER_ANALYSIS
    assert "{input_json}" not in prompt.user("{}")
    given = build_input(customer(profiling=True), purchases(), predictions(), PRODUCTS, as_of=NOW)
    answer = body_to_answer(LocalAnalyst().answer(given))
    schema = prompt.schema
    assert set(schema["required"]) == set(answer) == set(schema["properties"])
    for part in ("consumption", "churn"):
        assert set(schema["properties"][part]["required"]) == set(answer[part])
    reading = schema["properties"]["socioeconomic"]["anyOf"][1]
    assert set(reading["required"]) == set(answer["socioeconomic"])
    assert set(schema["properties"]["actions"]["items"]["required"]) == set(answer["actions"][0])
