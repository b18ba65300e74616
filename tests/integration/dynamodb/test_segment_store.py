"""The SegmentStore contract on DynamoDB, on moto (fixtures in conftest.py)."""

import pytest

from adapters.dynamodb.client import DynamoClient
from adapters.dynamodb.segments import DynamoSegmentStore
from tests.contracts.segment_store import *  # noqa: F403


@pytest.fixture
def segment_store(dynamo: DynamoClient) -> DynamoSegmentStore:
    return DynamoSegmentStore(dynamo)
