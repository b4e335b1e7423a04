"""Schemathesis against the OpenAPI document of a real `summit up`: generated requests, valid and
invalid, to every operation, with a real token and without one, never get a 5xx; a 4xx of the JSON
API is the JSON error shape with a message.

One test per operation (the list comes from the app's own OpenAPI document, so a new endpoint is
fuzzed without editing this file); each test loads the document from the live server with
``schemathesis.openapi.from_url`` and drives the operation's Hypothesis strategies. (schemathesis'
``pytest.from_fixture`` lazy loader does not run under pytest 9: it writes ``Function._nodeid``.)
Bounded for speed: a few dozen examples per operation and mode, no deadline, no example database.
"""

from __future__ import annotations

import io
import itertools
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


@dataclass
class ApiUser:
    token: str
    username: str
    post_id: str
    comment_id: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def _sign_up(url: str, prefix: str) -> ApiUser:
    """A real user made over HTTP, with a post and a comment."""
    username = f"{prefix}{next(_accounts)}"
    password = "correct horse 1"
    with httpx.Client(base_url=url, timeout=30) as http:
        r = http.post("/api/v1/accounts", json={"username": username, "email": f"{username}@example.com", "password": password})
        assert r.status_code == 201, r.text
        r = http.post("/api/v1/sessions", json={"login": username, "password": password})
        assert r.status_code == 201, r.text
        token = r.json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        photo = io.BytesIO()
        Image.new("RGB", (32, 32), "teal").save(photo, "JPEG")
        r = http.post("/api/v1/posts", headers=headers, files={"photo": ("a.jpg", photo.getvalue(), "image/jpeg")}, data={"caption": "#fuzz"})
        assert r.status_code == 201, r.text
        post_id = r.json()["id"]
        r = http.post(f"/api/v1/posts/{post_id}/comments", headers=headers, json={"body": "seed"})
        assert r.status_code == 201, r.text
    return ApiUser(token, username, post_id, r.json()["id"])


@pytest.fixture(scope="session")
def api_user(live_server) -> ApiUser:  # noqa: ANN001
    return _sign_up(live_server.url, "fuzzer")


@pytest.fixture(scope="session")
def api_schema(live_server):  # noqa: ANN001, ANN201
    schema = schemathesis.openapi.from_url(live_server.url + "/api/v1/openapi.json", timeout=30)
    schema.config.update(base_url=live_server.url, request_timeout=30)
    return schema


def error_is_json_with_a_message(ctx, response, case) -> None:  # noqa: ANN001
    """Every 4xx of the JSON API is {"error": {"code", "message", ...}, "request_id"}."""
    if 400 <= response.status_code < 500 and case.path.startswith("/api/"):
        content_type = (response.headers.get("content-type") or [""])[0]
        assert content_type.startswith("application/json"), f"{response.status_code} with content-type {content_type!r}"
        body = response.json()
        assert isinstance(body, dict) and isinstance(body.get("error"), dict), body
        assert body["error"].get("code") and body["error"].get("message"), body
        assert body.get("request_id"), body


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


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_server_errors(api_schema, api_user, live_server, method, path):  # noqa: ANN001
    operation = api_schema[path][method]
    if (method, path) == ("DELETE", "/api/v1/me"):
        # each example deletes a throwaway account, not the one the other operations use
        def with_token(case):  # noqa: ANN001, ANN202
            return _sign_up(live_server.url, "gone").auth
    else:
        def with_token(case):  # noqa: ANN001, ANN202
            _known(case, api_user)
            return api_user.auth

    failures = []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        for label, headers_for in (("with a token", with_token), ("without a token", lambda case: {})):
            try:
                _fuzz(operation, mode, headers_for)
            except Unsatisfiable:  # no invalid request exists (e.g. any string is a valid username)
                assert mode is GenerationMode.NEGATIVE, f"no valid cases for {method} {path}"
            except Exception as error:  # noqa: BLE001 - report every mode's failure, not the first
                failures.append(f"--- {method} {path}, {mode.value} cases, {label}:\n{error}")
    assert not failures, "\n".join(failures)
