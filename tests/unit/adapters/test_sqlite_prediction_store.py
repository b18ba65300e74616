"""The PredictionStore contract on SQLite (fixtures in conftest.py)."""

from tests.contracts.prediction_store import *  # noqa: F403
