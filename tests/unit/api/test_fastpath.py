"""The compiled query path answers exactly as strawberry's executor does."""

from datetime import timedelta
from typing import Any

import pytest

from domain.access import DEV_ADMIN, Principal, Role
from domain.events import purchase_recorded
from domain.purchases import Purchase, PurchaseLine
from schema.app import Container
from schema.context import Context, Services
from schema.errors_policy import present_error
from schema.schema import OmnixSchema, build_schema
from subscriptions.hub import SubscriptionHub
from tests.unit.conftest import NOW

QUERIES: list[tuple[str, dict[str, Any] | None]] = [
    ("{ customers(first: 3) { nodes { id name email createdAt consent { analytics } } pageInfo { endCursor hasNextPage } } }", None),
    ("query Q($id: ID!) { customer(id: $id) { id householdSize purchases(first: 2) { nodes { id total purchasedAt recordedAt storeId lines { sku quantity unitPrice discount amount product { sku name priceTier packSize tags price } } customer { id } } pageInfo { hasNextPage endCursor } } } }", {"id": "cus_1"}),
    ("query { a: customer(id: \"cus_1\") { ...C } b: customer(id: \"cus_2\") { ... on Customer { id __typename } } missing: customer(id: \"cus_404\") { id } }  fragment C on Customer { id purchases { nodes { __typename total } } }", None),
    ("{ products(first: 2, category: \"Dairy\") { nodes { sku name brand } pageInfo { hasNextPage } } p: product(sku: \"NOPE\") { sku } }", None),
    ("{ customer(id: \"cus_1\") { purchases(first: 0) { nodes { id } } } }", None),
    ("{ customers(first: 1000) { nodes { id } } }", None),
    ("{ customer(id: \"cus_1\") { purchases(after: \"garbage\") { nodes { id } } } }", None),
    ("query Q($first: Int!) { customers(first: $first) { nodes { id } } }", {"first": 2}),
    ("query Q($first: Int!) { customers(first: $first) { nodes { id } } }", {"first": "two"}),
    ("{ customer(id: \"not an id!\") { id } }", None),
]  # fmt: skip


@pytest.fixture
async def seeded(container: Container) -> Container:
    purchases = [
        Purchase(
            id=f"pur_{i}",
            customer_id="cus_1",
            purchased_at=NOW - timedelta(days=i),
            lines=(PurchaseLine("MILK-1L", 2, 119), PurchaseLine("COFFEE-P", 1, 899, 100)),
            store_id="store-1" if i % 2 else None,
            recorded_at=NOW,
        )
        for i in range(4)
    ]
    await container.purchase_store.add_many(purchases, [purchase_recorded(p) for p in purchases])
    return container


def context(container: Container, principal: Principal) -> Context:
    services = Services(
        container.customers,
        container.purchases,
        container.catalogue,
        SubscriptionHub(container.bus),
    )
    return Context(services=services, principal=principal, request_id="req-1")


async def via_strawberry(schema: OmnixSchema, query: str, variables: Any, ctx: Context) -> Any:
    result = await schema.execute(query, variable_values=variables, context_value=ctx)
    return result.data, [e.formatted for e in result.errors or []]


async def via_fast_path(schema: OmnixSchema, query: str, variables: Any, ctx: Context) -> Any:
    prepared = schema.fast_path.prepare(query, None)
    assert prepared.errors is None
    assert prepared.plan is not None, "query should compile"
    data, errors = await schema.fast_path.execute(prepared, variables, ctx)
    return data, [present_error(e, ctx.request_id).formatted for e in errors]


@pytest.mark.parametrize(("query", "variables"), QUERIES)
@pytest.mark.parametrize(
    "principal",
    [
        DEV_ADMIN,
        Principal("cus_1", frozenset({Role.CUSTOMER}), "cus_1"),
        Principal("a", frozenset({Role.ANALYST})),
    ],
    ids=["admin", "customer", "analyst"],
)
async def test_both_paths_agree(
    seeded: Container, principal: Principal, query: str, variables: Any
) -> None:
    schema = build_schema()
    expected = await via_strawberry(schema, query, variables, context(seeded, principal))
    actual = await via_fast_path(schema, query, variables, context(seeded, principal))
    assert actual == expected


