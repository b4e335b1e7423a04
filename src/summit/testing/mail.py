"""The contract every adapter of the mail port passes.

    class TestMailer(MailerContract):
        backend = backend_fixture("mail")   # the adapters of summit.testing.backends

Each adapter is opened from its URL, fresh: nothing delivered yet. What arrived is read from the
engine when it has a server (its fixture's ``delivered()``, e.g. what an SMTP server received),
else through the mail port's ``Outbox``, by a second instance on the same URL as ``summit mail``
reads it. A subclass may instead provide the fixtures itself::

        @pytest.fixture
        async def mailer(self):
            mailer = MyMailer.from_url("...")   # fresh: nothing delivered yet
            yield mailer
            await mailer.close()

        @pytest.fixture
        def delivered(self, mailer):
            async def read() -> list[Delivered]:
                ...  # every message delivered so far, in any order
            return read

``mailed_code(outbox, email)`` reads the code of a confirmation or reset mail the way a user
would, through the mail port, for any test that needs one.

``Delivered`` is what arrived, in one shape for every adapter: ``Delivered.from_sent`` builds it
from an outbox's ``SentMail``, ``Delivered.from_smtp`` from the envelope recipients and the bytes
an SMTP server received. Bodies are compared without their trailing line breaks, since MIME
encoding ends a text part with one.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from summit.ports.mail import (
    MAX_BODY_BYTES,
    MAX_RECIPIENTS,
    MAX_SUBJECT_CHARS,
    InvalidMessage,
    MailError,
    Mailer,
    MailMessage,
    Outbox,
    SentMail,
)
from summit.testing.backends import Backend

ReadDelivered = Callable[[], Awaitable[list["Delivered"]]]
CODE = re.compile(r"\b(\d{6})\b")  # the six digits of a confirmation or reset code

UNICODE_SUBJECT = "Ваш код — 123456 ✓ 確認コード 😀"
UNICODE_TEXT = "Bonjour Zoë,\n\nvotre code : 123456 — это ваш код. 確認コード。 👍\n\nÀ bientôt\n"


@dataclass(frozen=True)
class Delivered:
    id: str
    to: tuple[str, ...]
    subject: str
    text: str
    html: str | None
    reply_to: str | None
    headers: Mapping[str, str]

    @classmethod
    def from_sent(cls, mail: SentMail) -> Delivered:
        return cls(mail.id, mail.to, mail.subject, mail.text, mail.html, mail.reply_to, dict(mail.headers))

    @classmethod
    def from_smtp(cls, recipients: Iterable[str], data: bytes) -> Delivered:
        """A message as an SMTP server received it: envelope recipients and the DATA bytes."""
        email = message_from_bytes(data, policy=policy.default)
        assert isinstance(email, EmailMessage)
        text = email.get_body(("plain",))
        html = email.get_body(("html",))
        return cls(
            id=str(email["Message-ID"]).strip().strip("<>"),
            to=tuple(recipients),
            subject=str(email["Subject"]),
            text=text.get_content() if text is not None else "",
            html=html.get_content() if html is not None else None,
            reply_to=str(email["Reply-To"]) if email["Reply-To"] is not None else None,
            headers={name: str(value) for name, value in email.items()},
        )


def code_in(text: str) -> str:
    """The six-digit code in ``text`` (a mail's subject, or a page that shows one)."""
    found = CODE.search(text)
    assert found, f"no six-digit code in {text!r}"
    return found.group(1)


async def mailed_code(outbox: Outbox, email: str, about: str = "code") -> str:
    """The code in the newest mail to ``email`` whose subject holds ``about`` ("confirmation",
    "password reset", ...), read through the mail port's ``Outbox``; the text says it too."""
    if not isinstance(outbox, Outbox):
        raise TypeError(f"{outbox!r} keeps no mail to read: mailed_code needs a mail port that is an Outbox")
    mails = await outbox.list(to=email)
    for mail in mails:
        if about in mail.subject:
            code = code_in(mail.subject)
            assert code in mail.text, mail
            return code
    raise AssertionError(f"no mail about {about!r} to {email}; its mails: {[m.subject for m in mails]}")


def same_body(delivered: str | None, sent: str | None) -> bool:
    if delivered is None or sent is None:
        return delivered is sent
    return delivered.replace("\r\n", "\n").rstrip("\n") == sent.replace("\r\n", "\n").rstrip("\n")


def message(**fields: object) -> MailMessage:
    values: dict = {"to": "alice@example.com", "subject": "Your code", "text": "Your code is 123456."}
    values.update(fields)
    return MailMessage(**values)


INJECTIONS = ["x\r\nBcc: victim@example.com", "x\nBcc: victim@example.com", "x\rBcc: victim@example.com"]
BAD_ADDRESSES = [
    "",
    "alice",
    "alice@",
    "@example.com",
    "alice@example",
    "alice@@example.com",
    "alice example@example.com",
    "Alice <alice@example.com>",
    "alice@exa mple.com",
    "alice@-example.com",
    "alice@example..com",
    "alice..x@example.com",
    ".alice@example.com",
    "alice@1.2.3.4",
    "a" * 65 + "@example.com",
    "alice@" + "a" * 250 + ".com",
    "zoë@example.com",
    "alice@example.com\x00",
    "alice@example.com,bob@example.com",
    "alice@example.com;bob@example.com",
]


class MailerContract:
    @pytest.fixture
    def backend(self) -> Backend:
        raise NotImplementedError('a subclass sets backend = backend_fixture("mail"), or provides `mailer`')

    @pytest.fixture
    async def mailer(self, backend: Backend):
        mailer = backend.open("mail")
        yield mailer
        await mailer.close()

    @pytest.fixture
    async def delivered(self, backend: Backend, mailer: Mailer):
        if callable(getattr(backend.engine, "delivered", None)):
            engine = backend.engine

            async def from_the_server() -> list[Delivered]:
                return list(engine.delivered())

            yield from_the_server
            return
        if not isinstance(mailer, Outbox):
            raise NotImplementedError(f"{backend.url}: provide `delivered`, the mailer keeps nothing to read")
        reader = backend.open("mail")

        async def from_the_outbox() -> list[Delivered]:
            return [Delivered.from_sent(mail) for mail in await reader.list(10_000)]

        yield from_the_outbox
        await reader.close()

    async def one(self, delivered: ReadDelivered, message_id: str) -> Delivered:
        found = [d for d in await delivered() if d.id == message_id]
        assert len(found) == 1, f"expected one delivered message with id {message_id!r}, found {len(found)}"
        return found[0]

    # delivery

    async def test_delivers_subject_text_and_recipient(self, mailer: Mailer, delivered: ReadDelivered) -> None:
        message_id = await mailer.send(message(text="Your code is 123456.\nIt expires in 10 minutes.\n"))
        assert isinstance(message_id, str) and message_id
        got = await self.one(delivered, message_id)
        assert got.to == ("alice@example.com",)
        assert got.subject == "Your code"
        assert same_body(got.text, "Your code is 123456.\nIt expires in 10 minutes.")
        assert got.html is None
        assert len(await delivered()) == 1

    async def test_delivers_html_beside_the_text(self, mailer: Mailer, delivered: ReadDelivered) -> None:
        html = "<p>Your code is <b>123456</b>.</p>"
        got = await self.one(delivered, await mailer.send(message(text="Your code is 123456.", html=html)))
        assert same_body(got.text, "Your code is 123456.")
        assert same_body(got.html, html)

    async def test_unicode_subject_and_bodies(self, mailer: Mailer, delivered: ReadDelivered) -> None:
        html = f"<p>{UNICODE_TEXT}</p>"
        got = await self.one(
            delivered, await mailer.send(message(subject=UNICODE_SUBJECT, text=UNICODE_TEXT, html=html))
        )
        assert got.subject == UNICODE_SUBJECT
        assert same_body(got.text, UNICODE_TEXT)
        assert same_body(got.html, html)

    async def test_long_lines_and_a_large_body(self, mailer: Mailer, delivered: ReadDelivered) -> None:
        text = ("word " * 400 + "\n") * 200  # lines of 2000 characters, 400 kB in all
        got = await self.one(delivered, await mailer.send(message(text=text)))
        assert same_body(got.text, text)

    async def test_multiple_recipients(self, mailer: Mailer, delivered: ReadDelivered) -> None:
        to = ["alice@example.com", "bob@example.org", "carol+codes@mail.example.net"]
        got = await self.one(delivered, await mailer.send(message(to=to)))
        assert sorted(got.to) == sorted(to)

    async def test_a_repeated_recipient_gets_one_copy(self, mailer: Mailer, delivered: ReadDelivered) -> None:
        got = await self.one(delivered, await mailer.send(message(to=["bob@example.com", "bob@example.com"])))
        assert got.to == ("bob@example.com",)

    async def test_reply_to_and_extra_headers(self, mailer: Mailer, delivered: ReadDelivered) -> None:
        headers = {"X-Summit-Purpose": "confirm", "Auto-Submitted": "auto-generated"}
        sent = message(reply_to="support@example.com", headers=headers)
        got = await self.one(delivered, await mailer.send(sent))
        assert got.reply_to == "support@example.com"
        assert got.headers["X-Summit-Purpose"] == "confirm"
        assert got.headers["Auto-Submitted"] == "auto-generated"

    async def test_message_ids_are_unique(self, mailer: Mailer, delivered: ReadDelivered) -> None:
        ids = await asyncio.gather(*(mailer.send(message(subject=f"message {n}")) for n in range(20)))
        ids += [await mailer.send(message(subject="one more"))]
        assert len(set(ids)) == 21
        arrived = await delivered()
        assert sorted(d.id for d in arrived) == sorted(ids)
        subjects = {d.id: d.subject for d in arrived}
        assert [subjects[i] for i in ids] == [f"message {n}" for n in range(20)] + ["one more"]

    # refused before anything is sent

    @pytest.mark.parametrize("injection", INJECTIONS)
    async def test_header_injection_is_refused(self, mailer: Mailer, delivered: ReadDelivered, injection: str) -> None:
        attempts = [
            {"subject": injection},
            {"to": "alice@example.com" + injection.removeprefix("x")},
            {"to": ["bob@example.com", injection + "@example.com"]},
            {"reply_to": "alice@example.com" + injection.removeprefix("x")},
            {"headers": {"X-Purpose": injection}},
            {"headers": {"X-Purpose\r\nBcc": "victim@example.com"}},
        ]
        for fields in attempts:
            with pytest.raises(InvalidMessage):
                await mailer.send(message(**fields))
        # a message altered after it was checked is checked again by send
        altered = message()
        object.__setattr__(altered, "subject", injection)
        with pytest.raises(InvalidMessage, match="line break"):
            await mailer.send(altered)
        assert await delivered() == []

    @pytest.mark.parametrize("field", ["subject", "header"])
    @pytest.mark.parametrize("char", ["\u2028", "\x0b", "\x85", "\x00", "\x1b"])
    async def test_other_line_breaks_and_controls_in_headers_are_refused(
        self, mailer: Mailer, field: str, char: str
    ) -> None:
        fields = {"subject": f"a{char}b"} if field == "subject" else {"headers": {"X-Purpose": f"a{char}b"}}
        with pytest.raises(InvalidMessage):
            await mailer.send(message(**fields))

    @pytest.mark.parametrize("address", BAD_ADDRESSES)
    async def test_invalid_addresses_are_refused(self, mailer: Mailer, delivered: ReadDelivered, address: str) -> None:
        with pytest.raises(InvalidMessage):
            await mailer.send(message(to=address))
        with pytest.raises(InvalidMessage):
            await mailer.send(message(to=["bob@example.com", address]))
        with pytest.raises(InvalidMessage):
            await mailer.send(message(reply_to=address))
        assert await delivered() == []

    async def test_good_addresses_of_many_shapes(self, mailer: Mailer, delivered: ReadDelivered) -> None:
        to = [
            "a@b.co",
            "first.last+tag@sub.example.co.uk",
            "o'neil_x-1@example-mail.com",
            "UPPER@EXAMPLE.COM",
            "x@xn--bcher-kva.example",
        ]
        got = await self.one(delivered, await mailer.send(message(to=to)))
        assert sorted(got.to) == sorted(to)

    async def test_limits(self, mailer: Mailer, delivered: ReadDelivered) -> None:
        await mailer.send(message(subject="s" * MAX_SUBJECT_CHARS))
        with pytest.raises(InvalidMessage, match="subject"):
            await mailer.send(message(subject="s" * (MAX_SUBJECT_CHARS + 1)))
        with pytest.raises(InvalidMessage, match="text and html"):
            await mailer.send(message(text="x" * (MAX_BODY_BYTES + 1)))
        with pytest.raises(InvalidMessage, match="text and html"):
            await mailer.send(message(text="x" * (MAX_BODY_BYTES // 2), html="é" * (MAX_BODY_BYTES // 4 + 1)))
        with pytest.raises(InvalidMessage, match="recipients"):
            await mailer.send(message(to=[f"user{n}@example.com" for n in range(MAX_RECIPIENTS + 1)]))
        assert len(await delivered()) == 1

    @pytest.mark.parametrize(
        "fields",
        [
            {"to": []},
            {"to": None},
            {"subject": ""},
            {"subject": "   "},
            {"subject": None},
            {"text": ""},
            {"text": 123},
            {"text": "bad \ud800 surrogate"},
            {"html": b"<p>bytes</p>"},
            {"headers": {"Subject": "a second subject"}},
            {"headers": {"bcc": "victim@example.com"}},
            {"headers": {"X-A": "1", "x-a": "2"}},
            {"headers": {"X A": "1"}},
            {"headers": {"X-Ünïcode": "1"}},
            {"headers": {"X-A": 1}},
            {"headers": [("X-A", "1")]},
        ],
    )
    async def test_malformed_messages_are_refused(self, mailer: Mailer, delivered: ReadDelivered, fields: dict) -> None:
        with pytest.raises(InvalidMessage):
            await mailer.send(message(**fields))
        assert await delivered() == []

    async def test_send_takes_a_mail_message(self, mailer: Mailer) -> None:
        with pytest.raises(TypeError, match="MailMessage"):
            await mailer.send({"to": "alice@example.com", "subject": "s", "text": "t"})  # type: ignore[arg-type]

    async def test_errors_form_one_family(self) -> None:
        assert issubclass(InvalidMessage, MailError) and issubclass(InvalidMessage, ValueError)

    async def test_a_closed_mailer_refuses_to_send(self, mailer: Mailer, delivered: ReadDelivered) -> None:
        await mailer.close()
        with pytest.raises(MailError, match="closed"):
            await mailer.send(message())
        await mailer.close()  # closing twice is harmless
        assert await delivered() == []
