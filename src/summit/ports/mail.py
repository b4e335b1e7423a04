"""The mail port: send a message to one or more addresses; get back its message id.

A ``MailMessage`` is checked when it is built (and again by ``send``): addresses shaped like
``name@domain``, no line break or other control character in any header value (header injection
is refused), a subject of at most ``MAX_SUBJECT_CHARS``, bodies of at most ``MAX_BODY_BYTES``.
Errors: ``InvalidMessage`` (bad input, a ``ValueError``), ``MailDeliveryError`` (the transport gave
up: ``transient`` says whether trying later may work), both ``MailError``.

The sender (``From``) is the adapter's, set in its URL; a message may carry a ``reply_to``.

An adapter that keeps what it sends so that a developer can read it (the embedded outbox) is also
an ``Outbox``: ``await mailer.list(limit, to=...)`` gives the newest ``SentMail`` first.
"""

from __future__ import annotations

import abc
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from summit import telemetry

MAX_RECIPIENTS = 50
MAX_SUBJECT_CHARS = 255
MAX_BODY_BYTES = 1024 * 1024  # text and html together, UTF-8 encoded
MAX_HEADERS = 20
MAX_HEADER_CHARS = 900  # a header's value; RFC 5322 caps a line at 998 octets
MAX_ADDRESS_CHARS = 254  # RFC 5321's path limit, less the angle brackets
MAX_LOCAL_PART_CHARS = 64

# RFC 5322 dot-atom local part; a domain of at least two DNS labels, the last not all digits
_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_FIELD_NAME = re.compile(r"[!-9;-~]{1,76}")  # printable ASCII but ':' (RFC 5322 3.6.8)
# headers the adapters write themselves; a message cannot set them through `headers`
RESERVED_HEADERS = frozenset(
    name.lower()
    for name in (
        "From", "Sender", "To", "Cc", "Bcc", "Reply-To", "Subject", "Date", "Message-ID",
        "MIME-Version", "Content-Type", "Content-Transfer-Encoding", "Content-Disposition",
        "Return-Path", "Received",
    )
)


class MailError(Exception):
    """Base of the mail port's errors; adapters wrap their driver's errors in it."""


class InvalidMessage(MailError, ValueError):
    """The message cannot be sent as it is (a bad address, header injection, too long ...)."""


class MailDeliveryError(MailError):
    """The transport did not accept the message.

    ``transient`` is True when trying again later may work (a 4xx reply, a connection that failed
    or timed out, after the adapter's own retries), False when it will not (a 5xx reply).
    ``code`` is the SMTP reply code when there was one; ``attempts`` how many times it was tried.
    """

    def __init__(self, message: str, *, transient: bool, code: int | None = None, attempts: int = 1):
        super().__init__(message)
        self.transient = transient
        self.code = code
        self.attempts = attempts


@dataclass(frozen=True, init=False)
class MailMessage:
    """One message: ``to`` is one address or several, ``text`` the plain body, ``html`` optional."""

    to: tuple[str, ...]
    subject: str
    text: str
    html: str | None
    reply_to: str | None
    headers: Mapping[str, str]

    def __init__(
        self,
        to: str | Iterable[str],
        subject: str,
        text: str,
        html: str | None = None,
        reply_to: str | None = None,
        headers: Mapping[str, str] | None = None,
    ):
        if isinstance(to, str):
            to = (to,)
        elif isinstance(to, Iterable):
            to = tuple(to)
            if all(isinstance(address, str) for address in to):
                to = tuple(dict.fromkeys(to))  # the same address twice gets one copy
        if headers is not None and not isinstance(headers, Mapping):
            raise InvalidMessage(f"headers is a mapping of names to values, got {type(headers).__name__}")
        for name, value in (
            ("to", to),
            ("subject", subject),
            ("text", text),
            ("html", html),
            ("reply_to", reply_to),
            ("headers", MappingProxyType(dict(headers or {}))),
        ):
            object.__setattr__(self, name, value)
        check_message(self)


@dataclass(frozen=True)
class SentMail:
    """A message as an ``Outbox`` kept it."""

    id: str
    to: tuple[str, ...]
    subject: str
    text: str
    html: str | None
    reply_to: str | None
    headers: Mapping[str, str]
    sent_at: datetime  # aware, UTC


class Mailer(abc.ABC):
    """Send mail."""

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        telemetry.instrument(cls, "mail", {"send": "send"})

    @classmethod
    @abc.abstractmethod
    def from_url(cls, url: str) -> Mailer: ...

    @abc.abstractmethod
    async def send(self, message: MailMessage) -> str:
        """Deliver ``message`` (checked with ``check_message``) and return its message id, unique.

        Raises InvalidMessage before anything is sent, MailDeliveryError if delivery failed.
        """

    async def close(self) -> None:
        """Release connections; the mailer is not used after this."""


