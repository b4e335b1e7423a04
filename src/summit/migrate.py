"""Alembic, the way every summit history uses it: the caller gives the URL (never a file), each
history may keep its own version table, and autogenerate sees only that history's tables.

A history is a package holding ``env.py`` and ``versions/``; its ``env.py`` is one call,
``run_env(metadata, version_table=..., owns=...)``, and the package names the same table in
``VERSION_TABLE`` (default ``alembic_version``). A deployment's histories run in one order,
the platform's then the app's (``upgrade_all``), whoever migrates: ``summit db`` or the app's
start-up.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData

if TYPE_CHECKING:
    from summit.blueprint import Blueprint

DEFAULT_VERSION_TABLE = "alembic_version"
# The platform's own histories, in order. They run before the app's, whose migrations may read
# their tables (Summit Photos' 0002 moves its accounts into the user pool's).
PLATFORM_HISTORIES = ("summit.security.identity.migrations",)


@dataclass(frozen=True)
class History:
    package: str  # e.g. "photos.migrations"
    location: Path  # its directory: env.py and versions/
    version_table: str = DEFAULT_VERSION_TABLE

    @classmethod
    def of(cls, package: ModuleType) -> History:
        location = Path(package.__file__ or "").parent
        if not hasattr(package, "__path__") or not (location / "env.py").is_file():
            raise ValueError(f"{package.__name__!r} is not an Alembic history: {location} has no env.py")
        return cls(package.__name__, location, getattr(package, "VERSION_TABLE", DEFAULT_VERSION_TABLE))

    def head(self) -> str | None:
        from alembic.script import ScriptDirectory

        return ScriptDirectory(str(self.location)).get_current_head()


def histories(blueprint: Blueprint) -> list[History]:
    """Every history of a deployment, in the order they run: the platform's, then the app's
    (``app.migrations`` in the blueprint; BlueprintError names that key if it is wrong)."""
    from summit.blueprint import BlueprintError

    found = [History.of(importlib.import_module(name)) for name in PLATFORM_HISTORIES]
    package = blueprint.app.migrations_package()
    if package is not None:
        try:
            found.append(History.of(package))
        except ValueError as error:
            raise BlueprintError(f"app.migrations: {error}") from None
    return found


def upgrade_all(blueprint: Blueprint, sync_url: str) -> list[History]:
    """Bring every history of the deployment to its head, in order (idempotent); returns them."""
    found = histories(blueprint)
    for history in found:
        upgrade(history.location, sync_url, data_dir=blueprint.data_dir)
    return found


def revisions(blueprint: Blueprint, sync_url: str) -> list[tuple[History, str | None]]:
    """Each history with the database's revision of it (None: not applied yet)."""
    return [(history, current(sync_url, history.version_table)) for history in histories(blueprint)]


def alembic_config(script_location: Path, sync_url: str, *, data_dir: Path | None = None) -> Config:
    """The config of one history; ``data_dir`` reaches its revisions as ``config.attributes["data_dir"]``
    (the identity history's id0003 encrypts emails with the data directory's KMS)."""
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", sync_url.replace("%", "%%"))
    if data_dir is not None:
        config.attributes["data_dir"] = Path(data_dir)
    return config


def upgrade(script_location: Path, sync_url: str, revision: str = "head", *, data_dir: Path | None = None) -> None:
    """Bring the database at ``sync_url`` to ``revision`` (idempotent)."""
    command.upgrade(alembic_config(script_location, sync_url, data_dir=data_dir), revision)


def current(sync_url: str, version_table: str = DEFAULT_VERSION_TABLE) -> str | None:
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine

    engine = create_engine(sync_url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn, opts={"version_table": version_table}).get_current_revision()
    finally:
        engine.dispose()


def run_env(metadata: MetaData, *, version_table: str = DEFAULT_VERSION_TABLE, owns: Callable[[str], bool] = lambda name: True) -> None:
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
