"""Alembic history of the user pool's tables (version table ``summit_identity_version``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

HERE = Path(__file__).parent
VERSION_TABLE = "summit_identity_version"


def alembic_config(sync_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.set_main_option("sqlalchemy.url", sync_url.replace("%", "%%"))
    return config


def upgrade(sync_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(sync_url), revision)
