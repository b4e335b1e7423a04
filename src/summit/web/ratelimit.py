"""Rate limits in the app, per user, address or account and per route (like WAF rate-based rules
keyed on a user), counted with the ``limits`` library.

The app declares its limits (``Limit``: a name, a rate, the routes it counts, whom it counts);
the blueprint's ``[shield]`` section may change any rate by name, exempt sources, or turn the
limits off. Where they are counted follows the cache port: on the stage's Redis when the cache is
shared (``{redis}``: every app process sees the same counts), else in the process (stage 1, and
each app server on its own up to 1k).

    limits = RateLimits(LIMITS, blueprint)                  # checked now: a bad name is an error
    app.state.rate_limiter = limits.open(platform)          # in the lifespan; .close() at its end
    app.add_middleware(RateLimitMiddleware, limiter=lambda: app.state.rate_limiter,
                       caller=who_is_calling, error_page=html_page)

A request over a limit gets ``429`` with ``Retry-After`` and the API's JSON error
(``{"error": {"code": "rate_limited", "message": ...}, "request_id": ...}``), or the app's HTML
page from ``error_page``. Counting happens before the body is read (but for a limit keyed on a
field of a small body, such as a sign-in's login), so a refused upload costs nothing.

**Whom a limit counts** (``per``): ``"user"``, the signed-in user (the app's ``caller`` says who,
from a token it has verified), else the client's address; ``"address"``, the client's address as
``ProxyHeadersMiddleware`` found it (the load balancer's ``X-Forwarded-For`` from a trusted proxy
only), an IPv6 client by its /64; ``"field:NAME"``, the value of a field of the request's JSON or
form body (lower-cased), e.g. the login of a sign-in, so an account is counted whatever the address.

**Strategies**: a limit of at most ``EXACT_UP_TO`` requests is counted exactly over a moving
window (each request's time kept); a larger one by a sliding window counter (two counters, an
approximation), so a per-user read limit of hundreds a minute keeps two numbers per user, not
hundreds of timestamps.

**When Redis is down** the limits fail open: a count that Redis does not answer within
``shield.app.timeout_ms`` lets the request through, Redis is skipped for ``BREAK_SECONDS`` (no
timeout paid per request), and the outage is logged once per ``shield.app.log_interval_seconds``
(with how many requests went uncounted), its end once. Limits protect capacity; they must not take
the app down with the cache.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter, RateLimiter as Strategy, SlidingWindowCounterRateLimiter
from limits.errors import StorageError

from summit.web.middleware import request_id

log = logging.getLogger("summit.shield")

EXACT_UP_TO = 100  # limits of at most this many requests are counted exactly (moving window)
BREAK_SECONDS = 1.0  # after Redis failed to answer, it is skipped this long, then one request probes it
SWEEP_SECONDS = 1.0  # the in-process storage drops expired counts at most this often
FIELD_BODY_BYTES = 64 * 1024  # a body read for a "field:" limit is at most this large (else not read, not counted)
_PERS = ("user", "address")
_ROUTE = re.compile(r"^(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS) (/\S*)$")
_WHO = {"user": "", "address": " from your address", "field": " for this account"}

Caller = Callable[[dict], Awaitable["str | int | None"]]  # the signed-in user of a request (its scope), or None
ErrorPage = Callable[[dict, int, str], Awaitable[Any]]  # (scope, status, message) -> an ASGI response, or None: JSON


class RateLimitConfigError(ValueError):
    """A limit is declared or configured wrongly; the message names it and what to fix."""


@dataclass(frozen=True)
class Limit:
    """One rate limit of the app: ``rate`` requests (``"20/minute"``, ``"60 per hour"``) to any of
    ``routes`` (``"POST /api/v1/posts/{post_id}/comments"``; a final ``*`` matches any rest of the
    path) by one ``per`` (``"user"``, ``"address"`` or ``"field:NAME"``). ``what`` names the
    requests in the refusal: "too many comments: at most 20 a minute; retry in 12 s"."""

    name: str
    rate: str
    routes: tuple[str, ...]
    per: str = "user"
    what: str = "requests"

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", self.name):
            raise RateLimitConfigError(f"limit {self.name!r}: a name is lower-case letters, digits and underscores")
        if self.per not in _PERS and not re.fullmatch(r"field:[A-Za-z_][A-Za-z0-9_]*", self.per):
            raise RateLimitConfigError(f"limit {self.name!r}: per must be 'user', 'address' or 'field:NAME', got {self.per!r}")
        if isinstance(self.routes, str) or not self.routes:
            raise RateLimitConfigError(f"limit {self.name!r}: routes is a list of 'METHOD /path' (at least one)")
        for route in self.routes:
            if not _ROUTE.match(route):
                raise RateLimitConfigError(f"limit {self.name!r}: route {route!r} is not 'METHOD /path' (e.g. 'POST /api/v1/posts')")
        item(self.rate, self.name)


def item(rate: str, name: str) -> RateLimitItem:
    try:
        parsed = parse(rate)
    except ValueError:
        raise RateLimitConfigError(f"limit {name!r}: {rate!r} is not a rate; write N/second, N/minute, N/hour or N/day") from None
    return parsed


def _pattern(path: str) -> re.Pattern[str]:
    """A route's path as a regular expression: ``{name}`` is one segment, ``{name:path}`` the rest, a final ``*`` anything."""
    prefix = path.endswith("*")
    parts = re.split(r"(\{[^}]+\})", path.rstrip("*") if prefix else path)
    text = "".join((".+" if part.endswith(":path}") else "[^/]+") if part.startswith("{") else re.escape(part) for part in parts)
    return re.compile(f"^{text}" + ("" if prefix else "$"))


