"""Embedded adapters on SQLite: the sql port (WAL mode) and a durable queue."""
