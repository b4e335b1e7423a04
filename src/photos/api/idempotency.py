"""Idempotency-Key for POST requests: a retried request gets the first one's response.

The first request with a key records a row (scope, key, fingerprint) before it runs, then its
response once it has one. A retry with the same key and the same request replays that response
(header ``Idempotent-Replayed: true``); the same key with a different request is a 422; a retry
while the first is still running is a 409. A 5xx response is not kept, so it may be retried.
Keys are scoped per user (or per anonymous client) and kept for 24 hours.
"""

from __future__ import annotations

import hashlib
import re
import time

import orjson
from sqlalchemy import delete, insert, select, update

from summit.ports import IntegrityError
from summit.security import InvalidToken
from summit.web import request_id

from photos import schema

TTL_SECONDS = 24 * 3600
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_KEPT_HEADERS = {b"content-type", b"location"}
k = schema.idempotency_keys.c


class IdempotencyMiddleware:
    def __init__(self, app, *, prefix: str = "/api/"):  # noqa: ANN001
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope, receive, send):  # noqa: ANN001
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].startswith(self.prefix):
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        key = headers.get(b"idempotency-key")
        if key is None:
            return await self.app(scope, receive, send)
        key_text = key.decode("latin-1")
        if not _KEY.match(key_text):
            return await _error(send, 400, "Idempotency-Key must be 1-255 printable ASCII characters without spaces")
        body = await _read_body(receive)
        ctx = scope["app"].state.ctx
        ident = _scope(ctx, headers)
        fingerprint = _fingerprint(scope, headers, body)
        db = ctx.db

        async with db.write() as conn:
            row = (await conn.execute(select(schema.idempotency_keys).where(k.scope == ident, k.key == key_text))).first()
            if row is not None and row.created_at < time.time() - TTL_SECONDS:
                await conn.execute(delete(schema.idempotency_keys).where(k.scope == ident, k.key == key_text))
                row = None
            if row is None:
                try:
                    await conn.execute(
                        insert(schema.idempotency_keys).values(scope=ident, key=key_text, fingerprint=fingerprint, created_at=time.time())
                    )
                except IntegrityError:
                    return await _error(send, 409, "a request with this Idempotency-Key is in progress; retry shortly")
        if row is not None:
            if row.fingerprint != fingerprint:
                return await _error(send, 422, "this Idempotency-Key was used for a different request; use a new key")
            if row.status is None:
                return await _error(send, 409, "a request with this Idempotency-Key is in progress; retry shortly")
            return await _replay(send, row)

        captured: dict = {"status": None, "headers": [], "body": b""}

        async def capture(message):  # noqa: ANN001
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["headers"] = [[n.decode(), v.decode("latin-1")] for n, v in message.get("headers", []) if n.lower() in _KEPT_HEADERS]
            elif message["type"] == "http.response.body":
                captured["body"] += message.get("body", b"")
            await send(message)

        sent = False

        async def replay_body():  # noqa: ANN202
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        try:
            await self.app(scope, replay_body, capture)
        except BaseException:
            await _forget(db, ident, key_text)
            raise
        if captured["status"] is None or captured["status"] >= 500:
            await _forget(db, ident, key_text)
            return
        async with db.write() as conn:
            await conn.execute(
                update(schema.idempotency_keys)
                .where(k.scope == ident, k.key == key_text)
                .values(status=captured["status"], headers=orjson.dumps(captured["headers"]).decode(), body=captured["body"])
            )


async def _read_body(receive) -> bytes:  # noqa: ANN001
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _scope(ctx, headers: dict) -> str:  # noqa: ANN001
    """Keys are per caller: the user of a valid token, else anonymous (sign-up, log-in)."""
    from http.cookies import SimpleCookie

    from photos.auth import SESSION_COOKIE

    token = None
    auth = headers.get(b"authorization", b"").decode("latin-1")
    if auth.lower().startswith("bearer "):
        token = auth[7:].strip()
    elif b"cookie" in headers:
        cookie = SimpleCookie()
        try:
            cookie.load(headers[b"cookie"].decode("latin-1"))
        except Exception:  # noqa: BLE001 - a malformed cookie header is just anonymous
            cookie = SimpleCookie()
        token = cookie[SESSION_COOKIE].value if SESSION_COOKIE in cookie else None
    if token:
        try:
            return "user:" + ctx.identity.tokens.verify(token).subject
        except InvalidToken:
            pass
    return "anonymous"


def _fingerprint(scope, headers: dict, body: bytes) -> str:  # noqa: ANN001
    content_type = headers.get(b"content-type", b"")
    boundary = re.search(rb"boundary=\"?([^\";]+)", content_type)
    if boundary:  # a retry may pick a new multipart boundary: it is not part of the request's meaning
        body = body.replace(boundary.group(1), b"BOUNDARY")
        content_type = content_type.replace(boundary.group(1), b"BOUNDARY")
    digest = hashlib.sha256()
    for part in (scope["method"].encode(), scope["path"].encode(), scope.get("query_string", b""), content_type, body):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


async def _forget(db, ident: str, key: str) -> None:  # noqa: ANN001
    async with db.write() as conn:
        await conn.execute(delete(schema.idempotency_keys).where(k.scope == ident, k.key == key))


async def _replay(send, row) -> None:  # noqa: ANN001
    headers = [(n.encode(), v.encode("latin-1")) for n, v in orjson.loads(row.headers or "[]")]
    headers.append((b"idempotent-replayed", b"true"))
    headers.append((b"content-length", str(len(row.body or b"")).encode()))
    await send({"type": "http.response.start", "status": row.status, "headers": headers})
    await send({"type": "http.response.body", "body": row.body or b""})


async def _error(send, status: int, message: str) -> None:  # noqa: ANN001
    code = {400: "bad_request", 409: "conflict", 422: "invalid"}[status]
    body = orjson.dumps({"error": {"code": code, "message": message, "field": "Idempotency-Key"}, "request_id": request_id()})
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
