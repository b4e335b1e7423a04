"""Alembic environment of the user pool: its own version table, so it migrates apart from the app."""

from alembic import context
from sqlalchemy import create_engine, pool

from summit.security.identity.migrations import VERSION_TABLE
from summit.security.identity.schema import metadata

config = context.config
url = config.get_main_option("sqlalchemy.url")


def include_name(name, type_, parent_names):  # noqa: ANN001, ANN201
    """Autogenerate looks at this history's tables only: only the user pool's tables belong to this history."""
    return type_ != "table" or name.startswith("identity_")


def run_offline() -> None:
    context.configure(url=url, target_metadata=metadata, literal_binds=True, render_as_batch=True, include_name=include_name, version_table=VERSION_TABLE)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True, include_name=include_name, version_table=VERSION_TABLE)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
