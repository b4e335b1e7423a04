"""The audit log's records and names: events and their validation, chain, file and digest names.

Shared by the writer (``writer``, ``chain``), the verifier (``verifier``) and
search (``read``); ``docs/audit.md`` describes the format for people.
"""

from __future__ import annotations

import contextvars
import ipaddress
import os
import random
import re
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

FORMAT_VERSION = 1
AUDIT_DIR = "audit"
LOCK_FILE = "writer.lock"  # held (flock) by the chain's writer for its whole life
CHAIN_RE = re.compile(r"^\d{8}T\d{9}Z-[A-Za-z0-9.-]{1,40}-\d{1,10}-[0-9a-f]{6}$")
FILE_RE = re.compile(r"^(\d{8})\.jsonl$")
DIGEST_RE = re.compile(r"^(\d{8})\.digest\.json$")
USER_AGENT_MAX = 256


class AuditError(Exception):
    """The audit log cannot take a record (not started, closed, used after fork, disk failure)."""


def file_name(seq: int) -> str:
    return f"{seq:08d}.jsonl"


def digest_name(seq: int) -> str:
    return f"{seq:08d}.digest.json"


def new_chain_id(now: float) -> str:
    """``<start time, ms>-<host>-<pid>-<random>``: unique per writing process, sorted by start time."""
    host = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname())[:40].strip(".-") or "host"
    moment = datetime.fromtimestamp(now, tz=timezone.utc)
    started = moment.strftime("%Y%m%dT%H%M%S") + f"{moment.microsecond // 1000:03d}Z"
    return f"{started}-{host}-{os.getpid()}-{secrets.token_hex(3)}"