@dataclass(frozen=True)
class _Rule:
    limit: Limit
    item: RateLimitItem
    exact: bool

    @property
    def period(self) -> str:
        granularity = self.item.GRANULARITY.name
        return granularity if self.item.multiples == 1 else f"{self.item.multiples} {granularity}s"

    def message(self, retry_after: int) -> str:
        kind = self.limit.per.partition(":")[0]
        return (f"too many {self.limit.what}{_WHO[kind]}: at most {self.item.amount} per {self.period}; "
                f"retry in {retry_after} s")


class RateLimits:
    """The app's declared limits with the blueprint's rates and exemptions, matched to requests."""

    def __init__(self, limits: Iterable[Limit], blueprint: Any):
        limits = list(limits)
        settings = blueprint.shield
        names = [limit.name for limit in limits]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise RateLimitConfigError(f"limits declared twice: {', '.join(twice)}")
        unknown = sorted(set(settings.app.limits) - set(names))
        if unknown:
            raise RateLimitConfigError(f"shield.app.limits: no limit named {', '.join(map(repr, unknown))}; "
                                       f"the app's limits are: {', '.join(sorted(names)) or 'none'}")
        self.enabled = settings.app.enabled
        self.timeout = settings.app.timeout_ms / 1000
        self.log_interval = float(settings.app.log_interval_seconds)
        self.exempt = tuple(ipaddress.ip_network(network) for network in settings.exempt)
        self.rules: list[_Rule] = []
        self._routes: dict[str, list[tuple[re.Pattern[str], _Rule, str]]] = {}
        for limit in limits:
            parsed = item(settings.app.limits.get(limit.name, limit.rate), limit.name)
            rule = _Rule(limit, parsed, exact=parsed.amount <= EXACT_UP_TO)
            self.rules.append(rule)
            for route in limit.routes:
                method, path = route.split(" ", 1)
                self._routes.setdefault(method, []).append((_pattern(path), rule, path))
        self._exempt_seen: dict[str, bool] = {}

    def matching(self, method: str, path: str) -> list[_Rule]:
        """The rules that count this request, in their declared order (each at most once)."""
        found: list[_Rule] = []
        for pattern, rule, _ in self._routes.get(method, ()):
            if rule not in found and pattern.match(path):
                found.append(rule)
        return found

    def template(self, rule: _Rule, method: str, path: str) -> str:
        """The route of ``rule`` that this request matched, as declared (``/p/{post_id}/comments``)."""
        return next(template for pattern, each, template in self._routes.get(method, ()) if each is rule and pattern.match(path))

    def is_exempt(self, address: str | None) -> bool:
        if not self.exempt or not address:
            return False
        seen = self._exempt_seen.get(address)
        if seen is None:
            try:
                ip = ipaddress.ip_address(address)
            except ValueError:
                seen = False
            else:
                seen = any(ip in network for network in self.exempt)
            if len(self._exempt_seen) > 10_000:
                self._exempt_seen.clear()
            self._exempt_seen[address] = seen
        return seen

    def open(self, platform: Any) -> RateLimiter:
        """Count on the stage's Redis when the cache port is shared Redis, else in this process."""
        if platform.cache.shared:
            url = platform.blueprint.port_url("cache")
            scheme = urlsplit(url).scheme.lower()
            if scheme not in ("redis", "rediss"):
                raise RateLimitConfigError(f"the cache port is shared but not Redis ({scheme}://): rate limits count only "
                                           "in Redis or in process")
            return RateLimiter(self, _RedisCounts(url, self.timeout))
        return RateLimiter(self, _MemoryCounts())


