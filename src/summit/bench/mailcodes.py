"""The confirmation codes the stage mails to the users the bench seeds, read through the mail port.

The stage's mail port comes from its blueprint through the wiring, as the app opens it; reading
back what was sent is the port's optional ``Outbox`` ability. A mailer without it (SMTP sends the
mail away) cannot give the codes back, so the bench refuses it before it starts anything.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from summit.bench.options import BenchError
from summit.ports.mail import Outbox
from summit.wiring import open_port

CODE = re.compile(r"\b(\d{6})\b")


class CodeReader:
    """``await reader.code(email)``: the newest six-digit code mailed to ``email`` (subject first,
    then the text), waiting up to ``wait`` seconds for the message to arrive; None if none came."""

    def __init__(self, outbox: Outbox, url: str, *, wait: float = 5.0, poll: float = 0.1):
        self.outbox = outbox
        self.url = url
        self.wait = wait
        self.poll = poll

    async def code(self, email: str) -> str | None:
        for _ in range(max(1, int(self.wait / self.poll))):
            mails = await self.outbox.list(limit=1, to=email)
            if mails:
                found = CODE.search(mails[0].subject) or CODE.search(mails[0].text)
                if found:
                    return found.group(1)
            await asyncio.sleep(self.poll)
        return None

    async def close(self) -> None:
        close = getattr(self.outbox, "close", None)
        if close is not None:
            await close()


def open_reader(blueprint: Any) -> CodeReader:
    """A reader of the mail the stage of ``blueprint`` sends, or BenchError saying what to change."""
    url = blueprint.port_url("mail")
    try:
        mailer = open_port("mail", url)
    except (ValueError, ImportError) as error:
        raise BenchError(f"the stage's mail port ({url}) cannot be opened: {error}") from None
    if not isinstance(mailer, Outbox):
        asyncio.run(mailer.close())
        raise BenchError(
            f"the stage's mail port ({url}) sends mail away and cannot read it back, so the bench cannot confirm the "
            "users it seeds: benchmark the stage with a mailer that keeps what it sends, an outbox: set ports.mail "
            "in the blueprint to 'outbox://{data_dir}/outbox' (the stage 1 default)"
        )
    return CodeReader(mailer, url)
