"""Alembic history of the user pool's tables (version table ``summit_identity_version``)."""

from __future__ import annotations

from pathlib import Path

from summit import migrate

HERE = Path(__file__).parent
VERSION_TABLE = "summit_identity_version"


def upgrade(sync_url: str, revision: str = "head") -> None:
    migrate.upgrade(HERE, sync_url, revision)
