"""summit.web.ratelimit without the app: declarations and their errors, route matching, keys,
reading a body field and giving the body back, the in-process storage's sweep, strategies."""

from __future__ import annotations

import asyncio
import time

import pytest
from limits.aio.storage import MemoryStorage

from summit.blueprint import load_blueprint
from summit.web import ratelimit
from summit.web.ratelimit import Limit, RateLimitConfigError, RateLimitMiddleware, RateLimits


def limits(*declared: Limit, **overrides: object) -> RateLimits:
    return RateLimits(declared, load_blueprint(environ={}, overrides={"shield": overrides}))


def test_a_declaration_says_what_is_wrong_with_it() -> None:
    with pytest.raises(RateLimitConfigError, match="per must be 'user', 'address' or 'field:NAME'"):
        Limit("x", "1/minute", ("GET /a",), per="ip")
    with pytest.raises(RateLimitConfigError, match="route 'POST' is not 'METHOD /path'"):
        Limit("x", "1/minute", ("POST",))
    with pytest.raises(RateLimitConfigError, match="routes is a list"):
        Limit("x", "1/minute", "GET /a")  # type: ignore[arg-type]
    with pytest.raises(RateLimitConfigError, match="'lots' is not a rate"):
        Limit("x", "lots", ("GET /a",))
    with pytest.raises(RateLimitConfigError, match="a name is lower-case"):
        Limit("Comments", "1/minute", ("GET /a",))
    with pytest.raises(RateLimitConfigError, match="declared twice: x"):
        limits(Limit("x", "1/minute", ("GET /a",)), Limit("x", "2/minute", ("GET /b",)))


def test_routes_match_by_method_and_template_and_the_blueprint_sets_rates() -> None:
    comment = Limit("comment", "20/minute", ("POST /api/v1/posts/{post_id}/comments", "POST /p/{post_id}/comments"))
    media = Limit("media", "500/minute", ("GET /media/{key:path}",), per="address")
    reads = Limit("api_read", "3000/minute", ("GET /api/v1/*",))
    found = limits(comment, media, reads, app={"limits": {"comment": "5 per 10 seconds"}})
    names = lambda method, path: [rule.limit.name for rule in found.matching(method, path)]  # noqa: E731
    assert names("POST", "/api/v1/posts/42/comments") == ["comment"] and names("POST", "/p/42/comments") == ["comment"]
    assert names("GET", "/api/v1/posts/42/comments") == ["api_read"]
    assert names("POST", "/api/v1/posts/42/comments/x") == [] and names("DELETE", "/p/42/comments") == []
    assert names("GET", "/media/p/ab/cd.webp") == ["media"] and names("GET", "/api/v1/feed") == ["api_read"]
    rule = found.matching("POST", "/p/1/comments")[0]
    assert (rule.item.amount, rule.period, rule.exact) == (5, "10 seconds", True)
    assert rule.message(7) == "too many requests: at most 5 per 10 seconds; retry in 7 s"
    assert not found.matching("GET", "/api/v1/feed")[0].exact  # large limits: a sliding window counter


def test_exemptions_and_address_keys() -> None:
    found = limits(Limit("x", "1/minute", ("GET /a",)), exempt=["10.0.0.0/8", "2001:db8::/48"])
    assert found.is_exempt("10.9.8.7") and found.is_exempt("2001:db8:0:1::5") and not found.is_exempt("192.0.2.1")
    assert not found.is_exempt(None) and not found.is_exempt("not an address")
    assert ratelimit._address_key("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"  # one host holds a /64
    assert ratelimit._address_key("::ffff:192.0.2.7") == "192.0.2.7" and ratelimit._address_key("192.0.2.7") == "192.0.2.7"
    assert ratelimit._field_key("  Alice@Example.COM ") == "alice@example.com" and ratelimit._field_key("x" * 300).startswith("#")


async def test_a_field_limit_reads_a_small_body_and_gives_it_back_whole() -> None:
    seen: list[bytes] = []

    async def app(scope, receive, send):  # noqa: ANN001, ANN202
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        seen.append(body)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    found = limits(Limit("sign_in_account", "1/minute", ("POST /login",), per="field:login"))
    limiter = found.open(type("P", (), {"cache": type("C", (), {"shared": False})()})())
    middleware = RateLimitMiddleware(app, limiter=lambda: limiter)

    async def call(body: bytes, content_type: bytes, *, halves: bool = False) -> int:
        chunks = [body[: len(body) // 2], body[len(body) // 2:]] if halves else [body]
        messages = [{"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1} for i, chunk in enumerate(chunks)]
        sent: list[dict] = []

        async def receive() -> dict:
            return messages.pop(0)

        async def send(message: dict) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/login", "client": ("192.0.2.1", 1), "headers": [
            (b"content-type", content_type), (b"content-length", str(len(body)).encode())]}
        await middleware(scope, receive, send)
        return sent[0]["status"]

    form = b"login=Ann&password=secret+1"
    assert await call(form, b"application/x-www-form-urlencoded", halves=True) == 200 and seen[-1] == form
    assert await call(b'{"login": "ANN", "password": "x"}', b"application/json") == 429  # the same account, counted once before
    assert await call(b'{"login": "bob"}', b"application/json; charset=utf-8") == 200
    assert await call(b'["not", "an", "object"]', b"application/json") == 200 and seen[-1] == b'["not", "an", "object"]'  # no login: not counted
    await limiter.close()


async def test_the_in_process_storage_sweeps_at_most_once_a_second() -> None:
    assert "_MemoryStorage__schedule_expiry" in vars(MemoryStorage)  # the library's hook that _SweptMemory replaces
    storage = ratelimit._SweptMemory()
    assert await storage.acquire_entry("short", 5, 1) and await storage.incr("counter", 1) == 1
    assert "short" in storage.events and "counter" in storage.storage
    await asyncio.sleep(1.1)
    storage._swept = time.time() - 0.5  # swept half a second ago: not again yet
    await storage.incr("other", 60)
    assert "short" in storage.events and "counter" in storage.expirations
    storage._swept = 0.0
    await storage.incr("other", 60)  # a count made more than a second after the last sweep sweeps
    assert "short" not in storage.events and "counter" not in storage.expirations and "other" in storage.storage
