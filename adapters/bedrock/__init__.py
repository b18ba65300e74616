"""The AI analyst on Amazon Bedrock: Claude through the Converse API (aioboto3)."""