def iso_ms(epoch_ms: int) -> str:
    """UTC with milliseconds, fixed width, so that string order is time order."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


# --- events -------------------------------------------------------------------------------------

_ACTION = re.compile(r"^[a-z][a-z0-9-]{0,31}:[A-Za-z][A-Za-z0-9]{0,63}$")
_USER_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
_CODE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_DETAIL_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_EMAIL = re.compile(r"[^\s@<>()\"',;]+@[^\s@<>()\"',;]+\.[A-Za-z]{2,}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
RESULTS = ("success", "failure")


@dataclass(frozen=True)
class Origin:
    """Where a request came from; bind one per request (``bind_origin``) so records pick it up."""

    source_ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None

    @classmethod
    def from_scope(cls, scope: Mapping, request_id: str | None = None) -> Origin:
        """From an ASGI scope: the client address as the server saw it, and the User-Agent."""
        client = scope.get("client")
        agent = next((v for k, v in scope.get("headers", ()) if k == b"user-agent"), None)
        return cls(client[0] if client else None, agent.decode("latin-1") if agent else None, request_id)


_origin: contextvars.ContextVar[Origin | None] = contextvars.ContextVar("audit_origin", default=None)


def bind_origin(origin: Origin) -> contextvars.Token:
    """Make ``origin`` the default of every record made in this context (one request)."""
    return _origin.set(origin)


def reset_origin(token: contextvars.Token) -> None:
    _origin.reset(token)


def current_origin() -> Origin | None:
    return _origin.get()


@dataclass(frozen=True)
class AuditEvent:
    """One record: who (by ID only), what, on what, when, from where, with what result."""

    event_id: str
    time: str  # ISO 8601 UTC with milliseconds, e.g. 2025-05-01T12:00:00.123Z
    action: str  # service:Verb, e.g. posts:Create, auth:SignIn
    result: str  # success | failure
    user_id: str | None = None
    resource: str | None = None  # ARN-like or a path, naming things by ID
    status: int | None = None
    reason: str | None = None  # a short code, e.g. bad_password, locked_out
    source_ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    details: dict = field(default_factory=dict)
    chain: str | None = None  # where it was found (search); not written in the record

    def as_dict(self) -> dict:
        data = {name: getattr(self, name) for name in _EVENT_FIELDS}
        data["details"] = dict(self.details)
        if self.chain is not None:
            data["chain"] = self.chain
        return data

    @classmethod
    def from_dict(cls, data: Mapping, chain: str | None = None) -> AuditEvent:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in names and k != "chain"}, chain=chain)


_EVENT_FIELDS = tuple(name for name in AuditEvent.__dataclass_fields__ if name != "chain")
_ids = random.Random(os.urandom(32))  # event ids need uniqueness, not secrecy (and urandom is slow)
os.register_at_fork(after_in_child=lambda: _ids.seed(os.urandom(32)))


def make_event(
    action: str,
    *,
    epoch_ms: int,
    user_id: str | int | None,
    resource: str | None,
    result: str | None,
    status: int | None,
    reason: str | None,
    origin: Origin | None,
    details: Mapping | None,
) -> AuditEvent:
    """Validate the caller's fields into an event; a bad field raises ValueError naming it.

    Personal data stays out: users are named by ID (an e-mail address is refused anywhere but the
    user agent, where it is masked), reasons are codes rather than free text.
    """
    if not isinstance(action, str) or not _ACTION.match(action):
        raise ValueError(f"audit action must look like 'service:Verb' (e.g. posts:Create), got {action!r}")
    if isinstance(user_id, int) and not isinstance(user_id, bool):
        user_id = str(user_id)
    if user_id is not None and (not isinstance(user_id, str) or not _USER_ID.match(user_id)):
        raise ValueError("audit user_id must be the user's ID (letters, digits, _.:-), never a name or e-mail address")
    if resource is not None:
        if not isinstance(resource, str) or not 0 < len(resource) <= 1024 or _CONTROL.search(resource) or " " in resource:
            raise ValueError("audit resource must be an ARN or path of at most 1024 characters without spaces")
        _refuse_email("resource", resource)
    if status is not None and (not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599):
        raise ValueError(f"audit status must be an HTTP status code, got {status!r}")
    if result is None:
        if status is None:
            raise ValueError("audit record needs a result ('success' or 'failure') or a status code")
        result = "success" if status < 400 else "failure"
    if result not in RESULTS:
        raise ValueError(f"audit result must be 'success' or 'failure', got {result!r}")
    if reason is not None and (not isinstance(reason, str) or not _CODE.match(reason)):
        raise ValueError("audit reason must be a short code (letters, digits, _.:-), e.g. bad_password")
    origin = origin or current_origin() or Origin()
    return AuditEvent(
        event_id=f"{_ids.getrandbits(128):032x}",
        time=iso_ms(epoch_ms),
        action=action,
        result=result,
        user_id=user_id,
        resource=resource,
        status=status,
        reason=reason,
        source_ip=_clean_ip(origin.source_ip),
        user_agent=_clean_agent(origin.user_agent),
        request_id=_clean_short(origin.request_id, 128),
        details=_clean_details(details or {}),
    )


def _refuse_email(name: str, value: str) -> None:
    if _EMAIL.search(value):
        raise ValueError(f"audit {name} looks like it holds an e-mail address: name users by ID, not by personal data")


def _clean_short(value: str | None, limit: int) -> str | None:
    if value is None:
        return None
    return _CONTROL.sub("", str(value))[:limit] or None


def _clean_ip(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return _clean_short(value, 64)  # e.g. a unix socket or a test client name


def _clean_agent(value: str | None) -> str | None:
    return _clean_short(_EMAIL.sub("[email]", value), USER_AGENT_MAX) if value else None


def _clean_details(details: Mapping) -> dict:
    if len(details) > 16:
        raise ValueError("audit details hold at most 16 entries")
    clean = {}
    for key, value in details.items():
        if not isinstance(key, str) or not _DETAIL_KEY.match(key):
            raise ValueError(f"audit details key {key!r} must be an identifier")
        if isinstance(value, str):
            if len(value) > 256 or _CONTROL.search(value):
                raise ValueError(f"audit details[{key!r}] must be at most 256 printable characters")
            _refuse_email(f"details[{key!r}]", value)
        elif value is not None and not isinstance(value, (bool, int, float)):
            raise ValueError(f"audit details[{key!r}] must be a string, number, boolean or null")
        clean[key] = value
    return clean


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
