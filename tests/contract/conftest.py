"""The engines that contract lines need (``engine=`` in ``summit.testing.backends``), as fixtures.

An engine fixture yields what the line's URL names as ``{engine}``; engines of the later stages
(PostgreSQL, Redis, an S3 store, a broker) start once per session and carry their marker.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from summit.testing.smtp import SmtpServer, smtp_server


@pytest.fixture
async def smtpd() -> AsyncIterator[SmtpServer]:
    """A real SMTP server (aiosmtpd), fresh for each test: ``capture, port = smtpd``."""
    async with smtp_server() as server:
        yield server


@pytest.fixture(scope="session")
def varnish_tiers():  # noqa: ANN201
    """Varnish's edge and regional tiers in front of a small origin, for this test session."""
    from summit.testing.engines import running_cdn

    with running_cdn() as tiers:
        yield tiers
