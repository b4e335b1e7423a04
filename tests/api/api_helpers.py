"""Helpers of the API tests: signing up and in over HTTP, and JWT pieces for forged tokens. The JSON
error shape is ``summit.testing.http.assert_error``, a mailed code ``summit.testing.mail.mailed_code``."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import orjson

from summit.testing.mail import mailed_code

API = "/api/v1"
PASSWORD = "correct horse 1"


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
        code = await mailed_code(app.state.ctx.platform.mail, email, "confirmation")
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
