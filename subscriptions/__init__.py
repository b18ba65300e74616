"""Subscription resolvers and the per-process fan-out hub over the bus."""
