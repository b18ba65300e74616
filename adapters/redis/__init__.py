"""Redis adapters (redis.asyncio): the live bus with replay streams, and the TTL cache."""