class Outbox(abc.ABC):
    """Does the mailer keep what it sent where a developer (or a test) can read it?"""

    @abc.abstractmethod
    async def list(self, limit: int = 50, to: str | None = None) -> list[SentMail]:
        """The ``limit`` newest messages, newest first; only those sent to ``to`` if given
        (compared without regard to case)."""


def check_message(message: MailMessage) -> MailMessage:
    """Raise InvalidMessage (naming the field) unless ``message`` can be sent as it is."""
    if not isinstance(message, MailMessage):
        raise TypeError(f"send() takes a MailMessage, got {type(message).__name__}")
    if not isinstance(message.to, tuple):
        raise InvalidMessage(f"to: an address or a list of addresses, got {type(message.to).__name__}")
    if not message.to:
        raise InvalidMessage("to: a message needs at least one recipient address")
    if len(message.to) > MAX_RECIPIENTS:
        raise InvalidMessage(f"to: at most {MAX_RECIPIENTS} recipients per message, got {len(message.to)}")
    for address in message.to:
        check_address(address, "to")
    if message.reply_to is not None:
        check_address(message.reply_to, "reply_to")
    subject = _check_str(message.subject, "subject")
    if not subject.strip():
        raise InvalidMessage("subject: a message needs a subject")
    if len(subject) > MAX_SUBJECT_CHARS:
        raise InvalidMessage(f"subject: at most {MAX_SUBJECT_CHARS} characters, got {len(subject)}")
    _check_header_value(subject, "subject")
    size = len(_check_str(message.text, "text").encode())
    if not message.text.strip():
        raise InvalidMessage("text: a message needs a plain-text body (html alone is not enough)")
    if message.html is not None:
        size += len(_check_str(message.html, "html").encode())
    if size > MAX_BODY_BYTES:
        raise InvalidMessage(f"text and html: at most {MAX_BODY_BYTES} bytes together, got {size}")
    if len(message.headers) > MAX_HEADERS:
        raise InvalidMessage(f"headers: at most {MAX_HEADERS}, got {len(message.headers)}")
    seen: set[str] = set()
    for name, value in message.headers.items():
        if not isinstance(name, str) or not _FIELD_NAME.fullmatch(name):
            raise InvalidMessage(f"headers: {name!r} is not a header name (printable ASCII, no ':' or space)")
        if name.lower() in RESERVED_HEADERS:
            raise InvalidMessage(f"headers: {name} is set by the mailer; use the message's own fields")
        if name.lower() in seen:
            raise InvalidMessage(f"headers: {name} is given twice (names are case-insensitive)")
        seen.add(name.lower())
        _check_str(value, f"header {name}")
        if len(value) > MAX_HEADER_CHARS:
            raise InvalidMessage(f"header {name}: at most {MAX_HEADER_CHARS} characters, got {len(value)}")
        _check_header_value(value, f"header {name}")
    return message


def check_address(address: str, what: str = "address") -> str:
    """Raise InvalidMessage unless ``address`` is shaped like ``name@example.com`` (ASCII)."""
    _check_str(address, what)
    _check_header_value(address, what)
    if not address.isascii():
        raise InvalidMessage(f"{what}: {address!r} has non-ASCII characters (write the domain as xn--...)")
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise InvalidMessage(f"{what}: {address!r} is not an address like name@example.com")
    if len(address) > MAX_ADDRESS_CHARS or len(local) > MAX_LOCAL_PART_CHARS:
        raise InvalidMessage(
            f"{what}: {address!r} is too long ({MAX_LOCAL_PART_CHARS} before '@', {MAX_ADDRESS_CHARS} in all)"
        )
    if not _LOCAL.fullmatch(local):
        raise InvalidMessage(f"{what}: {address!r}: the part before '@' has a character an address cannot hold")
    labels = domain.split(".")
    if len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels) or labels[-1].isdigit():
        raise InvalidMessage(f"{what}: {address!r}: {domain!r} is not a domain like example.com")
    return address


def _check_str(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidMessage(f"{what}: a string, got {type(value).__name__}")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise InvalidMessage(f"{what}: not valid Unicode (a lone surrogate)") from None
    return value


def _check_header_value(value: str, what: str) -> None:
    for char in value:
        if char in "\r\n" or (char != "\t" and unicodedata.category(char) in ("Cc", "Zl", "Zp")):
            kind = "a line break" if char in "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029" else "a control character"
            raise InvalidMessage(
                f"{what}: {value!r} contains {kind} ({char!r}); header values are one line "
                "(a line break there would let the value add headers of its own)"
            )
