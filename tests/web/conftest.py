"""Fixtures of the web UI's tests: in-process "browsers" (httpx clients with their own cookie jars)."""

from __future__ import annotations

import httpx
import pytest


@pytest.fixture
async def browser(app):  # noqa: ANN001, ANN201
    """``await browser()`` gives a new cookie jar talking HTML to the app; ``await browser(client=(host,
    port))`` one whose requests come from that address (only a label in the ASGI scope)."""
    clients: list[httpx.AsyncClient] = []

    async def make(client: tuple[str, int] = ("127.0.0.1", 123)) -> httpx.AsyncClient:
        c = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=client), base_url="http://testserver", headers={"accept": "text/html"}
        )
        clients.append(c)
        return c

    yield make
    for c in clients:
        await c.aclose()
