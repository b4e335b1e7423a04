"""Alembic migrations of Summit Photos: one history for SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from summit import migrate

HERE = Path(__file__).parent


def upgrade(sync_url: str, revision: str = "head") -> None:
    migrate.upgrade(HERE, sync_url, revision)


def current(sync_url: str) -> str | None:
    return migrate.current(sync_url)
