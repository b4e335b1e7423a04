"""Alembic, the way every summit history uses it: the caller gives the URL (never a file), each
history may keep its own version table, and autogenerate sees only that history's tables.

A history's ``env.py`` is one call: ``run_env(metadata, version_table=..., owns=...)``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData


def alembic_config(script_location: Path, sync_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", sync_url.replace("%", "%%"))
    return config


def upgrade(script_location: Path, sync_url: str, revision: str = "head") -> None:
    """Bring the database at ``sync_url`` to ``revision`` (idempotent)."""
    command.upgrade(alembic_config(script_location, sync_url), revision)


def current(sync_url: str, version_table: str = "alembic_version") -> str | None:
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine

    engine = create_engine(sync_url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn, opts={"version_table": version_table}).get_current_revision()
    finally:
        engine.dispose()


def run_env(metadata: MetaData, *, version_table: str = "alembic_version", owns: Callable[[str], bool] = lambda name: True) -> None:
    """The body of an ``env.py``: online (or offline) migrations with the configured URL."""
    from alembic import context
    from sqlalchemy import create_engine, pool

    url = context.config.get_main_option("sqlalchemy.url")

    def include_name(name, type_, parent_names):  # noqa: ANN001, ANN202
        return type_ != "table" or owns(name)

    options = dict(target_metadata=metadata, render_as_batch=True, include_name=include_name, version_table=version_table)
    if context.is_offline_mode():
        context.configure(url=url, literal_binds=True, **options)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, **options)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
