"""Alembic environment: online migrations with the URL the caller set (never a hard-coded one)."""

from alembic import context
from sqlalchemy import create_engine, pool

from photos.schema import metadata

config = context.config
url = config.get_main_option("sqlalchemy.url")


def include_name(name, type_, parent_names):  # noqa: ANN001, ANN201
    """Autogenerate looks at this history's tables only: the platform's tables have their own history."""
    return type_ != "table" or not name.startswith(("identity_", "summit_"))


def run_offline() -> None:
    context.configure(url=url, target_metadata=metadata, literal_binds=True, render_as_batch=True, include_name=include_name)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True, include_name=include_name)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
