"""The cdn contract, on every adapter of the cdn port's table (``summit.testing.backends``)."""

from __future__ import annotations

from summit.testing.backends import backend_fixture
from summit.testing.cdn import CdnContract


class TestCdn(CdnContract):
    backend = backend_fixture("cdn")
