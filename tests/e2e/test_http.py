"""GraphQL over HTTP against the running app: the purchase flow, idempotency and the protocol."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from .harness import GRAPHQL_RESPONSE, RunningApp, unique_email

pytestmark = pytest.mark.e2e

CUSTOMER_WITH_PURCHASES = """
query CustomerWithPurchases($id: ID!) {
  customer(id: $id) {
    id
    purchases(first: 10) {
      nodes { id total storeId lines { sku quantity unitPrice discount } }
    }
  }
}
"""


def purchase_ids(app: RunningApp, customer_id: str) -> list[str]:
    data = app.execute(CUSTOMER_WITH_PURCHASES, {"id": customer_id})
    return [p["id"] for p in data["customer"]["purchases"]["nodes"]]


# --- health -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_endpoints_answer_200(app: RunningApp, path: str) -> None:
    response = app.http.get(f"{app.base_url}{path}")

    assert response.status_code == 200, response.text


# --- customers --------------------------------------------------------------------------------


def test_register_customer_returns_the_customer_with_its_consent(app: RunningApp) -> None:
    email = unique_email("Register")
    consent = {"analytics": True, "aiProfiling": False, "marketing": True}

    result = app.register_customer(name="Ada  Lovelace", email=email, consent=consent)

    assert result["__typename"] == "RegisterCustomerSuccess", result
    customer = result["customer"]
    assert customer["id"]
    assert customer["name"] == "Ada Lovelace"
    assert customer["email"] == email.lower()
    assert customer["consent"] == consent


def test_register_customer_with_a_bad_email_is_a_validation_error(app: RunningApp) -> None:
    result = app.register_customer(email="not-an-email")

    assert result["__typename"] == "ValidationError", result
    assert result["code"] == "INVALID_EMAIL"
    assert result["message"]


def test_register_customer_with_a_taken_email_is_a_conflict(app: RunningApp) -> None:
    email = unique_email()
    assert app.register_customer(email=email)["__typename"] == "RegisterCustomerSuccess"

    result = app.register_customer(email=email.upper())

    assert result["__typename"] == "ConflictError", result
    assert result["message"]


def test_register_customer_retried_with_one_idempotency_key_returns_the_same_customer(
    app: RunningApp,
) -> None:
    email = unique_email()
    key = f"e2e-{uuid.uuid4()}"

    first = app.register_customer(email=email, key=key)
    second = app.register_customer(email=email, key=key)

    assert first["__typename"] == "RegisterCustomerSuccess", first
    assert second["__typename"] == "RegisterCustomerSuccess", second
    assert second["customer"]["id"] == first["customer"]["id"]


# --- purchases --------------------------------------------------------------------------------


def test_a_registered_customer_records_a_purchase_and_reads_it_back(
    seeded_app: RunningApp, seeded_sku: str
) -> None:
    customer_id = seeded_app.new_customer()
    line = {"sku": seeded_sku, "quantity": 2, "unitPrice": "3.99", "discount": "0.50"}

    result = seeded_app.record_purchase(customer_id, [line], store_id="store-7")

    assert result["__typename"] == "RecordPurchaseSuccess", result
    purchase = result["purchase"]
    assert purchase["id"]
    assert purchase["total"] == "7.48"
    assert purchase["storeId"] == "store-7"
    assert purchase["lines"] == [line]

    data = seeded_app.execute(CUSTOMER_WITH_PURCHASES, {"id": customer_id})

    assert data["customer"]["id"] == customer_id
    assert data["customer"]["purchases"]["nodes"] == [
        {"id": purchase["id"], "total": "7.48", "storeId": "store-7", "lines": [line]}
    ]


def test_a_line_without_a_price_is_charged_the_catalogue_price(
    seeded_app: RunningApp, seeded_sku: str
) -> None:
    product = seeded_app.execute(
        "query Product($sku: ID!) { product(sku: $sku) { sku price } }", {"sku": seeded_sku}
    )["product"]

    result = seeded_app.record_purchase(
        seeded_app.new_customer(), [{"sku": seeded_sku, "quantity": 1}]
    )

    assert result["__typename"] == "RecordPurchaseSuccess", result
    line = result["purchase"]["lines"][0]
    assert line["unitPrice"] == product["price"]
    assert line["discount"] == "0.00"
    assert result["purchase"]["total"] == product["price"]


def test_record_purchase_retried_with_one_idempotency_key_returns_the_first_purchase(
    seeded_app: RunningApp, seeded_sku: str
) -> None:
    customer_id = seeded_app.new_customer()
    lines = [{"sku": seeded_sku, "quantity": 1, "unitPrice": "1.25"}]
    key = f"e2e-{uuid.uuid4()}"
    purchased_at = datetime.now(UTC) - timedelta(hours=2)

    first = seeded_app.record_purchase(customer_id, lines, purchased_at=purchased_at, key=key)
    retry = seeded_app.record_purchase(customer_id, lines, purchased_at=purchased_at, key=key)

    assert first["__typename"] == "RecordPurchaseSuccess", first
    assert retry["__typename"] == "RecordPurchaseSuccess", retry
    assert retry["purchase"]["id"] == first["purchase"]["id"]
    assert purchase_ids(seeded_app, customer_id) == [first["purchase"]["id"]]


def test_record_purchase_for_an_unknown_customer_is_not_found(
    seeded_app: RunningApp, seeded_sku: str
) -> None:
    result = seeded_app.record_purchase("cus_nobody", [{"sku": seeded_sku, "quantity": 1}])

    assert result["__typename"] == "NotFoundError", result
    assert result["code"] == "NOT_FOUND"
    assert result["field"] == "customerId"


def test_record_purchase_of_an_unknown_sku_is_not_found_and_writes_nothing(
    seeded_app: RunningApp,
) -> None:
    customer_id = seeded_app.new_customer()

    result = seeded_app.record_purchase(customer_id, [{"sku": "no-such-sku", "quantity": 1}])

    assert result["__typename"] == "NotFoundError", result
    assert result["code"] == "NOT_FOUND"
    assert purchase_ids(seeded_app, customer_id) == []


def test_record_purchase_with_an_empty_basket_is_a_validation_error(
    seeded_app: RunningApp,
) -> None:
    result = seeded_app.record_purchase(seeded_app.new_customer(), [])

    assert result["__typename"] == "ValidationError", result
    assert result["code"] == "EMPTY_BASKET"


# --- the GraphQL-over-HTTP protocol -------------------------------------------------------------


def media_type(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


def test_a_query_over_get_is_answered(app: RunningApp) -> None:
    response = app.http.get(
        app.graphql_url,
        params={"query": "query Typename { __typename }"},
        headers={"accept": GRAPHQL_RESPONSE},
    )

    assert response.status_code == 200, response.text
    assert media_type(response.headers["content-type"]) == GRAPHQL_RESPONSE
    assert response.json()["data"] == {"__typename": "Query"}


def test_a_malformed_json_body_is_a_400(app: RunningApp) -> None:
    response = app.http.post(
        app.graphql_url,
        content=b'{"query": "{ __typename }"',
        headers={"content-type": "application/json", "accept": GRAPHQL_RESPONSE},
    )

    assert response.status_code == 400, response.text


def test_a_mutation_over_get_is_a_405_and_writes_nothing(app: RunningApp) -> None:
    email = unique_email("over-get")
    mutation = (
        "mutation OverGet { registerCustomer(input: "
        f'{{name: "Over Get", email: "{email}"}}) {{ __typename }} }}'
    )

    response = app.http.get(
        app.graphql_url, params={"query": mutation}, headers={"accept": GRAPHQL_RESPONSE}
    )

    assert response.status_code == 405, response.text
    # nothing was written: the same registration over POST is not a conflict
    created = app.execute(mutation)
    assert created["registerCustomer"]["__typename"] == "RegisterCustomerSuccess", created


def test_an_unknown_operation_name_is_a_400(app: RunningApp) -> None:
    response = app.post(
        "query First { __typename } query Second { __typename }",
        operation_name="Third",
        headers={"accept": GRAPHQL_RESPONSE},
    )

    assert response.status_code == 400, response.text
    assert media_type(response.headers["content-type"]) == GRAPHQL_RESPONSE
    body = response.json()
    assert body.get("errors"), body
    assert "data" not in body
