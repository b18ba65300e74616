"""The EventStream contract on Kinesis (moto_server), with checkpoints in DynamoDB."""

from tests.contracts.event_stream import *  # noqa: F403
