"""Helpers of the API tests: reading codes from the embedded outbox, signing up and in over HTTP,
the JSON error shape, and JWT pieces for forged tokens."""

from __future__ import annotations

import base64
import io
import re
from dataclasses import dataclass

import orjson

API = "/api/v1"
PASSWORD = "correct horse 1"
CODE_RE = re.compile(r"\b(\d{6})\b")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jwt_parts(token: str) -> tuple[dict, dict]:
    """(header, claims) of a compact JWT, unverified."""
    header, payload, _ = token.split(".")
    return orjson.loads(unb64(header)), orjson.loads(unb64(payload))


def small_jpeg(color: str = "teal") -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (32, 32), color).save(out, "JPEG")
    return out.getvalue()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_error(r, status: int, *words: str) -> dict:  # noqa: ANN001
    """The JSON error shape, with the status and a message holding each of ``words``."""
    assert r.status_code == status, f"{r.request.method} {r.request.url.path} -> {r.status_code}: {r.text[:500]}"
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body = r.json()
    assert set(body) == {"error", "request_id"}, body
    assert body["error"]["code"] and body["error"]["message"], body
    assert body["request_id"] == r.headers["x-request-id"]
    for word in words:
        assert word.lower() in body["error"]["message"].lower(), (word, body)
    return body["error"]


async def mails_to(app, email: str) -> list:  # noqa: ANN001
    """What the app mailed to ``email``, newest first (the embedded outbox)."""
    return await app.state.ctx.platform.mail.list(to=email)


async def code_mailed(app, email: str, what: str = "code") -> str:  # noqa: ANN001
    """The code in the newest mail to ``email`` whose subject mentions ``what``."""
    for mail in await mails_to(app, email):
        if what in mail.subject:
            found = CODE_RE.search(mail.subject)
            assert found and found.group(1) in mail.text, mail
            return found.group(1)
    raise AssertionError(f"no mail about {what!r} to {email}")


@dataclass
class Account:
    id: str
    username: str
    email: str
    password: str
    session: dict  # the body of the last 201 from POST /api/v1/sessions

    @property
    def token(self) -> str:
        return self.session["access_token"]

    @property
    def auth(self) -> dict[str, str]:
        return bearer(self.token)


async def sign_up(client, app, username: str, password: str = PASSWORD, *, confirm: bool = True) -> dict:  # noqa: ANN001
    email = f"{username}@example.com"
    r = await client.post(f"{API}/accounts", json={"username": username, "email": email, "password": password})
    assert r.status_code == 201, r.text
    if confirm:
        code = await code_mailed(app, email, "confirmation")
        r = await client.post(f"{API}/accounts/confirm", json={"login": username, "code": code})
        assert r.status_code == 200, r.text
    return r.json()


async def sign_in(client, login: str, password: str = PASSWORD, **headers: str) -> dict:  # noqa: ANN001
    """A new session (another "device"); the client keeps no cookies from it."""
    r = await client.post(f"{API}/sessions", json={"login": login, "password": password}, headers=headers or None)
    assert r.status_code == 201, r.text
    client.cookies.clear()
    return r.json()


async def new_account(client, app, username: str, password: str = PASSWORD) -> Account:  # noqa: ANN001
    user = await sign_up(client, app, username, password)
    session = await sign_in(client, username, password)
    return Account(user["id"], username, user["email"], password, session)
