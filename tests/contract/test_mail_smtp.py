"""What is particular to SMTP, against a real aiosmtpd server on a free loopback port (``smtpd``, see
conftest.py): the MIME message, retries on 4xx and lost connections, no retry on 5xx. The mail
contract runs on it in ``test_mail.py``."""

from __future__ import annotations

import asyncio
import socket
import time
from email import message_from_bytes, policy
from email.utils import parsedate_to_datetime

import pytest

from summit.adapters.smtp.mailer import SmtpMailer
from summit.ports.mail import InvalidMessage, MailDeliveryError
from summit.testing.backends import SENDER
from summit.testing.mail import Delivered, message, same_body
from summit.testing.smtp import SmtpServer
from summit.wiring import adapter_class, open_port

pytestmark = pytest.mark.smtp
FAST = "retries=2&backoff=0.01&timeout=5"  # retries that keep a failing test short


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# the MIME message


async def test_a_proper_mime_message(smtpd: SmtpServer) -> None:
    capture, port = smtpd
    mailer = SmtpMailer.from_url(f"smtp://127.0.0.1:{port}?from={SENDER}&starttls=false")
    message_id = await mailer.send(
        message(to=["alice@example.com", "bob@example.com"], subject="Код", text="Code: 123", html="<b>123</b>")
    )
    [(rcpts, data)] = capture.messages
    assert rcpts == ["alice@example.com", "bob@example.com"]
    email = message_from_bytes(data, policy=policy.default)
    assert email["From"] == SENDER
    assert email["To"] == "alice@example.com, bob@example.com"
    assert email["Subject"] == "Код"
    assert "=?utf-8?" in data.decode("ascii").split("\r\n\r\n")[0].lower()  # the subject is RFC 2047 encoded
    assert email["Message-ID"] == f"<{message_id}>" and message_id.endswith("@summit.example")
    assert abs(time.time() - parsedate_to_datetime(email["Date"]).timestamp()) < 60
    assert email["MIME-Version"] == "1.0"
    assert email.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in email.iter_parts()] == ["text/plain", "text/html"]
    assert "Bcc" not in email and "Reply-To" not in email


async def test_text_only_is_a_single_part(smtpd: SmtpServer) -> None:
    capture, port = smtpd
    await SmtpMailer.from_url(f"smtp://127.0.0.1:{port}?from={SENDER}").send(message(text="plain"))
    email = message_from_bytes(capture.messages[0][1], policy=policy.default)
    assert email.get_content_type() == "text/plain" and email.get_content_charset() in ("us-ascii", "utf-8", None)


# retries


async def test_a_4xx_reply_is_retried_then_delivered(smtpd: SmtpServer) -> None:
    capture, port = smtpd
    capture.data_replies = ["451 4.3.0 Try again later"]
    mailer = SmtpMailer.from_url(f"smtp://127.0.0.1:{port}?from={SENDER}&{FAST}")
    message_id = await mailer.send(message())
    assert capture.data_commands == 2
    assert [d.id for d in capture.delivered()] == [message_id]


async def test_a_deferred_recipient_is_retried_alone_with_the_same_message_id(smtpd: SmtpServer) -> None:
    capture, port = smtpd
    capture.rcpt_replies["bob@example.com"] = ["450 4.2.1 Mailbox busy"]
    mailer = SmtpMailer.from_url(f"smtp://127.0.0.1:{port}?from={SENDER}&{FAST}")
    message_id = await mailer.send(message(to=["alice@example.com", "bob@example.com"]))
    assert [(d.to, d.id) for d in capture.delivered()] == [
        (("alice@example.com",), message_id),
        (("bob@example.com",), message_id),
    ]


async def test_a_5xx_reply_fails_at_once(smtpd: SmtpServer) -> None:
    capture, port = smtpd
    capture.data_replies = ["554 5.7.1 Rejected as spam"] * 5
    mailer = SmtpMailer.from_url(f"smtp://127.0.0.1:{port}?from={SENDER}&{FAST}")
    with pytest.raises(MailDeliveryError, match="554 5.7.1 Rejected as spam") as caught:
        await mailer.send(message())
    assert (caught.value.transient, caught.value.code, caught.value.attempts) == (False, 554, 1)
    assert capture.data_commands == 1 and capture.messages == []


