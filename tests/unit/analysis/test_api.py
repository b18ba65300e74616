"""Customer.analysis and Query.aiUsage through the schema, on the composition root's container
(the default local:// analyst over SQLite)."""

from typing import Any

from domain.access import DEV_ADMIN, Principal, Role
from schema.app import Container
from schema.context import Context, Services
from schema.schema import build_schema
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
