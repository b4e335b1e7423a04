"""The mail port at stage 1: nothing leaves the machine; every message is kept in an outbox.

URL: the directory is the URL's netloc and path joined, taken literally, as for ``file://``::

    outbox://.summit/outbox              -> .summit/outbox (relative to the working directory)
    outbox:///srv/summit/outbox?keep=500 -> /srv/summit/outbox, keeping the 500 newest messages

Layout under the directory::

    <id>.json   one file per message: {id, to, subject, text, html, reply_to, headers, sent_at}
    tmp/        files being written; a send renames its file into place once it is complete

The id is ``<nanoseconds since the epoch, 20 digits>-<12 hex digits>``, so names sort by time and
``list`` (newest first) needs no index. A reader in another process (``summit mail``, a test, the
dev inbox page) sees whole messages only: a file appears by one atomic rename. Files and the
directory are the owner's only (0600, 0700): the messages hold confirmation and reset codes.
After each send, messages beyond the ``keep`` newest (1000 by default; 0 keeps all) are removed.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from urllib.parse import parse_qs, urlsplit

from summit.ports.mail import MailError, Mailer, MailMessage, Outbox, SentMail, check_message

DEFAULT_KEEP = 1000
_NAME = re.compile(r"[0-9]{20}-[0-9a-f]{12}\.json")


class OutboxMailer(Mailer, Outbox):
    def __init__(self, directory: str | os.PathLike[str], *, keep: int = DEFAULT_KEEP):
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 0:
            raise ValueError(f"keep must be an integer >= 0 (0 keeps every message), got {keep!r}")
        self.root = Path(os.path.abspath(directory))
        self.keep = keep
        self._tmp = self.root / "tmp"
        self._lock = threading.Lock()
        self._last_ns = 0
        self._closed = False

    def __repr__(self) -> str:
        return f"OutboxMailer({str(self.root)!r}, keep={self.keep})"

    @classmethod
    def from_url(cls, url: str) -> OutboxMailer:
        parts = urlsplit(url)
        if parts.scheme.lower() != "outbox":
            raise ValueError(f"{url!r} is not an outbox:// URL")
        directory = parts.netloc + parts.path
        if not directory or parts.fragment:
            raise ValueError(f"{url!r}: use outbox://relative/dir or outbox:///absolute/dir (and ?keep=N)")
        options = parse_qs(parts.query, keep_blank_values=True)
        unknown = sorted(set(options) - {"keep"})
        if unknown:
            raise ValueError(f"{url!r}: unknown option {', '.join(unknown)}; the outbox takes keep")
        raw = options.get("keep", [str(DEFAULT_KEEP)])[-1]
        if not (raw.isascii() and raw.isdigit()):
            raise ValueError(f"{url!r}: keep must be an integer >= 0 (0 keeps every message), got {raw!r}")
        return cls(directory, keep=int(raw))

    async def send(self, message: MailMessage) -> str:
        check_message(message)
        if self._closed:
            raise MailError("this mailer is closed")
        with self._lock:  # ids strictly increase within a process, even if the clock steps back
            self._last_ns = max(time.time_ns(), self._last_ns + 1)
            ns = self._last_ns
        message_id = f"{ns:020d}-{secrets.token_hex(6)}"
        record = {
            "id": message_id,
            "to": list(message.to),
            "subject": message.subject,
            "text": message.text,
            "html": message.html,
            "reply_to": message.reply_to,
            "headers": dict(message.headers),
            "sent_at": _utc(ns).isoformat(),
        }
        data = json.dumps(record, ensure_ascii=False, indent=2).encode()
        try:
            await asyncio.to_thread(self._write, message_id, data)
        except OSError as error:
            raise MailError(f"could not write to the outbox {self.root}: {error}") from error
        return message_id

    async def list(self, limit: int = 50, to: str | None = None) -> list[SentMail]:
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise TypeError(f"limit is an int, got {type(limit).__name__}")
        if limit < 0:
            raise ValueError(f"limit must be 0 or more, got {limit}")
        if to is not None and not isinstance(to, str):
            raise TypeError(f"to is an address (str) or None, got {type(to).__name__}")
        return await asyncio.to_thread(self._list, limit, to)

    async def close(self) -> None:
        self._closed = True

    # blocking parts, run in a thread

    def _write(self, message_id: str, data: bytes) -> None:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._tmp.mkdir(mode=0o700, exist_ok=True)
        tmp = self._tmp / f"{message_id}.part"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, self.root / f"{message_id}.json")
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_directory(self.root)
        if self.keep:
            for name in self._names()[self.keep :]:
                (self.root / name).unlink(missing_ok=True)  # another process may prune it too

    def _names(self) -> list[str]:
        """The message files' names, newest first."""
        try:
            with os.scandir(self.root) as scan:
                names = [entry.name for entry in scan if _NAME.fullmatch(entry.name)]
        except (FileNotFoundError, NotADirectoryError):
            return []  # nothing sent yet
        return sorted(names, reverse=True)

    def _list(self, limit: int, to: str | None) -> list[SentMail]:
        found: list[SentMail] = []
        wanted = to.lower() if to is not None else None
        for name in self._names():
            if len(found) >= limit:
                break
            path = self.root / name
            try:
                record = json.loads(path.read_bytes())
            except FileNotFoundError:
                continue  # pruned while we listed
            except ValueError as error:
                raise MailError(f"{path} is not a message this outbox wrote (not JSON: {error})") from None
            mail = _sent_mail(record, path)
            if wanted is None or wanted in (address.lower() for address in mail.to):
                found.append(mail)
        return found


def _sent_mail(record: object, path: Path) -> SentMail:
    try:
        if not isinstance(record, dict):
            raise TypeError(f"a JSON object was expected, not {type(record).__name__}")
        return SentMail(
            id=str(record["id"]),
            to=tuple(str(address) for address in record["to"]),
            subject=str(record["subject"]),
            text=str(record["text"]),
            html=None if record.get("html") is None else str(record["html"]),
            reply_to=None if record.get("reply_to") is None else str(record["reply_to"]),
            headers=MappingProxyType({str(k): str(v) for k, v in (record.get("headers") or {}).items()}),
            sent_at=datetime.fromisoformat(record["sent_at"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise MailError(f"{path} is not a message this outbox wrote ({type(error).__name__}: {error})") from None


def _utc(ns: int) -> datetime:
    """Nanoseconds since the epoch as an aware UTC datetime, exact to the microsecond."""
    seconds, rest = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=rest // 1000)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
