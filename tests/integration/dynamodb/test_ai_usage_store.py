"""The AiUsageStore contract on DynamoDB, on moto (fixtures in conftest.py)."""

from tests.contracts.ai_usage_store import *  # noqa: F403
