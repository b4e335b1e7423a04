"""Adapters on Redis (redis-py's asyncio client): the cache port, shared by every process of a stage."""
