"""Embedded adapters on SQLite: the sql port (WAL mode), a durable queue, and a search index (FTS5)."""