async def test_a_refused_recipient_fails_at_once(smtpd: SmtpServer) -> None:
    capture, port = smtpd
    capture.rcpt_replies["nobody@example.com"] = ["550 5.1.1 No such user"] * 5
    mailer = SmtpMailer.from_url(f"smtp://127.0.0.1:{port}?from={SENDER}&{FAST}")
    with pytest.raises(MailDeliveryError, match="nobody@example.com: 550 5.1.1 No such user") as caught:
        await mailer.send(message(to="nobody@example.com"))
    assert (caught.value.transient, caught.value.code, caught.value.attempts) == (False, 550, 1)
    assert capture.rcpt_commands == ["nobody@example.com"]


async def test_some_recipients_refused_the_others_still_get_it(smtpd: SmtpServer) -> None:
    capture, port = smtpd
    capture.rcpt_replies["nobody@example.com"] = ["550 5.1.1 No such user"]
    mailer = SmtpMailer.from_url(f"smtp://127.0.0.1:{port}?from={SENDER}&{FAST}")
    expected = r"nobody@example.com: 550.*\(delivered to alice@example.com\)"
    with pytest.raises(MailDeliveryError, match=expected) as caught:
        await mailer.send(message(to=["alice@example.com", "nobody@example.com"]))
    assert caught.value.transient is False
    assert [d.to for d in capture.delivered()] == [("alice@example.com",)]


async def test_4xx_every_time_gives_up_after_the_retries(smtpd: SmtpServer) -> None:
    capture, port = smtpd
    capture.data_replies = ["421 4.7.0 Too busy"] * 10
    mailer = SmtpMailer.from_url(f"smtp://127.0.0.1:{port}?from={SENDER}&{FAST}")
    with pytest.raises(MailDeliveryError, match="after 3 attempt") as caught:
        await mailer.send(message())
    assert (caught.value.transient, caught.value.code, caught.value.attempts) == (True, 421, 3)
    assert capture.data_commands == 3


async def test_connection_refused_fails_after_bounded_retries_quickly() -> None:
    port = free_port()  # nothing listens there
    mailer = SmtpMailer.from_url(f"smtp://127.0.0.1:{port}?from={SENDER}&{FAST}")
    start = time.monotonic()
    with pytest.raises(MailDeliveryError, match=f"127.0.0.1:{port} failed after 3 attempt") as caught:
        await mailer.send(message())
    assert time.monotonic() - start < 3
    assert (caught.value.transient, caught.value.code, caught.value.attempts) == (True, None, 3)


async def test_a_server_that_never_answers_times_out() -> None:
    writers: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await reader.read()  # never greets; returns when the client hangs up

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        mailer = SmtpMailer.from_url(f"smtp://127.0.0.1:{port}?from={SENDER}&retries=1&backoff=0.01&timeout=0.3")
        start = time.monotonic()
        with pytest.raises(MailDeliveryError) as caught:
            await mailer.send(message())
        assert time.monotonic() - start < 3
        assert caught.value.transient is True and caught.value.attempts == 2
        assert len(writers) == 2
    finally:
        server.close()
        for writer in writers:
            writer.close()
            await writer.wait_closed()
        await server.wait_closed()


async def test_invalid_messages_never_reach_the_server(smtpd: SmtpServer) -> None:
    capture, port = smtpd
    mailer = SmtpMailer.from_url(f"smtp://127.0.0.1:{port}?from={SENDER}")
    with pytest.raises(InvalidMessage):
        await mailer.send(message(subject="a\r\nBcc: victim@example.com"))
    assert capture.rcpt_commands == [] and capture.data_commands == 0


# the URL


