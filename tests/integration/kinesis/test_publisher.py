"""The PutRecords publisher against moto_server: batching limits, partial failures (injected by
wrapping the real aioboto3 client), records too large, and retries running out."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from adapters.kinesis.publisher import KinesisEventLog
from adapters.kinesis.resources import KinesisResources
from domain.errors import EventPublishError, EventTooLargeError
from domain.events import DomainEvent

from .conftest import raw_records


async def _no_sleep(seconds: float) -> None:
    return None


def _events(count: int, *, payload_bytes: int = 0) -> list[DomainEvent]:
    at = datetime(2026, 11, 22, tzinfo=UTC)
    return [
        DomainEvent(
            type="T",
            customer_id=f"cus_{n % 7}",
            occurred_at=at,
            payload={"n": n, "pad": "x" * payload_bytes},
        )
        for n in range(count)
    ]


def _ids(records: list[dict[str, Any]]) -> list[str]:
    return [json.loads(r["Data"])["id"] for r in records]


class PartialFailures:
    """The real client, except that chosen records (by event id) are reported failed without
    being sent, ``times`` times each; other records go to Kinesis as usual."""

    def __init__(self, client: Any, failing: set[str], *, times: int = 1) -> None:
        self._client = client
        self._left = dict.fromkeys(failing, times)
        self.calls: list[list[str]] = []

    async def put_records(
        self, *, StreamName: str, Records: Sequence[dict[str, Any]]
    ) -> dict[str, Any]:
        ids = [json.loads(r["Data"])["id"] for r in Records]
        self.calls.append(ids)
        fail = [self._left.get(i, 0) > 0 for i in ids]
        for event_id, failed in zip(ids, fail, strict=True):
            if failed:
                self._left[event_id] -= 1
        sent = [r for r, failed in zip(Records, fail, strict=True) if not failed]
        real = (
            (await self._client.put_records(StreamName=StreamName, Records=sent))["Records"]
            if sent
            else []
        )
        results, it = [], iter(real)
        for failed in fail:
            results.append(
                {
                    "ErrorCode": "ProvisionedThroughputExceededException",
                    "ErrorMessage": "Rate exceeded",
                }
                if failed
                else next(it)
            )
        return {"FailedRecordCount": sum(fail), "Records": results}


async def test_records_go_out_in_calls_of_at_most_500(kinesis: KinesisResources) -> None:
    events = _events(1203)

    await kinesis.publisher.append(events)

    assert kinesis.publisher.stats.calls == 3
    assert kinesis.publisher.stats.mean_batch_fill == pytest.approx(1203 / 3)
    assert sorted(_ids(await raw_records(kinesis))) == sorted(e.id for e in events)


async def test_calls_stay_under_5_mib(kinesis: KinesisResources) -> None:
    events = _events(12, payload_bytes=600_000)
    wrapped = PartialFailures(kinesis.kinesis, set())
    publisher = KinesisEventLog(wrapped, kinesis.settings.stream)

    await publisher.append(events)

    assert [len(call) for call in wrapped.calls] == [8, 4]
    assert sorted(_ids(await raw_records(kinesis))) == sorted(e.id for e in events)


async def test_records_keyed_by_customer_id(kinesis: KinesisResources) -> None:
    events = _events(10)
    await kinesis.publisher.append(events)

    records = await raw_records(kinesis)
    by_id = {e.id: e for e in events}
    assert all(r["PartitionKey"] == by_id[json.loads(r["Data"])["id"]].customer_id for r in records)


async def test_only_the_failed_records_are_sent_again_and_none_is_lost(
    kinesis: KinesisResources,
) -> None:
    events = _events(20)
    failing = {events[3].id, events[4].id, events[17].id}
    wrapped = PartialFailures(kinesis.kinesis, failing, times=2)
    publisher = KinesisEventLog(wrapped, kinesis.settings.stream, sleep=_no_sleep)

    await publisher.append(events)

    assert [len(call) for call in wrapped.calls] == [20, 3, 3]
    assert set(wrapped.calls[1]) == set(wrapped.calls[2]) == failing
    assert publisher.stats.retried_records == 6
    ids = _ids(await raw_records(kinesis))
    assert sorted(ids) == sorted(e.id for e in events)  # each exactly once


async def test_records_still_failing_after_the_last_attempt_are_surfaced(
    kinesis: KinesisResources,
) -> None:
    events = _events(6)
    failing = {events[0].id, events[5].id}
    wrapped = PartialFailures(kinesis.kinesis, failing, times=100)
    publisher = KinesisEventLog(wrapped, kinesis.settings.stream, max_attempts=3, sleep=_no_sleep)

    with pytest.raises(EventPublishError) as raised:
        await publisher.append(events)

    assert set(raised.value.failed_ids) == failing
    assert set(raised.value.published_ids) == {e.id for e in events} - failing
    assert len(wrapped.calls) == 3
    assert sorted(_ids(await raw_records(kinesis))) == sorted(raised.value.published_ids)


async def test_a_throttled_call_is_sent_again_whole(kinesis: KinesisResources) -> None:
    class ThrottledOnce:
        def __init__(self, client: Any) -> None:
            self.client, self.calls = client, 0

        async def put_records(self, **kwargs: Any) -> dict[str, Any]:
            self.calls += 1
            if self.calls == 1:
                raise ClientError(
                    {
                        "Error": {
                            "Code": "ProvisionedThroughputExceededException",
                            "Message": "slow down",
                        }
                    },
                    "PutRecords",
                )
            result: dict[str, Any] = await self.client.put_records(**kwargs)
            return result

    events = _events(5)
    publisher = KinesisEventLog(
        ThrottledOnce(kinesis.kinesis), kinesis.settings.stream, sleep=_no_sleep
    )

    await publisher.append(events)

    assert sorted(_ids(await raw_records(kinesis))) == sorted(e.id for e in events)


async def test_a_missing_stream_is_not_retried(kinesis: KinesisResources) -> None:
    publisher = KinesisEventLog(kinesis.kinesis, "omnix-no-such-stream", sleep=_no_sleep)

    with pytest.raises(EventPublishError) as raised:
        await publisher.append(_events(2))

    assert "ResourceNotFoundException" in raised.value.message
    assert raised.value.published_ids == ()


async def test_an_event_over_1_mib_is_refused_and_nothing_is_sent(
    kinesis: KinesisResources,
) -> None:
    events = _events(3)
    huge = _events(1, payload_bytes=1024 * 1024)[0]

    with pytest.raises(EventTooLargeError) as raised:
        await kinesis.publisher.append([*events, huge])

    assert raised.value.event_ids == (huge.id,)
    assert raised.value.code == "EVENT_TOO_LARGE"
    assert await raw_records(kinesis) == []
