"""The cache contract, on every adapter of the cache port's table (``summit.testing.backends``)."""

from __future__ import annotations

from summit.testing.backends import backend_fixture
from summit.testing.cache import CacheContract


class TestCache(CacheContract):
    backend = backend_fixture("cache")
