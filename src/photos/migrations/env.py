"""Alembic environment of Summit Photos; the platform's tables have their own history."""

from summit.migrate import run_env

from photos.schema import metadata

run_env(metadata, owns=lambda name: not name.startswith(("identity_", "summit_")))
