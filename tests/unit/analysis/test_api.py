"""Customer.analysis and Query.aiUsage through the schema, on the composition root's container
(the default local:// analyst over SQLite)."""

from pathlib import Path
from typing import Any

import pytest

from domain.access import DEV_ADMIN, Principal, Role
from schema.app import Container, open_container
from schema.context import Context, Services
from schema.schema import build_schema
from schema.settings import Settings, SettingsError
from subscriptions.hub import SubscriptionHub

QUERY = """
query ($id: ID!, $refresh: Boolean!) {
  customer(id: $id) {
    analysis(refresh: $refresh) {
      summary model promptVersion cached fallbackReason costUsd inputTokens confidence
      consumption { regularity staples due }
      socioeconomic { affluence }
      churn { risk reasons }
      actions { title rationale sku }
    }
  }
}
"""
USAGE = "{ aiUsage { total { calls cached costUsd } byModel { model totals { calls } } byDay { day } } }"


async def _run(
    container: Container, principal: Principal, refresh: bool = False, query: str = QUERY
) -> Any:
    assert container.analyst is not None
    services = Services(
        customers=container.customers,
        purchases=container.purchases,
        catalogue=container.catalogue,
        hub=SubscriptionHub(container.bus, queue_size=8),
        predictions=container.predictions,
        analyst=container.analyst,
    )
    return await build_schema().execute(
        query,
        variable_values={"id": "cus_1", "refresh": refresh} if query == QUERY else None,
        context_value=Context(services=services, principal=principal, request_id="t"),
    )


async def test_analysis_and_usage_through_the_schema(container: Container) -> None:
    first = await _run(container, DEV_ADMIN)
    assert first.errors is None
    analysis = first.data["customer"]["analysis"]
    assert analysis["model"] == "omnix-local-statistics"
    assert analysis["cached"] is False
    assert analysis["costUsd"] == "0"
    assert len(analysis["actions"]) == 3
    assert analysis["socioeconomic"] is None
    assert analysis["churn"]["risk"] == "MEDIUM"

    second = await _run(container, DEV_ADMIN)
    assert second.data["customer"]["analysis"]["cached"] is True
    usage = (await _run(container, DEV_ADMIN, query=USAGE)).data["aiUsage"]
    assert usage["total"] == {"calls": 2, "cached": 1, "costUsd": "0"}
    assert usage["byModel"] == [{"model": "omnix-local-statistics", "totals": {"calls": 2}}]
    assert len(usage["byDay"]) == 1


async def test_customers_and_services_cannot_refresh_or_read_usage(container: Container) -> None:
    own = Principal(subject="cus_1", roles=frozenset({Role.CUSTOMER}), customer_id="cus_1")
    result = await _run(container, own)
    codes = {e.extensions["code"] for e in result.errors}
    assert codes == {"FORBIDDEN"}
    service = Principal(subject="svc", roles=frozenset({Role.SERVICE}))
    assert (await _run(container, service)).errors is None
    refreshed = await _run(container, service, refresh=True)
    assert [(e.path, e.extensions["code"]) for e in refreshed.errors] == [
        (["customer", "analysis"], "FORBIDDEN")
    ]
    usage = await _run(container, service, query=USAGE)
    assert [e.extensions["code"] for e in usage.errors] == ["FORBIDDEN"]


@pytest.mark.parametrize(
    ("url", "prices", "message"),
    [
        ("ftp://x", "", "OMNIX_ANALYST"),
        ("bedrock://vendor.unknown-model-v1:0", "", "OMNIX_AI_PRICES"),
        ("bedrock://anthropic.claude-3-haiku-20240307-v1:0?timeout=0", "", "OMNIX_ANALYST"),
        ("bedrock://anthropic.claude-3-haiku-20240307-v1:0", "haiku=1", "OMNIX_AI_PRICES"),
    ],
)
async def test_a_bad_analyst_configuration_refuses_to_start(
    tmp_path: Path, url: str, prices: str, message: str
) -> None:
    settings = Settings(data_dir=tmp_path, env="test", analyst_url=url, ai_prices=prices)
    with pytest.raises(SettingsError, match=message):
        async with open_container(settings):
            pass


def test_analysis_settings_from_the_environment() -> None:
    settings = Settings.from_env({"OMNIX_ANALYSIS_TTL": "600", "OMNIX_AI_PRICES": "a.b-v1:0=1/2"})
    assert (settings.analysis_ttl_seconds, settings.ai_prices) == (600.0, "a.b-v1:0=1/2")
    with pytest.raises(SettingsError, match="OMNIX_ANALYSIS_TTL"):
        Settings.from_env({"OMNIX_ANALYSIS_TTL": "0"})
