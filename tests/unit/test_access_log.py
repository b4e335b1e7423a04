"""The access log: one JSON line per request, buffered and written out by a thread."""

from __future__ import annotations

import io
import logging

import orjson
import pytest

from summit.web import logs


@pytest.fixture(autouse=True)
def access_level():  # noqa: ANN201
    """The access logger at INFO for the test (setLevel clears the logger's cache of levels)."""
    level = logs._access_logger.level
    logs._access_logger.setLevel(logging.INFO)
    yield
    logs._access_logger.setLevel(level)


def test_access_lines_are_json_and_reach_the_stream_when_flushed(monkeypatch) -> None:  # noqa: ANN001
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    lines = logs._Lines(handler)
    monkeypatch.setattr(logs, "_access_lines", lines)
    for n in range(3):
        logs.access(f"rid{n}", method="GET", path=f"/p/{n}", route="/p/{post_id}", status=200, duration_ms=0.5)
    logs.flush_access_log()
    written = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    assert [w["request_id"] for w in written] == ["rid0", "rid1", "rid2"]
    assert written[0]["event"] == "request" and written[0]["logger"] == "summit.access"
    assert written[0]["route"] == "/p/{post_id}" and written[0]["status"] == 200
    assert written[0]["timestamp"].endswith("Z")


def test_a_disabled_access_logger_writes_nothing(monkeypatch) -> None:  # noqa: ANN001
    stream = io.StringIO()
    monkeypatch.setattr(logs, "_access_lines", logs._Lines(logging.StreamHandler(stream)))
    logs._access_logger.setLevel(logging.WARNING)
    logs.access("rid", method="GET", path="/", route="/", status=200, duration_ms=1.0)
    logs.flush_access_log()
    assert stream.getvalue() == ""
