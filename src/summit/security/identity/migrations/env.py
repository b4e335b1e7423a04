"""Alembic environment of the user pool: its own version table, so it migrates apart from the app."""

from summit.migrate import run_env
from summit.security.identity.migrations import VERSION_TABLE
from summit.security.identity.schema import metadata

run_env(metadata, version_table=VERSION_TABLE, owns=lambda name: name.startswith("identity_"))