class _SweptMemory(MemoryStorage):
    """``limits``' in-process storage, whose expired counts are dropped at most once a second: the
    library sweeps every key on every count (with a thread hop per moving window), a cost that grows
    with the number of users counted. Its counts themselves expire exactly, sweep or not."""

    def __init__(self) -> None:
        super().__init__()
        self._swept = 0.0

    async def _MemoryStorage__schedule_expiry(self) -> None:  # the library's private hook, replaced (a test checks it exists)
        now = time.time()
        if now - self._swept < SWEEP_SECONDS:
            return
        self._swept = now
        for key, events in list(self.events.items()):  # newest first: the live ones are a prefix
            live = [event for event in events if event.expiry > now]
            if live:
                if len(live) < len(events):
                    self.events[key] = live
            else:
                del self.events[key]
                self.locks.pop(key, None)
        for key, expires in list(self.expirations.items()):
            if expires <= now:
                self.storage.pop(key, None)
                del self.expirations[key]
                self.locks.pop(key, None)


class _MemoryCounts:
    where = "this process"
    shared = False

    def __init__(self) -> None:
        self.storage = _SweptMemory()

    async def close(self) -> None:
        await self.storage.reset()


class _RedisCounts:
    """The stage's Redis, reached with the cache port's URL (its password and database), keys under
    the cache's prefix + ``shield``; a pool of its own, every call bounded by the timeout."""

    shared = True

    def __init__(self, url: str, timeout: float):
        import redis.asyncio as aioredis
        from limits.aio.storage import RedisStorage

        parts = urlsplit(url)
        prefix = parse_qs(parts.query).get("prefix", ["summit:"])[-1]
        base = parts._replace(query="", fragment="").geturl()
        self.where = f"Redis at {parts.hostname}:{parts.port or 6379}"
        self._pool = aioredis.BlockingConnectionPool.from_url(base, max_connections=32, timeout=timeout, socket_connect_timeout=timeout)
        self.storage = RedisStorage("async+" + base, implementation="redispy", key_prefix=prefix + "shield", wrap_exceptions=True,
                                    connection_pool=self._pool)

    async def close(self) -> None:
        await self._pool.disconnect()


@dataclass(frozen=True)
class Refusal:
    rule: _Rule
    retry_after: int

    @property
    def message(self) -> str:
        return self.rule.message(self.retry_after)


