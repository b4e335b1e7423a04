"""The client address behind the load balancer: believed from X-Forwarded-For only when the
connection comes from a trusted proxy."""

from __future__ import annotations

import pytest

from summit.web import ProxyHeadersMiddleware


async def _client_seen(trusted: str, peer: str, headers: list[tuple[bytes, bytes]]) -> tuple[str, int]:
    seen = {}

    async def app(scope, receive, send):  # noqa: ANN001, ANN202
        seen["client"] = scope["client"]

    await ProxyHeadersMiddleware(app, trusted=trusted)({"type": "http", "client": (peer, 5555), "headers": headers}, None, None)
    return seen["client"]


@pytest.mark.parametrize(
    ("trusted", "peer", "headers", "expected"),
    [
        ("127.0.0.1", "127.0.0.1", [(b"x-forwarded-for", b"203.0.113.9")], ("203.0.113.9", 0)),
        ("127.0.0.1", "127.0.0.1", [(b"x-forwarded-for", b"6.6.6.6, 203.0.113.9")], ("203.0.113.9", 0)),  # the proxy's entry is last
        ("127.0.0.1", "198.51.100.7", [(b"x-forwarded-for", b"6.6.6.6")], ("198.51.100.7", 5555)),  # not from the proxy: ignored
        ("", "127.0.0.1", [(b"x-forwarded-for", b"6.6.6.6")], ("127.0.0.1", 5555)),  # no proxy trusted (stages 1 and 1+)
        ("127.0.0.1, 10.0.0.2", "10.0.0.2", [(b"x-forwarded-for", b"203.0.113.9")], ("203.0.113.9", 0)),
        ("127.0.0.1", "127.0.0.1", [], ("127.0.0.1", 5555)),  # no header: the peer itself
    ],
)
async def test_the_client_address(trusted: str, peer: str, headers: list, expected: tuple[str, int]) -> None:
    assert await _client_seen(trusted, peer, headers) == expected


async def _scheme_seen(trusted: str, peer: str, headers: list[tuple[bytes, bytes]]) -> str:
    seen = {}

    async def app(scope, receive, send):  # noqa: ANN001, ANN202
        seen["scheme"] = scope["scheme"]

    await ProxyHeadersMiddleware(app, trusted=trusted)({"type": "http", "scheme": "http", "client": (peer, 5555), "headers": headers}, None, None)
    return seen["scheme"]


@pytest.mark.parametrize(
    ("trusted", "peer", "headers", "expected"),
    [
        ("127.0.0.1", "127.0.0.1", [(b"x-forwarded-proto", b"https")], "https"),  # TLS ended at the front door
        ("127.0.0.1", "127.0.0.1", [(b"x-forwarded-proto", b"http")], "http"),
        ("127.0.0.1", "198.51.100.7", [(b"x-forwarded-proto", b"https")], "http"),  # not from the proxy: ignored
        ("", "127.0.0.1", [(b"x-forwarded-proto", b"https")], "http"),  # no proxy trusted
        ("127.0.0.1", "127.0.0.1", [(b"x-forwarded-proto", b"gopher")], "http"),  # nonsense: ignored
        ("127.0.0.1", "127.0.0.1", [], "http"),
    ],
)
async def test_the_scheme(trusted: str, peer: str, headers: list, expected: str) -> None:
    assert await _scheme_seen(trusted, peer, headers) == expected
