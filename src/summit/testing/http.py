"""What every refused request of the JSON API looks like, asserted in one place.

    error = assert_error(r, 422, "caption")   # the status, the shape, and a message naming "caption"
    assert error["field"] == "caption"

The shape is ``{"error": {"code", "message", "field"?}, "request_id"}``, with the request id that
the ``X-Request-ID`` header carries too, so a client can quote it when it reports the error.
"""

from __future__ import annotations

from typing import Any

from summit.web.consistency import COOKIE as READ_POSITION_COOKIE

CLIENT_ERROR = range(400, 500)  # any 4xx: for input whose exact status does not matter


def assert_error(response: Any, status: int | range, *words: str) -> dict[str, Any]:
    """Assert the error shape with ``status`` (or a status in that range), whose message holds each
    of ``words`` (ignoring case); return the ``error`` object. ``response`` is an httpx response."""
    request = response.request
    where = f"{request.method} {request.url.path} -> {response.status_code}: {response.text[:500]}"
    if isinstance(status, range):
        assert response.status_code in status, where
    else:
        assert response.status_code == status, where
    assert response.headers.get("content-type", "").startswith("application/json"), (where, response.headers)
    body = response.json()
    assert_error_body(body)
    assert body["request_id"] == response.headers.get("x-request-id"), (body, response.headers)
    message = body["error"]["message"]
    for word in words:
        assert word.lower() in message.lower(), (word, body)
    return body["error"]


def assert_error_body(body: Any) -> None:
    """The error shape alone, for a body whose response is not an httpx one (schemathesis)."""
    assert isinstance(body, dict) and set(body) == {"error", "request_id"}, body
    error = body["error"]
    assert isinstance(error, dict) and set(error) <= {"code", "message", "field"}, body
    assert isinstance(error.get("code"), str) and error["code"], body
    assert isinstance(error.get("message"), str) and error["message"], body
    assert isinstance(error.get("field", ""), str), body
    assert isinstance(body["request_id"], str) and body["request_id"], body


def session_cookies(response: Any) -> list[str]:
    """The cookies a response sets, but for the read-position cookie that any write may set where
    there are replicas (where a client's latest write is: no session)."""
    return [c for c in response.headers.get_list("set-cookie") if not c.startswith(READ_POSITION_COOKIE + "=")]
