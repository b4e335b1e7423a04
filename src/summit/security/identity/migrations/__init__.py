"""Alembic history of the user pool's tables (version table ``summit_identity_version``)."""

from __future__ import annotations

from pathlib import Path

from summit import migrate

HERE = Path(__file__).parent
VERSION_TABLE = "summit_identity_version"


def upgrade(sync_url: str, revision: str = "head", *, data_dir: Path | None = None) -> None:
    """Migrate the pool's tables; with ``data_dir`` (its KMS), plaintext emails are sealed on the way."""
    migrate.upgrade(HERE, sync_url, revision, data_dir=data_dir)


def downgrade(sync_url: str, revision: str, *, data_dir: Path | None = None) -> None:
    """Take the pool's tables back to ``revision`` (below id0003 the emails are decrypted: ``data_dir``)."""
    from alembic import command

    command.downgrade(migrate.alembic_config(HERE, sync_url, data_dir=data_dir), revision)
