"""The objects contract, on every adapter of the objects port's table (``summit.testing.backends``)."""

from __future__ import annotations

from summit.testing.backends import backend_fixture
from summit.testing.objects import ObjectStoreContract


class TestObjectStore(ObjectStoreContract):
    backend = backend_fixture("objects")
