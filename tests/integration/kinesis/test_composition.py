"""The composition root with a Kinesis event log: a SQLite store's outbox reaches the stream
through the relay that ``omnix serve`` runs, and a named consumer reads it back; the worker
command refuses the embedded log."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.kinesis.resources import provision
from schema.app import open_container
from schema.cli import main
from schema.settings import Settings

from .conftest import consume, stream_url


async def test_a_sqlite_store_relays_its_outbox_to_kinesis(
    aws_env: dict[str, str], stream_name: str, tmp_path: Path
) -> None:
    url = stream_url(stream_name)
    await provision(url)
    settings = Settings(data_dir=tmp_path, events_url=url)

    async with open_container(settings) as container:
        assert container.relay is None
        assert container.outbox_relay is not None
        assert container.event_stream is not None
        customer = await container.customers.register(
            name="Ada", email="ada@example.com", consent=None, idempotency_key=None
        )
        assert await container.outbox_relay.relay_once() == 1
        assert await container.outbox_relay.relay_once() == 0
        received = await consume(container.event_stream("test"), 1)
        for check in container.health:
            await check.ping()

    assert [(e.type, e.customer_id) for e in received] == [("CustomerRegistered", customer.id)]
    assert "name" not in received[0].payload
    assert "email" not in received[0].payload


async def test_a_missing_stream_stops_the_container_from_opening(
    aws_env: dict[str, str], stream_name: str, tmp_path: Path
) -> None:
    from domain.errors import StoreUnavailableError

    with pytest.raises(StoreUnavailableError, match="omnix init"):
        async with open_container(Settings(data_dir=tmp_path, events_url=stream_url(stream_name))):
            pass


def test_the_worker_refuses_the_embedded_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OMNIX_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("OMNIX_EVENTS", raising=False)

    assert main(["worker"]) == 2
    assert "processed inside omnix serve" in capsys.readouterr().err
