"""The queue contract, on every adapter of the queue port's table (``summit.testing.backends``)."""

from __future__ import annotations

from summit.testing.backends import backend_fixture
from summit.testing.queue import QueueContract


class TestQueue(QueueContract):
    backend = backend_fixture("queue")