class RateLimiter:
    """The limits of one app process, counting in a storage; fails open when the storage does not answer."""

    def __init__(self, limits: RateLimits, counts: _MemoryCounts | _RedisCounts):
        self.limits = limits
        self.counts = counts
        self._exact = MovingWindowRateLimiter(counts.storage)
        self._approximate = SlidingWindowCounterRateLimiter(counts.storage)
        self._open_until = 0.0  # the breaker: the storage is skipped until then
        self._down_since: float | None = None
        self._last_report = -math.inf
        self.uncounted = 0  # requests let through uncounted during the current outage

    @property
    def enabled(self) -> bool:
        return self.limits.enabled

    async def close(self) -> None:
        await self.counts.close()

    def _strategy(self, rule: _Rule) -> Strategy:
        return self._exact if rule.exact else self._approximate

    async def hit(self, rule: _Rule, key: str) -> Refusal | None:
        """Count one request of ``key`` against ``rule``: a Refusal when it is over the limit, None
        when it may go on (also when the count could not be made: fail open)."""
        identifiers = (rule.limit.name, key)
        strategy = self._strategy(rule)
        allowed = await self._call(strategy.hit(rule.item, *identifiers))
        if allowed is None or allowed:
            return None
        period = rule.item.get_expiry()
        stats = await self._call(strategy.get_window_stats(rule.item, *identifiers))
        wait = period if stats is None else stats.reset_time - time.time()
        return Refusal(rule, max(1, min(period, math.ceil(wait))))

    async def _call(self, call: Awaitable[Any]) -> Any:
        """The storage's answer, or None when it is out (breaker open, error, or no answer in time)."""
        now = time.monotonic()
        if now < self._open_until:
            call.close()  # type: ignore[attr-defined]  (a coroutine never awaited)
            self._uncounted(now, None)
            return None
        try:
            async with asyncio.timeout(self.limits.timeout):
                answer = await call
        except (StorageError, TimeoutError, OSError) as error:
            self._open_until = time.monotonic() + BREAK_SECONDS
            self._uncounted(time.monotonic(), error)
            return None
        if self._down_since is not None:
            log.warning("rate limits counted again in %s after %.1f s; %d request(s) went uncounted meanwhile",
                        self.counts.where, now - self._down_since, self.uncounted)
            self._down_since, self.uncounted, self._last_report = None, 0, -math.inf
        return answer

    def _uncounted(self, now: float, error: BaseException | None) -> None:
        self.uncounted += 1
        if self._down_since is None:
            self._down_since = now
        if now - self._last_report >= self.limits.log_interval:
            self._last_report = now
            cause = "still out" if error is None else (f"{type(error).__name__}: {error}" if str(error) else type(error).__name__)
            log.warning("rate limits not enforced: %s does not answer (%s); requests go through uncounted (%d so far), "
                        "next report in %g s", self.counts.where, cause, self.uncounted, self.limits.log_interval)


# ---- the middleware -------------------------------------------------------------------------------

