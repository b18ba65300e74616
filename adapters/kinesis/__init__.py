"""The event log on Amazon Kinesis Data Streams (aioboto3): a publisher fed by the outbox relay,
and a checkpointed, de-duplicating consumer whose checkpoints live in a DynamoDB table."""
