"""The mail port on an SMTP server, through aiosmtplib (the ``smtp`` extra).

    smtp://mail.example.com:587?from=noreply@example.com&starttls=true
    smtp://user:password@relay.internal?from=noreply@example.com&starttls=true
    smtp+ssl://smtp.example.com?from=noreply@example.com          (implicit TLS, port 465)
    smtp://127.0.0.1:1025?from=noreply@example.com&starttls=false  (a local test server)

Options: ``from`` (required: the sender, in From and in the envelope), ``starttls`` (``auto``, the
default: upgrade when the server offers it; ``true``: require it; ``false``: never), ``timeout``
(seconds per SMTP step, default 10), ``retries`` (default 3) and ``backoff`` (seconds before the
first retry, doubled each time, default 0.5), ``validate_certs`` (default true). The port defaults
to 465 with ``smtp+ssl``, 587 with ``starttls=true``, 25 otherwise. User and password are
percent-decoded; they are refused on a connection that is not encrypted, except to loopback.

Each send opens a connection, sends, and quits. A transient failure (a 4xx reply, a connection
refused, dropped or timed out) is retried ``retries`` times with backoff; a permanent one (a 5xx
reply) raises MailDeliveryError at once. When the server refuses some recipients only, the
message still goes to the others; recipients refused with 4xx are retried alone (with the same
Message-ID), and any refused for good are named in the MailDeliveryError raised at the end.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import ssl
from email.errors import MessageError
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from summit.ports.mail import (
    InvalidMessage,
    MailDeliveryError,
    MailError,
    Mailer,
    MailMessage,
    check_address,
    check_message,
)

logger = logging.getLogger("summit.mail")

_OPTIONS = ("from", "starttls", "timeout", "retries", "backoff", "validate_certs")
_MAX_DELAY = 30.0  # seconds: the longest wait between two attempts
_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


class SmtpMailer(Mailer):
    def __init__(
        self,
        host: str,
        port: int | None = None,
        *,
        sender: str,
        use_tls: bool = False,
        start_tls: bool | None = None,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.5,
        username: str | None = None,
        password: str | None = None,
        validate_certs: bool = True,
    ):
        """``start_tls``: None upgrades when the server offers STARTTLS, True requires it."""
        if not host:
            raise ValueError("the SMTP mailer needs a host")
        try:
            check_address(sender, "from")
        except InvalidMessage as error:
            raise ValueError(f"the sender is not a usable address: {error}") from None
        if use_tls and start_tls:
            raise ValueError("smtp+ssl:// is already encrypted: it cannot also use STARTTLS")
        if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 10:
            raise ValueError(f"retries must be an integer from 0 to 10, got {retries!r}")
        if not (0 < timeout <= 300):
            raise ValueError(f"timeout must be more than 0 and at most 300 seconds, got {timeout!r}")
        if not (0 <= backoff <= _MAX_DELAY):
            raise ValueError(f"backoff must be from 0 to {_MAX_DELAY:g} seconds, got {backoff!r}")
        if username and not (use_tls or start_tls) and not _is_loopback(host):
            raise ValueError(
                "credentials would cross the network in clear: use smtp+ssl:// or starttls=true "
                "(plain connections with a password are allowed to loopback only)"
            )
        self.host = host
        self.port = port or (465 if use_tls else 587 if start_tls else 25)
        self.sender = sender
        self.use_tls = use_tls
        self.start_tls = False if use_tls else start_tls
        self.timeout = float(timeout)
        self.retries = retries
        self.backoff = float(backoff)
        self.validate_certs = validate_certs
        self._username = username
        self._password = password
        self._closed = False

    def __repr__(self) -> str:  # no credentials
        scheme = "smtp+ssl" if self.use_tls else "smtp"
        return f"SmtpMailer('{scheme}://{self.host}:{self.port}', sender={self.sender!r})"

    @classmethod
    def from_url(cls, url: str) -> SmtpMailer:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("smtp", "smtp+ssl"):
            raise ValueError(f"{url!r}: the SMTP mailer takes smtp:// or smtp+ssl:// URLs")
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f"{url!r}: the port is not a number from 1 to 65535") from None
        if not parts.hostname or parts.path not in ("", "/") or parts.fragment:
            raise ValueError(f"{url!r}: write smtp://host:port?from=sender@example.com")
        options = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        unknown = sorted(set(options) - set(_OPTIONS))
        if unknown:
            known = ", ".join(_OPTIONS)
            raise ValueError(f"{url!r}: unknown option {', '.join(unknown)}; the SMTP mailer takes {known}")
        if not options.get("from"):
            raise ValueError(f"{url!r}: from=sender@example.com is required (the address mail is sent from)")
        starttls = options.get("starttls", "auto").lower()
        if starttls != "auto" and starttls not in _BOOLEANS:
            raise ValueError(f"{url!r}: starttls is auto, true or false, got {starttls!r}")
        return cls(
            parts.hostname,
            port,
            sender=options["from"],
            use_tls=scheme == "smtp+ssl",
            start_tls=None if starttls == "auto" else _BOOLEANS[starttls],
            timeout=_number(url, options, "timeout", 10.0),
            retries=int(_number(url, options, "retries", 3, integer=True)),
            backoff=_number(url, options, "backoff", 0.5),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            validate_certs=_boolean(url, options, "validate_certs", True),
        )

    async def send(self, message: MailMessage) -> str:
        check_message(message)
        if self._closed:
            raise MailError("this mailer is closed")
        email, message_id = self.build(message)
        pending = list(message.to)  # recipients the server has not accepted yet
        refused: dict[str, str] = {}  # recipient -> a permanent refusal
        attempt = 0
        while True:
            attempt += 1
            try:
                errors, _ = await aiosmtplib.send(
                    email,
                    sender=self.sender,
                    recipients=pending,
                    hostname=self.host,
                    port=self.port,
                    username=self._username,
                    password=self._password,
                    timeout=self.timeout,
                    use_tls=self.use_tls,
                    start_tls=self.start_tls,
                    validate_certs=self.validate_certs,
                )
            except aiosmtplib.SMTPRecipientsRefused as error:  # every pending recipient refused
                errors = {e.recipient: aiosmtplib.SMTPResponse(e.code, e.message) for e in error.recipients}
            except Exception as error:  # noqa: BLE001 (each kind is sorted below)
                transient, code, reason = _classify(error)
                if not transient or attempt > self.retries:
                    raise MailDeliveryError(
                        f"mail to {len(pending)} recipient(s) via {self.host}:{self.port} failed "
                        f"after {attempt} attempt(s): {reason}",
                        transient=transient,
                        code=code,
                        attempts=attempt,
                    ) from error
                await self._wait(attempt, reason)
                continue
            retry = []
            for recipient, response in errors.items():
                if 400 <= response.code < 500 and attempt <= self.retries:
                    retry.append(recipient)
                else:
                    refused[recipient] = f"{response.code} {response.message}".strip()
            if not retry:
                break
            pending = retry
            await self._wait(attempt, f"{len(retry)} recipient(s) deferred")
        if refused:
            codes = {int(reason[:3]) for reason in refused.values() if reason[:3].isdigit()}
            delivered = [r for r in message.to if r not in refused]
            raise MailDeliveryError(
                "the server refused "
                + "; ".join(f"{recipient}: {reason}" for recipient, reason in refused.items())
                + (f" (delivered to {', '.join(delivered)})" if delivered else ""),
                transient=all(400 <= c < 500 for c in codes) and bool(codes),
                code=max(codes) if codes else None,
                attempts=attempt,
            )
        return message_id

    def build(self, message: MailMessage) -> tuple[EmailMessage, str]:
        """The MIME message (text, and html as an alternative) and its Message-ID without <>."""
        email = EmailMessage()
        msgid = make_msgid(domain=self.sender.rpartition("@")[2])
        try:
            email["From"] = self.sender
            email["To"] = ", ".join(message.to)
            if message.reply_to:
                email["Reply-To"] = message.reply_to
            email["Subject"] = message.subject
            email["Date"] = formatdate(usegmt=True)
            email["Message-ID"] = msgid
            for name, value in message.headers.items():
                email[name] = value
            email.set_content(message.text)
            if message.html is not None:
                email.add_alternative(message.html, subtype="html")
        except (MessageError, ValueError, TypeError) as error:
            raise InvalidMessage(f"cannot build the MIME message: {error}") from error
        return email, msgid.strip("<>")

    async def close(self) -> None:
        self._closed = True

    async def _wait(self, attempt: int, reason: str) -> None:
        delay = min(self.backoff * 2 ** (attempt - 1), _MAX_DELAY) * random.uniform(0.5, 1.0)
        logger.warning(
            "mail via %s:%d: attempt %d failed (%s); retrying in %.2f s", self.host, self.port, attempt, reason, delay
        )
        await asyncio.sleep(delay)


def _classify(error: BaseException) -> tuple[bool, int | None, str]:
    """(transient?, SMTP code, what happened) for an exception of one delivery attempt."""
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return 400 <= error.code < 500, error.code, f"{error.code} {error.message}".strip()
    if isinstance(error, aiosmtplib.SMTPNotSupported):
        return False, None, f"the server does not support what was asked: {error}"
    causes = [error, error.__cause__, error.__context__]
    if any(isinstance(c, ssl.SSLCertVerificationError) for c in causes):
        return False, None, f"the server's TLS certificate was refused: {error}"
    if isinstance(error, (aiosmtplib.SMTPException, OSError, TimeoutError)):
        return True, None, f"{type(error).__name__}: {error}"
    return False, None, f"{type(error).__name__}: {error}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _number(url: str, options: dict[str, str], name: str, default: float, *, integer: bool = False) -> float:
    raw = options.get(name)
    if raw is None:
        return default
    try:
        return int(raw) if integer else float(raw)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise ValueError(f"{url!r}: {name} must be {kind}, got {raw!r}") from None


def _boolean(url: str, options: dict[str, str], name: str, default: bool) -> bool:
    raw = options.get(name)
    if raw is None:
        return default
    if raw.lower() not in _BOOLEANS:
        raise ValueError(f"{url!r}: {name} is true or false, got {raw!r}")
    return _BOOLEANS[raw.lower()]
