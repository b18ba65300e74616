"""The whole app on the AWS path: OMNIX_STORE=dynamodb://, OMNIX_EVENTS=kinesis:// and
OMNIX_BUS=redis:// against a private moto_server and redis-server, with ``omnix serve`` (which
relays the store's outbox to Kinesis) and ``omnix worker`` (which reads Kinesis and publishes to
Redis) as separate processes. A purchase recorded over HTTP is read back, reaches a graphql-ws
subscriber, and is found in the DynamoDB table and in the Kinesis stream; purchases update
their customer's consumption cycles and forecast (the worker's prediction update); the worker
stops cleanly on SIGTERM with its checkpoints saved."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.servers import ServerProcess, aws_environment, moto_server, redis_server

from .harness import (
    REPO_ROOT,
    NodeRunner,
    RunningApp,
    app_environment,
    log_tail,
    omnix_command,
    serve,
)
from .test_subscriptions import record_until_received, subscribe

pytestmark = pytest.mark.e2e

REGION = "eu-west-1"
PRODUCTS = (
    "sku,name,category,brand,price_tier,pack_size,unit,price\n"
    "AWS-MILK-1,Whole milk 1 l,Dairy,Dairyland,standard,1,l,1.19\n"
)


@dataclass
class AwsStack:
    app: RunningApp
    worker: subprocess.Popen[bytes]
    worker_log: Path
    env: dict[str, str]
    stream: str
    prefix: str

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=self.env["AWS_ENDPOINT_URL"],
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


def _run(command: list[str], env: dict[str, str], data_dir: Path) -> str:
    done = subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=app_environment(data_dir, **env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(
            f"{' '.join(command)} exited with {done.returncode}\n--- stdout ---\n{done.stdout}\n"
            f"--- stderr ---\n{done.stderr}",
            pytrace=False,
        )
    return done.stdout


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[ServerProcess, ServerProcess]]:
    with moto_server() as moto, redis_server() as redis:
        yield moto, redis


@pytest.fixture(scope="module")
def stack(
    servers: tuple[ServerProcess, ServerProcess], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AwsStack]:
    moto, redis = servers
    root = tmp_path_factory.mktemp("aws-stack")
    tag = uuid.uuid4().hex[:8]
    stream, prefix = f"omnix-e2e-{tag}", f"e2e-{tag}-"
    env = {
        **aws_environment(moto.url),
        "OMNIX_STORE": f"dynamodb://?region={REGION}&prefix={prefix}",
        "OMNIX_EVENTS": f"kinesis://{stream}?region={REGION}&shards=2",
        "OMNIX_BUS": f"redis://127.0.0.1:{redis.port}/0",
    }
    data_dir = root / "data"
    _run(omnix_command("init"), env, data_dir)
    products = root / "products.csv"
    products.write_text(PRODUCTS)
    _run(omnix_command("import", "--products", str(products)), env, data_dir)

    worker_log = root / "worker.log"
    with worker_log.open("ab") as out:
        worker = subprocess.Popen(
            omnix_command("worker"),
            cwd=REPO_ROOT,
            env=app_environment(data_dir, **env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        for app in serve(data_dir, root / "server.log", **env):
            yield AwsStack(app, worker, worker_log, env, stream, prefix)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


def _stream_events(stack: AwsStack) -> list[dict[str, Any]]:
    kinesis = stack.client("kinesis")
    events: list[dict[str, Any]] = []
    for shard in kinesis.list_shards(StreamName=stack.stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=stack.stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        page = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
        events.extend(json.loads(record["Data"]) for record in page["Records"])
    return events


def _table_items(stack: AwsStack, table: str) -> list[dict[str, Any]]:
    dynamodb = stack.client("dynamodb")
    items: list[dict[str, Any]] = []
    for page in dynamodb.get_paginator("scan").paginate(TableName=f"{stack.prefix}{table}"):
        items.extend(page["Items"])
    return items


def test_a_purchase_flows_through_dynamodb_kinesis_and_redis(
    stack: AwsStack, node: NodeRunner
) -> None:
    app = stack.app
    customer_id = app.new_customer()
    line = {"sku": "AWS-MILK-1", "quantity": 2}
    subscriber = subscribe(node, app, customer_id)

    def record() -> str:
        result = app.record_purchase(customer_id, [line])
        assert result["__typename"] == "RecordPurchaseSuccess", result
        return str(result["purchase"]["id"])

    try:
        message, recorded = record_until_received(app, subscriber, record)
    except BaseException:
        print(f"--- worker log ---\n{log_tail(stack.worker_log)}")
        raise
    event = message["data"]["purchaseRecorded"]
    assert event["id"] in recorded
    assert event["total"] == "2.38"
    assert subscriber.wait() == []

    read_back = app.execute(
        "query($id: ID!) { customer(id: $id) { purchases(first: 10) { nodes { id total } } } }",
        {"id": customer_id},
    )["customer"]["purchases"]["nodes"]
    assert {p["id"] for p in read_back} == recorded

    items = json.dumps(_table_items(stack, "main"))
    assert all(purchase_id in items for purchase_id in recorded)

    published = [
        e
        for e in _stream_events(stack)
        if e["type"] == "PurchaseRecorded" and e["customerId"] == customer_id
    ]
    assert {e["payload"]["purchase"]["id"] for e in published} == recorded

    status = app.http.get(f"{app.base_url}/statusz").json()
    assert status["relay"] is None
    assert status["outbox"]["failures"] == 0
    assert status["outbox"]["putRecords"]["calls"] >= 1


CONSUMPTION = """
query($id: ID!) {
  customer(id: $id) {
    consumption(first: 10) { sku purchases }
    forecast { pAlive }
  }
}
"""


def test_purchases_over_http_update_the_customers_forecast_in_the_worker(
    stack: AwsStack,
) -> None:
    app = stack.app
    now = datetime.now(UTC).replace(microsecond=0)
    customers = [app.new_customer(), app.new_customer()]  # the models need two customers
    for n, customer_id in enumerate(customers):
        for days, quantity in zip((40, 30, 20, 10), (1, 3, 2, 1), strict=True):
            result = app.record_purchase(
                customer_id,
                [{"sku": "AWS-MILK-1", "quantity": quantity + n}],
                purchased_at=now - timedelta(days=days + n),
            )
            assert result["__typename"] == "RecordPurchaseSuccess", result

    deadline = time.monotonic() + 60
    while True:
        customer = app.execute(CONSUMPTION, {"id": customers[0]})["customer"]
        if customer["consumption"] and customer["forecast"]:
            break
        if time.monotonic() > deadline:
            pytest.fail(
                f"the worker did not update the forecast\n{log_tail(stack.worker_log)}",
                pytrace=False,
            )
        time.sleep(0.25)
    assert customer["consumption"] == [{"sku": "AWS-MILK-1", "purchases": 4}]
    assert 0.0 <= customer["forecast"]["pAlive"] <= 1.0


def test_the_worker_stops_cleanly_on_sigterm_with_its_checkpoints_saved(stack: AwsStack) -> None:
    stack.worker.send_signal(signal.SIGTERM)
    try:
        code = stack.worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the worker ignored SIGTERM\n{log_tail(stack.worker_log)}", pytrace=False)

    output = log_tail(stack.worker_log)
    assert code == 0, output
    assert "stopped:" in output
    assert "Traceback" not in output
    checkpoints = stack.client("dynamodb").scan(TableName=f"{stack.stream}-checkpoints")["Items"]
    assert {item["consumer"]["S"] for item in checkpoints} == {"bus-fanout"}
    assert any("sequence" in item for item in checkpoints)
