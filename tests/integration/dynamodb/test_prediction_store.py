"""The PredictionStore contract on DynamoDB, on moto (fixtures in conftest.py)."""

from tests.contracts.prediction_store import *  # noqa: F403
