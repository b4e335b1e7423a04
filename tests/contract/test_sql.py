"""The sql contract, on every adapter of the sql port's table (``summit.testing.backends``)."""

from __future__ import annotations

from summit.testing.backends import backend_fixture
from summit.testing.sql import DatabaseContract


class TestDatabase(DatabaseContract):
    backend = backend_fixture("sql")
