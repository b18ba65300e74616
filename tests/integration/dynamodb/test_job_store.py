"""The JobStore contract on DynamoDB, on moto (fixtures in conftest.py)."""

from tests.contracts.job_store import *  # noqa: F403