class RateLimitMiddleware:
    """Counts each request against the limits its route has, and refuses it with 429 when one is
    over. ``limiter()`` gives the process's RateLimiter (None before start-up: nothing counted);
    ``caller(scope)`` the signed-in user; ``error_page(scope, status, message)`` the app's HTML
    error page for a request from its pages (None: the JSON error)."""

    def __init__(self, app: Any, *, limiter: Callable[[], RateLimiter | None], caller: Caller | None = None,
                 error_page: ErrorPage | None = None):
        self.app = app
        self.limiter = limiter
        self.caller = caller
        self.error_page = error_page

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limiter = self.limiter()
        if limiter is None or not limiter.enabled:
            return await self.app(scope, receive, send)
        rules = limiter.limits.matching(scope["method"], scope["path"])
        if not rules:
            return await self.app(scope, receive, send)
        client = scope.get("client")
        address = client[0] if client else None
        if limiter.limits.is_exempt(address):
            return await self.app(scope, receive, send)
        user: Any = ...
        fields: dict[str, str] | None = None
        body_read = False
        for rule in rules:
            per = rule.limit.per
            if per == "address":
                key = "a:" + _address_key(address)
            elif per == "user":
                if user is ...:
                    user = await self.caller(scope) if self.caller is not None else None
                key = f"u:{user}" if user is not None else "a:" + _address_key(address)
            else:
                if fields is None:
                    fields, receive, body_read = await _read_fields(scope, receive)
                value = fields.get(per.partition(":")[2])
                if not value:
                    continue  # nothing to count this request by: the route itself answers what is missing
                key = "f:" + _field_key(value)
            refusal = await limiter.hit(rule, key)
            if refusal is not None:
                # the access log and the metrics name the route template, as for a routed request
                scope["route"] = _Route(limiter.limits.template(rule, scope["method"], scope["path"]))
                return await self._refuse(scope, send, refusal, unread_body=not body_read and _has_body(scope))
        return await self.app(scope, receive, send)

    async def _refuse(self, scope: dict, send: Any, refusal: Refusal, *, unread_body: bool) -> None:
        extra = [(b"retry-after", str(refusal.retry_after).encode()), (b"cache-control", b"no-store")]
        if unread_body:
            extra.append((b"connection", b"close"))  # the body is not read: the connection cannot be reused
        await refuse(scope, send, 429, "rate_limited", refusal.message, extra, self.error_page)


async def refuse(scope: dict, send: Any, status: int, code: str, message: str, extra: list[tuple[bytes, bytes]],
                 error_page: ErrorPage | None) -> None:
    """Answer a refused request: the app's HTML page from ``error_page`` (with ``extra`` headers), or
    the API's JSON error."""
    page = await error_page(scope, status, message) if error_page is not None else None
    if page is not None:
        async def with_headers(event: dict) -> None:
            if event["type"] == "http.response.start":
                names = {name for name, _ in extra}
                event = {**event, "headers": [*(h for h in event.get("headers", []) if h[0].lower() not in names), *extra]}
            await send(event)

        async def no_body() -> dict:
            return {"type": "http.disconnect"}

        return await page(scope, no_body, with_headers)
    body = orjson.dumps({"error": {"code": code, "message": message}, "request_id": request_id()})
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]})
    await send({"type": "http.response.body", "body": body})


@dataclass(frozen=True)
class _Route:
    path: str


def _address_key(address: str | None) -> str:
    """An address as counted: IPv4 itself, IPv6 by its /64 (a host holds a whole /64)."""
    if not address:
        return "-"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _field_key(value: str) -> str:
    text = value.strip().lower()
    return text if len(text) <= 100 else "#" + hashlib.sha256(text.encode()).hexdigest()


def _header(scope: dict, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value
    return None


def _has_body(scope: dict) -> bool:
    length = _header(scope, b"content-length")
    return (length is not None and length.strip() not in (b"", b"0")) or _header(scope, b"transfer-encoding") is not None


async def _read_fields(scope: dict, receive: Any) -> tuple[dict[str, str], Any, bool]:
    """The string fields of a small JSON object or urlencoded form body, and a ``receive`` that
    gives the app the same body again. A body without a length, or longer than
    ``FIELD_BODY_BYTES``, or of another type, is not read: no fields."""
    length = _header(scope, b"content-length")
    if length is None or not length.isdigit() or int(length) > FIELD_BODY_BYTES:
        return {}, receive, False
    kind = (_header(scope, b"content-type") or b"").split(b";")[0].strip().lower()
    if kind not in (b"application/json", b"application/x-www-form-urlencoded"):
        return {}, receive, False
    messages: list[dict] = []
    body = b""
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break

    async def replay() -> dict:
        return messages.pop(0) if messages else await receive()

    fields: dict[str, str] = {}
    try:
        if kind == b"application/json":
            parsed = orjson.loads(body)
            if isinstance(parsed, dict):
                fields = {k: v for k, v in parsed.items() if isinstance(v, str)}
        else:
            fields = {k: v[-1] for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}
    except (ValueError, UnicodeDecodeError):
        fields = {}
    return fields, replay, True

