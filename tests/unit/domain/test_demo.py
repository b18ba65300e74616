from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from statistics import median

import pytest

from domain.demo import DemoData, build_catalogue, generate, seed
from domain.products import PriceTier
from schema.app import Container

AS_OF = datetime(2026, 3, 14, 15, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def demo() -> DemoData:
    return generate(as_of=AS_OF)


def test_the_same_seed_gives_the_same_data_and_another_seed_other_data() -> None:
    first = generate(as_of=AS_OF, n_customers=40, seed=7)
    again = generate(as_of=AS_OF, n_customers=40, seed=7)
    other = generate(as_of=AS_OF, n_customers=40, seed=8)

    assert first.purchases == again.purchases
    assert first.customers == again.customers
    assert first.habits == again.habits
    assert first.purchases != other.purchases
    assert first.products == other.products  # the catalogue does not depend on the seed


def test_the_catalogue_is_a_realistic_grocery_assortment(demo: DemoData) -> None:
    products = demo.products
    categories = Counter(p.category for p in products)

    assert 180 <= len(products) <= 240
    assert len({p.sku for p in products}) == len(products)
    assert len(categories) == 15
    assert {"dairy", "bakery", "produce", "pet", "baby", "wine & beer"} <= set(categories)
    assert min(categories.values()) >= 8
    assert set(Counter(p.price_tier for p in products)) == set(PriceTier)
    assert all(19 <= p.price <= 5_000 and p.pack_size > 0 and p.unit and p.brand for p in products)
    milk = {p.price_tier: p.price for p in products if p.name.lower().endswith("skimmed milk 1 l")}
    assert milk[PriceTier.BUDGET] < milk[PriceTier.STANDARD] < milk[PriceTier.PREMIUM]
    assert any("organic" in p.tags for p in products)
    assert products == tuple(v.product for v in build_catalogue())


def test_sizes_are_of_the_expected_order(demo: DemoData) -> None:
    assert len(demo.customers) == 500
    assert 30_000 <= len(demo.purchases) <= 80_000
    lines_per_basket = sum(len(p.lines) for p in demo.purchases) / len(demo.purchases)
    assert 3 <= lines_per_basket <= 12


def test_baskets_fall_within_the_year_and_never_in_the_future(demo: DemoData) -> None:
    times = [p.purchased_at for p in demo.purchases]

    assert min(times) >= AS_OF - timedelta(days=365)
    assert max(times) < AS_OF
    assert max(times) > AS_OF - timedelta(days=2)
    assert times == sorted(times)
    assert all(t.tzinfo is not None for t in times)


def test_ids_are_deterministic_and_unique(demo: DemoData) -> None:
    assert demo.customers[0].id == "cus_demo_0001"
    assert len({p.id for p in demo.purchases}) == len(demo.purchases)
    assert all(p.id.startswith("pur_demo_") for p in demo.purchases)


def test_lines_are_valid_and_some_are_discounted(demo: DemoData) -> None:
    skus = {p.sku for p in demo.products}
    lines = [ln for p in demo.purchases for ln in p.lines]

    assert all(ln.sku in skus and ln.quantity >= 1 for ln in lines)
    assert all(0 <= ln.discount <= ln.quantity * ln.unit_price for ln in lines)
    assert 0.03 <= sum(ln.discount > 0 for ln in lines) / len(lines) <= 0.3
    assert all(len({ln.sku for ln in p.lines}) == len(p.lines) for p in demo.purchases)


def test_customers_have_unique_plausible_emails_and_realistic_consent(demo: DemoData) -> None:
    customers = demo.customers
    emails = [c.email for c in customers]

    assert len(set(emails)) == len(customers)
    assert all(e and e == e.lower() and "@" in e and e.isascii() for e in emails)
    assert all(c.name and " " in c.name for c in customers)
    assert all(c.created_at < AS_OF for c in customers)
    share = {
        flag: sum(getattr(c.consent, flag) for c in customers) / len(customers)
        for flag in ("analytics", "ai_profiling", "marketing")
    }
    assert share["analytics"] > 0.8
    assert share["ai_profiling"] < share["analytics"]
    assert share["marketing"] < share["analytics"]
    assert {c.household_size for c in customers} == set(range(1, 7))


def test_observed_intervals_follow_the_true_cycles(demo: DemoData) -> None:
    """The ground truth is what the data shows: staples recur at their true mean interval."""
    bought: dict[tuple[str, str], list[float]] = defaultdict(list)
    for p in demo.purchases:
        for ln in p.lines:
            bought[p.customer_id, ln.sku].append(p.purchased_at.timestamp() / 86_400)
    ratios = []
    for habits in demo.habits.values():
        assert habits.staples, habits.customer_id
        for staple in habits.staples:
            days = bought[habits.customer_id, staple.sku]
            if len(days) >= 8:
                observed = (days[-1] - days[0]) / (len(days) - 1)
                ratios.append(observed / staple.mean_interval_days)
    intervals = [s.mean_interval_days for h in demo.habits.values() for s in h.staples]

    assert len(ratios) > 2_000
    assert 0.95 <= median(ratios) <= 1.05
    assert min(intervals) >= 2
    assert max(intervals) <= 70
    assert 4 <= median(intervals) <= 14


def test_some_customers_lapse_and_some_join_late(demo: DemoData) -> None:
    last: dict[str, datetime] = {}
    first: dict[str, datetime] = {}
    for p in demo.purchases:
        first.setdefault(p.customer_id, p.purchased_at)
        last[p.customer_id] = p.purchased_at
    lapsed = [h for h in demo.habits.values() if h.lapsed_at is not None]
    late = [h for h in demo.habits.values() if h.active_from > AS_OF - timedelta(days=365)]

    assert 0.05 <= len(lapsed) / len(demo.habits) <= 0.2
    for h in lapsed:
        assert h.lapsed_at is not None
        assert last.get(h.customer_id, h.lapsed_at) <= h.lapsed_at
    assert 0.05 <= len(late) / len(demo.habits) <= 0.2
    assert all(first[h.customer_id] >= h.active_from for h in late if h.customer_id in first)


def test_affluent_customers_buy_more_premium(demo: DemoData) -> None:
    tier = {p.sku: p.price_tier for p in demo.products}
    premium: dict[str, list[bool]] = defaultdict(list)
    for p in demo.purchases:
        premium[p.customer_id].extend(tier[ln.sku] is PriceTier.PREMIUM for ln in p.lines)
    by_affluence = sorted(demo.habits.values(), key=lambda h: h.affluence)
    share = [
        sum(premium[h.customer_id]) / max(len(premium[h.customer_id]), 1) for h in by_affluence
    ]

    assert median(share[-100:]) > 2 * median(share[:100])


def test_as_of_must_carry_a_zone() -> None:
    with pytest.raises(ValueError, match="timezone"):
        generate(as_of=AS_OF.replace(tzinfo=None))


async def test_seeding_twice_adds_nothing_the_second_time(container: Container) -> None:
    stores = (container.customer_store, container.product_store, container.purchase_store)
    progress: list[tuple[int, int]] = []

    def on_progress(done: int, total: int) -> None:
        progress.append((done, total))

    first = await seed(*stores, as_of=AS_OF, n_customers=25, on_progress=on_progress)
    head = await container.events.head()
    second = await seed(*stores, as_of=AS_OF, n_customers=25)

    assert first.customers_added == 25
    assert first.purchases_added > 500
    assert progress[-1] == (first.purchases_added, first.purchases_added)
    assert (second.customers_added, second.purchases_added) == (0, 0)
    assert second.purchases_present == first.purchases_added
    assert await container.events.head() == head
    logged = await container.events.read(after=0, limit=10_000)
    purchases = [e.event for e in logged if e.event.type == "PurchaseRecorded"]
    sources = Counter(e.payload["source"] for e in purchases)
    assert sources == {"seed": first.purchases_added}