def test_url_options() -> None:
    mailer = SmtpMailer.from_url(f"smtp://mail.example.com?from={SENDER}")
    assert (mailer.host, mailer.port, mailer.sender, mailer.start_tls, mailer.use_tls) == (
        "mail.example.com", 25, SENDER, None, False
    )
    assert (mailer.timeout, mailer.retries, mailer.backoff, mailer.validate_certs) == (10.0, 3, 0.5, True)
    options = f"from={SENDER}&starttls=true&timeout=3&retries=0"
    mailer = SmtpMailer.from_url(f"smtp://u%40x:p%3Ass@mail.example.com?{options}")
    assert (mailer.port, mailer.start_tls, mailer.timeout, mailer.retries) == (587, True, 3.0, 0)
    assert (mailer._username, mailer._password) == ("u@x", "p:ss")
    assert "p:ss" not in repr(mailer) and "p%3Ass" not in repr(mailer)
    mailer = SmtpMailer.from_url(f"smtp+ssl://smtp.example.com?from={SENDER}&validate_certs=false")
    assert (mailer.port, mailer.use_tls, mailer.start_tls, mailer.validate_certs) == (465, True, False, False)
    assert SmtpMailer.from_url(f"smtp://[::1]:2525?from={SENDER}&starttls=false").host == "::1"
    assert SmtpMailer.from_url(f"smtp://user:pw@127.0.0.1:1025?from={SENDER}").port == 1025  # loopback: allowed


def test_the_wiring() -> None:
    assert adapter_class("mail", "smtp://h?from=a@b.co") is SmtpMailer
    assert adapter_class("mail", "smtp+ssl://h?from=a@b.co") is SmtpMailer
    assert isinstance(open_port("mail", f"smtp://localhost:1025?from={SENDER}"), SmtpMailer)


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("smtp://mail.example.com", "from=sender@example.com is required"),
        ("smtp://mail.example.com?from=", "from=sender@example.com is required"),
        ("smtp://mail.example.com?from=nobody", "sender is not a usable address"),
        ("smtp://?from=a@b.co", "smtp://host:port"),
        ("smtp://mail.example.com/path?from=a@b.co", "smtp://host:port"),
        ("smtp://mail.example.com:99999?from=a@b.co", "port is not a number"),
        ("smtp://mail.example.com:x?from=a@b.co", "port is not a number"),
        ("smtp://mail.example.com?from=a@b.co&tls=1", "unknown option tls"),
        ("smtp://mail.example.com?from=a@b.co&starttls=maybe", "starttls is auto, true or false"),
        ("smtp://mail.example.com?from=a@b.co&timeout=soon", "timeout must be a number"),
        ("smtp://mail.example.com?from=a@b.co&timeout=0", "timeout must be more than 0"),
        ("smtp://mail.example.com?from=a@b.co&timeout=nan", "timeout must be more than 0"),
        ("smtp://mail.example.com?from=a@b.co&retries=1.5", "retries must be an integer"),
        ("smtp://mail.example.com?from=a@b.co&retries=11", "retries must be an integer from 0 to 10"),
        ("smtp://mail.example.com?from=a@b.co&backoff=-1", "backoff must be from 0"),
        ("smtp://mail.example.com?from=a@b.co&validate_certs=perhaps", "validate_certs is true or false"),
        ("smtp+ssl://mail.example.com?from=a@b.co&starttls=true", "cannot also use STARTTLS"),
        ("smtp://user:pw@mail.example.com?from=a@b.co", "credentials would cross the network in clear"),
        ("smtp://user:pw@mail.example.com?from=a@b.co&starttls=false", "credentials would cross the network in clear"),
        ("smtps://mail.example.com?from=a@b.co", "smtp:// or smtp\\+ssl://"),
    ],
)
def test_url_errors(url: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        SmtpMailer.from_url(url)


def test_bodies_survive_the_round_trip_exactly() -> None:
    mailer = SmtpMailer.from_url(f"smtp://localhost?from={SENDER}")
    text = "line one\n.line starting with a dot\n\nFrom the start of a line\n" + "x" * 1500 + "\n"
    email, message_id = mailer.build(message(text=text, html="<p>é</p>"))
    delivered = Delivered.from_smtp(["alice@example.com"], email.as_bytes(policy=policy.SMTP))
    assert delivered.id == message_id
    assert same_body(delivered.text, text) and same_body(delivered.html, "<p>é</p>")
