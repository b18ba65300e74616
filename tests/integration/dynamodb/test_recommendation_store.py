"""The RecommendationStore contract on DynamoDB, on moto (fixtures in conftest.py)."""

import pytest

from adapters.dynamodb.client import DynamoClient
from adapters.dynamodb.recommendations import DynamoRecommendationStore
from tests.contracts.recommendation_store import *  # noqa: F403


@pytest.fixture
def recommendation_store(dynamo: DynamoClient) -> DynamoRecommendationStore:
    return DynamoRecommendationStore(dynamo)