@pytest.mark.parametrize(
    "query",
    [
        'mutation { setConsent(customerId: "cus_1", input: {}) { __typename } }',
        "{ __schema { types { name } } }",
        '{ customer(id: "cus_1") { id @include(if: true) } }',
    ],
)
def test_what_the_plan_cannot_express_falls_back(query: str) -> None:
    prepared = build_schema().fast_path.prepare(query, None)
    assert prepared.errors is None
    assert prepared.plan is None


def test_documents_that_do_not_validate_are_request_errors() -> None:
    schema = build_schema(max_depth=3)
    assert schema.fast_path.prepare("{ nope }", None).errors
    assert schema.fast_path.prepare("{ customer(id: ", None).errors
    deep = "{ customers { nodes { purchases { nodes { lines { product { name } } } } } } }"
    assert schema.fast_path.prepare(deep, None).errors


class BrokenPages:
    """Purchase pages whose data breaks the schema's non-null promises, as a faulty adapter
    might: the error must surface and the null must travel to the nearest nullable field."""

    def __init__(self, lines: tuple[Any, ...]) -> None:
        self._lines = lines

    async def pages_for_customers(self, requests: Any) -> Any:
        from domain.pagination import Page

        purchase = Purchase(id="pur_bad", customer_id="cus_1", purchased_at=NOW, lines=self._lines)
        return [Page(items=[purchase], end_cursor=None, has_next_page=False) for _ in requests]


BROKEN_LINES = {
    "null-in-non-null-leaf": (PurchaseLine(None, 1, 100), PurchaseLine("MILK-1L", 1, 119)),  # type: ignore[arg-type]
    "null-list-item": (PurchaseLine("MILK-1L", 1, 100), None),
    "unserialisable-int": (PurchaseLine("MILK-1L", "lots", 100),),  # type: ignore[arg-type]
    "int-out-of-range": (PurchaseLine("MILK-1L", 2**31, 100),),
    "null-money": (PurchaseLine("MILK-1L", 1, None),),  # type: ignore[arg-type]
    "float-money": (PurchaseLine("MILK-1L", 1, 1.5),),  # type: ignore[arg-type]
}
# Values a builder must not take for their look-alikes: True and 1.0 equal the cents 1 (and
# hash alike), an int sku is coerced to an ID string; both paths must say the same about them.
ODD_LINES = {
    "bool-money": (PurchaseLine("MILK-1L", 1, 1), PurchaseLine("MILK-1L", 1, True)),
    "int-sku": (PurchaseLine(42, 1, 100),),  # type: ignore[arg-type]
    "bool-quantity": (PurchaseLine("MILK-1L", True, 100),),
}


@pytest.mark.parametrize(
    "lines", [*BROKEN_LINES.values(), *ODD_LINES.values()], ids=[*BROKEN_LINES, *ODD_LINES]
)
@pytest.mark.parametrize(
    "query",
    [
        '{ customer(id: "cus_1") { id purchases { nodes { id lines { sku quantity unitPrice amount } } } } }',
        '{ a: customer(id: "cus_1") { purchases { nodes { lines { sku } total } } } b: product(sku: "MILK-1L") { sku } }',
        '{ customer(id: "cus_1") { purchases { nodes { purchasedAt lines { __typename discount unitPrice } } pageInfo { endCursor hasNextPage } } } }',
    ],
)
async def test_nulls_and_errors_propagate_alike(
    container: Container, lines: tuple[Any, ...], query: str
) -> None:
    services = Services(
        container.customers,
        BrokenPages(lines),  # type: ignore[arg-type]
        container.catalogue,
        SubscriptionHub(container.bus),
    )
    schema = build_schema()
    ctx = Context(services=services, principal=DEV_ADMIN, request_id="r")
    expected = await via_strawberry(schema, query, None, ctx)
    actual = await via_fast_path(schema, query, None, Context(services, DEV_ADMIN, "r"))
    assert actual == expected
    if lines in BROKEN_LINES.values() and "quantity" in query:
        assert expected[1], "the broken data must be reported"
