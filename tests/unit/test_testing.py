"""The test helpers that summit.testing ships: the manual clock, the error shape, mailed codes."""

from __future__ import annotations

import math
from pathlib import Path

import httpx
import pytest

from summit.ports.mail import MailMessage
from summit.testing.clock import T0, ManualClock
from summit.testing.http import CLIENT_ERROR, assert_error, assert_error_body
from summit.testing.mail import code_in, mailed_code
from summit.wiring import open_port

# ---- the manual clock -----------------------------------------------------------------------------


def test_the_clock_stands_still_until_advanced() -> None:
    clock = ManualClock()
    assert clock() == clock() == T0
    clock.advance(30.5)
    assert clock() == T0 + 30.5
    clock.advance(0)
    assert clock() == T0 + 30.5
    assert ManualClock(100.0)() == 100.0


@pytest.mark.parametrize("bad", [-1, -0.001, math.nan, math.inf])
def test_the_clock_never_runs_backwards_or_to_infinity(bad: float) -> None:
    clock = ManualClock()
    with pytest.raises(ValueError, match="forward"):
        clock.advance(bad)
    assert clock() == T0


# ---- the error shape ------------------------------------------------------------------------------


def response(status: int = 422, body: object = None, *, request_id: str = "req-1", **headers: str) -> httpx.Response:
    if body is None:
        body = {"error": {"code": "invalid", "message": "Caption is too long", "field": "caption"}, "request_id": "req-1"}
    return httpx.Response(
        status, json=body, headers={"x-request-id": request_id, **headers}, request=httpx.Request("POST", "http://t/api/v1/posts")
    )


def test_assert_error_returns_the_error_of_a_well_shaped_answer() -> None:
    assert assert_error(response(), 422, "caption", "TOO LONG") == {
        "code": "invalid", "message": "Caption is too long", "field": "caption"
    }
    assert assert_error(response(), CLIENT_ERROR)["code"] == "invalid"
    no_field = {"error": {"code": "not_found", "message": "no such post"}, "request_id": "req-1"}
    assert assert_error(response(404, no_field), 404, "post") == {"code": "not_found", "message": "no such post"}


@pytest.mark.parametrize(
    ("r", "status", "words"),
    [
        pytest.param(response(), 400, (), id="other-status"),
        pytest.param(response(500), CLIENT_ERROR, (), id="not-a-4xx"),
        pytest.param(response(), 422, ("photo",), id="word-not-in-message"),
        pytest.param(response(request_id="req-2"), 422, (), id="request-id-unlike-header"),
        pytest.param(response(**{"content-type": "text/html"}), 422, (), id="not-json"),
        pytest.param(response(body={"detail": "x"}), 422, (), id="another-shape"),
        pytest.param(response(body={"error": {"code": "x", "message": "m"}, "request_id": "req-1", "extra": 1}), 422, (), id="extra-key"),
        pytest.param(response(body={"error": {"code": "x", "message": ""}, "request_id": "req-1"}), 422, (), id="empty-message"),
        pytest.param(response(body={"error": {"code": "", "message": "m"}, "request_id": "req-1"}), 422, (), id="empty-code"),
        pytest.param(response(body={"error": {"code": "x", "message": "m", "field": 3}, "request_id": "req-1"}), 422, (), id="field-not-text"),
        pytest.param(response(body={"error": {"code": "x", "message": "m", "hint": "h"}, "request_id": "req-1"}), 422, (), id="unknown-error-key"),
    ],
)
def test_assert_error_fails_on_anything_else(r: httpx.Response, status: int | range, words: tuple[str, ...]) -> None:
    with pytest.raises(AssertionError):
        assert_error(r, status, *words)


def test_assert_error_body_checks_a_bare_body() -> None:
    assert_error_body({"error": {"code": "x", "message": "m"}, "request_id": "r"})
    for bad in ([], {"error": "x", "request_id": "r"}, {"error": {"code": "x", "message": "m"}, "request_id": ""}):
        with pytest.raises(AssertionError):
            assert_error_body(bad)


# ---- mailed codes ---------------------------------------------------------------------------------


def test_code_in_finds_six_digits_standing_alone() -> None:
    assert code_in("Summit Photos: your confirmation code is 042917") == "042917"
    for text in ("no code here", "1234567 is seven digits", "12345"):
        with pytest.raises(AssertionError, match="no six-digit code"):
            code_in(text)


@pytest.fixture
async def outbox(tmp_path: Path):  # noqa: ANN201
    mailer = open_port("mail", f"outbox://{tmp_path}/outbox")
    yield mailer
    await mailer.close()


async def test_mailed_code_reads_the_newest_mail_about_it(outbox) -> None:  # noqa: ANN001
    await outbox.send(MailMessage("alice@example.com", "Photos: your confirmation code is 111111", "Your code is 111111."))
    await outbox.send(MailMessage("bob@example.com", "Photos: your confirmation code is 222222", "Your code is 222222."))
    await outbox.send(MailMessage("alice@example.com", "Photos: your password reset code is 333333", "Your code is 333333."))
    await outbox.send(MailMessage("alice@example.com", "Photos: your password changed", "It was you, we hope."))
    assert await mailed_code(outbox, "alice@example.com") == "333333"
    assert await mailed_code(outbox, "Alice@Example.com", "confirmation") == "111111"
    assert await mailed_code(outbox, "alice@example.com", "password reset") == "333333"
    assert await mailed_code(outbox, "bob@example.com", "confirmation") == "222222"
    await outbox.send(MailMessage("alice@example.com", "Photos: your confirmation code is 444444", "Your code is 444444."))
    assert await mailed_code(outbox, "alice@example.com", "confirmation") == "444444"


async def test_mailed_code_says_what_is_missing(outbox) -> None:  # noqa: ANN001
    with pytest.raises(AssertionError, match="no mail about 'code' to carol@example.com"):
        await mailed_code(outbox, "carol@example.com")
    await outbox.send(MailMessage("carol@example.com", "Photos: your confirmation code is 555555", "Your code is 000000."))
    with pytest.raises(AssertionError):  # the text must say the code the subject says
        await mailed_code(outbox, "carol@example.com", "confirmation")
    with pytest.raises(AssertionError, match="reset"):
        await mailed_code(outbox, "carol@example.com", "reset")


async def test_mailed_code_needs_a_mail_port_that_keeps_mail() -> None:
    smtp = open_port("mail", "smtp://127.0.0.1:1025?from=noreply@example.com")  # never connects here
    try:
        with pytest.raises(TypeError, match="Outbox"):
            await mailed_code(smtp, "alice@example.com")
    finally:
        await smtp.close()
