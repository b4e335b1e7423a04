"""Schemathesis against the OpenAPI document of a real `summit up`: generated requests, valid and
invalid, to every operation, with the token of a real, confirmed user (signed up, confirmed with the
code that ``summit mail --json`` shows, signed in) and without one, never get a 5xx; a 4xx of the JSON
API is the JSON error shape with a message.

One test per operation (the list comes from the app's own OpenAPI document, so a new endpoint is
fuzzed without editing this file); each test loads the document from the live server with
``schemathesis.openapi.from_url`` and drives the operation's Hypothesis strategies. (schemathesis'
``pytest.from_fixture`` lazy loader does not run under pytest 9: it writes ``Function._nodeid``.)
Bounded for speed: a few dozen examples per operation and mode, no deadline, no example database.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from PIL import Image
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from summit.testing.http import assert_error_body
from summit.testing.mail import code_in, mailed_code
from summit.wiring import open_port

MAX_EXAMPLES = 25
BOUNDED = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,  # the same cases on every run: a failure here is reproducible
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    print_blob=False,
)
# a log-in with an unknown name verifies a full-cost argon2 hash on purpose (same time as a wrong
# password), so this operation gets fewer examples
FEWER_EXAMPLES = {("POST", "/api/v1/sessions"): 8}
_accounts = itertools.count(1)


def _operations() -> list[tuple[str, str]]:
    """(METHOD, path) of every operation in the app's OpenAPI document (no server needed)."""
    from summit.blueprint import load_blueprint

    from photos.app import create_app

    blueprint = load_blueprint(environ={}, overrides={"data_dir": str(Path("/nonexistent/summit-openapi"))})
    doc = create_app(blueprint).openapi()
    methods = ("get", "put", "post", "delete", "patch")
    return [(method.upper(), path) for path, item in doc["paths"].items() for method in item if method in methods]


OPERATIONS = _operations()


PASSWORD = "correct horse 1"
# The set-up's own sign-ins come from another loopback address than the fuzzer's requests: the
# fuzzed POST /api/v1/sessions fails many log-ins from 127.0.0.1, and the pool then locks that
# address out (credential stuffing), as it should.
SETUP_ADDRESS = "127.0.0.2"
TOKEN_REUSE_SECONDS = 120  # access tokens live 5 minutes: a longer run signs in again


def _http(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=30, transport=httpx.HTTPTransport(local_address=SETUP_ADDRESS))


