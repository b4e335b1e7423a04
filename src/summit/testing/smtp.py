"""A real SMTP server for tests: aiosmtpd in the test's event loop, on a loopback port the OS picks.

    async with smtp_server() as smtpd:
        mailer = SmtpMailer.from_url(f"smtp://{smtpd.address}?from=noreply@example.com&starttls=false")
        ...
        smtpd.delivered()   # what it accepted, as summit.testing.mail.Delivered

Its ``capture`` can defer or refuse on a script, to test retries. Needs aiosmtpd (the test extra).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import NamedTuple

from aiosmtpd.smtp import SMTP as SMTPServer

from summit.testing.mail import Delivered


class Capture:
    """An aiosmtpd handler that keeps what it accepts and answers from a script when told to.

    ``rcpt_replies[address]`` and ``data_replies`` are lists of replies used up one per command
    ("451 ..." makes the server defer, "550 ..." refuse); when a list is empty, it accepts.
    """

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []
        self.rcpt_replies: dict[str, list[str]] = {}
        self.data_replies: list[str] = []
        self.data_commands = 0
        self.rcpt_commands: list[str] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:  # noqa: ANN001
        self.rcpt_commands.append(address)
        replies = self.rcpt_replies.get(address)
        if replies:
            return replies.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001
        self.data_commands += 1
        if self.data_replies:
            return self.data_replies.pop(0)
        self.messages.append((list(envelope.rcpt_tos), envelope.original_content))
        return "250 Message accepted for delivery"

    def delivered(self) -> list[Delivered]:
        return [Delivered.from_smtp(rcpts, data) for rcpts, data in self.messages]


class SmtpServer(NamedTuple):
    """A running aiosmtpd, which unpacks as ``capture, port``."""

    capture: Capture
    port: int

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def delivered(self) -> list[Delivered]:
        return self.capture.delivered()


@asynccontextmanager
async def smtp_server() -> AsyncIterator[SmtpServer]:
    capture = Capture()
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTPServer(capture, hostname="smtp.test"), "127.0.0.1", 0
    )
    try:
        yield SmtpServer(capture, server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()
