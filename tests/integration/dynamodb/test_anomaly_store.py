"""The AnomalyStore and InsightStore contract on DynamoDB (moto), and what only this store has
to show: a writer that lost the race for the counter is cancelled and numbers again (positions
stay dense and in commit order), a replay pages across the ordered partitions, and large
batches split into transactions. (moto applies concurrent transactions without isolation, so
the race is staged rather than left to threads.)"""

from __future__ import annotations

import pytest

from adapters.dynamodb import anomalies as module
from adapters.dynamodb.anomalies import DynamoAnomalyStore, DynamoInsightStore
from adapters.dynamodb.client import DynamoClient
from adapters.dynamodb.outbox import DynamoOutbox
from domain.events import ANOMALY_DETECTED, DomainEvent
from tests.contracts.anomaly_store import *  # noqa: F403
from tests.contracts.anomaly_store import WrittenEvents, anomaly, insight


@pytest.fixture
def anomaly_store(dynamo: DynamoClient) -> DynamoAnomalyStore:
    return DynamoAnomalyStore(dynamo)


@pytest.fixture
def insight_store(dynamo: DynamoClient) -> DynamoInsightStore:
    return DynamoInsightStore(dynamo)


@pytest.fixture
def written_events(dynamo: DynamoClient) -> WrittenEvents:
    async def read() -> list[DomainEvent]:
        return await DynamoOutbox(dynamo).pending(limit=10_000)

    return read


async def test_a_writer_that_lost_the_race_for_the_counter_numbers_again(
    dynamo: DynamoClient, written_events: WrittenEvents, monkeypatch: pytest.MonkeyPatch
) -> None:
    late, quick = DynamoAnomalyStore(dynamo), DynamoAnomalyStore(dynamo)
    read_head = late._sequence.head
    reads = 0

    async def head_then_lose_the_race() -> int:
        nonlocal reads
        reads += 1
        head = await read_head()
        if reads == 1:  # another writer commits between this read and the transaction
            await quick.record([anomaly("quick-1"), anomaly("quick-2")])
        return head

    monkeypatch.setattr(late._sequence, "head", head_then_lose_the_race)

    stored = await late.record([anomaly("late-1"), anomaly("late-2")])

    assert reads == 2
    assert [a.position for a in stored] == [3, 4]
    replay = await quick.after(0, limit=10)
    assert [(a.dedup_key, a.position) for a in replay] == [
        ("quick-1", 1), ("quick-2", 2), ("late-1", 3), ("late-2", 4),
    ]  # fmt: skip
    events = [e for e in await written_events() if e.type == ANOMALY_DETECTED]
    assert len(events) == 4


async def test_replay_and_recent_page_across_ordered_partitions(
    dynamo: DynamoClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(module, "BLOCK", 4)
    monkeypatch.setattr(module, "ANOMALIES_PER_WRITE", 3)  # 10 anomalies: 4 transactions
    store = DynamoAnomalyStore(dynamo)

    stored = await store.record([anomaly(f"p{i}", minutes=i) for i in range(10)])

    assert [a.position for a in stored] == list(range(1, 11))
    assert [a.dedup_key for a in await store.after(2, limit=5)] == [f"p{i}" for i in range(2, 7)]
    assert [a.position for a in await store.after(0, limit=100)] == list(range(1, 11))
    seen: list[str] = []
    cursor = None
    while True:
        page = await store.recent(first=3, after=cursor, min_severity=None, since=None)
        seen += [a.dedup_key for a in page.items]
        if not page.has_next_page:
            break
        cursor = page.end_cursor
    assert seen == [f"p{i}" for i in reversed(range(10))]


async def test_a_batch_repeated_after_a_partial_write_completes_it(
    dynamo: DynamoClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(module, "ANOMALIES_PER_WRITE", 2)
    store = DynamoAnomalyStore(dynamo)
    batch = [anomaly(f"r{i}") for i in range(5)]
    await store.record(batch[:2])  # what a crash after the first transaction leaves

    again = await store.record(batch, state=("sales_rate", '{"v":3}'))

    assert [a.position for a in again] == [1, 2, 3, 4, 5]
    assert await store.load_state("sales_rate") == '{"v":3}'
    assert len(await store.after(0, limit=100)) == 5


async def test_insights_of_many_anomalies_split_into_transactions(
    dynamo: DynamoClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(module, "INSIGHTS_PER_WRITE", 2)
    anomalies = DynamoAnomalyStore(dynamo)
    insights = DynamoInsightStore(dynamo)
    found = await anomalies.record([anomaly(f"i{i}") for i in range(5)])

    stored = await insights.record([insight(a) for a in found])

    assert [i.position for i in stored] == [1, 2, 3, 4, 5]
    assert [i.id for i in await insights.after(1, limit=3)] == [i.id for i in stored[1:4]]
    page = await insights.for_customer("cus_1", first=10, after=None)
    assert [i.position for i in page.items] == [5, 4, 3, 2, 1]