def _code_by_cli(data_dir: str, email: str) -> str:
    """The confirmation code, read as a script would: ``summit mail --json``."""
    summit = Path(sys.executable).with_name("summit")
    out = subprocess.run([str(summit), "mail", "--json", "--data-dir", data_dir, "--to", email],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    mails = json.loads(out)
    assert mails and mails[0]["to"] == [email], out
    return code_in(mails[0]["subject"])


def _code_from_outbox(data_dir: str, email: str) -> str:
    """The same, in-process through the mail port (faster, for the many throwaway accounts)."""

    async def read() -> str:
        outbox = open_port("mail", f"outbox://{data_dir}/outbox")
        try:
            return await mailed_code(outbox, email, "confirmation")
        finally:
            await outbox.close()

    return asyncio.run(read())


@dataclass
class ApiUser:
    url: str
    username: str
    post_id: str = ""
    comment_id: str = ""
    token: str = ""
    signed_in_at: float = 0.0

    def sign_in(self) -> str:
        with _http(self.url) as http:
            r = http.post("/api/v1/sessions", json={"login": self.username, "password": PASSWORD})
        assert r.status_code == 201, r.text
        self.token, self.signed_in_at = r.json()["access_token"], time.monotonic()
        return self.token

    @property
    def auth(self) -> dict[str, str]:
        if not self.token or time.monotonic() - self.signed_in_at > TOKEN_REUSE_SECONDS:
            self.sign_in()
        return {"Authorization": f"Bearer {self.token}"}


def _sign_up(live_server, prefix: str, *, content: bool = True, read_code=_code_from_outbox) -> ApiUser:  # noqa: ANN001
    """A real, confirmed user made over HTTP, with a post and a comment (``content``)."""
    username = f"{prefix}{next(_accounts)}"
    email = f"{username}@example.com"
    user = ApiUser(live_server.url, username)
    with _http(live_server.url) as http:
        r = http.post("/api/v1/accounts", json={"username": username, "email": email, "password": PASSWORD})
        assert r.status_code == 201, r.text
        r = http.post("/api/v1/accounts/confirm", json={"login": username, "code": read_code(live_server.data_dir, email)})
        assert r.status_code == 200, r.text
        if not content:
            return user
        headers = user.auth
        photo = io.BytesIO()
        Image.new("RGB", (32, 32), "teal").save(photo, "JPEG")
        r = http.post("/api/v1/posts", headers=headers, files={"photo": ("a.jpg", photo.getvalue(), "image/jpeg")}, data={"caption": "#fuzz"})
        assert r.status_code == 201, r.text
        user.post_id = r.json()["id"]
        r = http.post(f"/api/v1/posts/{user.post_id}/comments", headers=headers, json={"body": "seed"})
        assert r.status_code == 201, r.text
        user.comment_id = r.json()["id"]
    return user


@pytest.fixture(scope="session")
def api_user(live_server) -> ApiUser:  # noqa: ANN001
    return _sign_up(live_server, "fuzzer", read_code=_code_by_cli)


@pytest.fixture(scope="session")
def admin_user(live_server) -> ApiUser:  # noqa: ANN001
    """A member of ``admins``, made the way the first admin is: ``summit identity add-to-group``."""
    user = _sign_up(live_server, "admin", content=False)
    summit = Path(sys.executable).with_name("summit")
    subprocess.run([str(summit), "identity", "add-to-group", user.username, "admins", "--data-dir", live_server.data_dir],
                   capture_output=True, text=True, timeout=60, check=True)
    with _http(live_server.url) as http:
        r = http.get("/api/v1/admin/groups", headers=user.auth)
    assert r.status_code == 200, r.text
    return user


@pytest.fixture(scope="session")
def session_user(live_server) -> ApiUser:  # noqa: ANN001
    """Signs in afresh for every example of the sign-out operations, which end its sessions."""
    return _sign_up(live_server, "sessions", content=False)


@pytest.fixture(scope="session")
def api_schema(live_server):  # noqa: ANN001, ANN201
    schema = schemathesis.openapi.from_url(live_server.url + "/api/v1/openapi.json", timeout=30)
    schema.config.update(base_url=live_server.url, request_timeout=30)
    return schema


def error_is_json_with_a_message(ctx, response, case) -> None:  # noqa: ANN001
    """Every 4xx of the JSON API is {"error": {"code", "message", "field"?}, "request_id"}."""
    if 400 <= response.status_code < 500 and case.path.startswith("/api/"):
        content_type = (response.headers.get("content-type") or [""])[0]
        assert content_type.startswith("application/json"), f"{response.status_code} with content-type {content_type!r}"
        assert_error_body(response.json())


CHECKS = [not_a_server_error, error_is_json_with_a_message]


def _known(case, user: ApiUser) -> None:  # noqa: ANN001
    """Now and then, aim a generated request at things that exist."""
    params = case.path_parameters
    if not params:
        return
    pick = sum(map(ord, repr(sorted(params.items())))) % 3
    if pick == 0:
        for name, value in (("username", user.username), ("post_id", user.post_id), ("comment_id", user.comment_id)):
            if name in params:
                params[name] = value


def _fuzz(operation, mode: GenerationMode, headers_for) -> None:  # noqa: ANN001
    examples = FEWER_EXAMPLES.get((operation.method.upper(), operation.path), MAX_EXAMPLES)

    @settings(BOUNDED, max_examples=examples)
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case) -> None:  # noqa: ANN001
        case.call_and_validate(headers=headers_for(case), checks=CHECKS)

    run()


# operations that would end the shared user's account or sessions for every later operation, or
# lock its sign-in (wrong current passwords count as failed attempts)
SIGN_OUTS = {("DELETE", "/api/v1/sessions"), ("DELETE", "/api/v1/sessions/all")}
OWN_ACCOUNT = {("POST", "/api/v1/me/password")}


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_server_errors(request, api_schema, api_user, session_user, live_server, method, path):  # noqa: ANN001
    operation = api_schema[path][method]
    if (method, path) == ("DELETE", "/api/v1/me"):
        # each example deletes a throwaway account, not the one the other operations use
        def with_token(case):  # noqa: ANN001, ANN202
            return _sign_up(live_server, "gone", content=False).auth
    elif (method, path) in SIGN_OUTS:
        def with_token(case):  # noqa: ANN001, ANN202
            return {"Authorization": f"Bearer {session_user.sign_in()}"}
    elif (method, path) in OWN_ACCOUNT:
        own = _sign_up(live_server, "own", content=False)
        headers = own.auth  # signed in once: wrong current passwords lock the account's sign-in

        def with_token(case):  # noqa: ANN001, ANN202
            return headers
    else:
        def with_token(case):  # noqa: ANN001, ANN202
            _known(case, api_user)
            return api_user.auth

    identities = [("with a token", with_token), ("without a token", lambda case: {})]
    if path.startswith("/api/v1/admin/"):  # a normal user gets 403s: fuzz the admin API as an admin too
        admin = request.getfixturevalue("admin_user")
        identities.append(("with an admin's token", lambda case: admin.auth))
    failures = []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        for label, headers_for in identities:
            try:
                _fuzz(operation, mode, headers_for)
            except Unsatisfiable:  # no invalid request exists (e.g. any string is a valid username)
                assert mode is GenerationMode.NEGATIVE, f"no valid cases for {method} {path}"
            except Exception as error:  # noqa: BLE001 - report every mode's failure, not the first
                failures.append(f"--- {method} {path}, {mode.value} cases, {label}:\n{error}")
    assert not failures, "\n".join(failures)
    # the shared user is still signed in: later operations are fuzzed with a working token
    with _http(live_server.url) as http:
        assert http.get("/api/v1/me", headers=api_user.auth).status_code == 200
