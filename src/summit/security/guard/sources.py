"""What the guard reads, from where it stopped last time: the audit log's records, and access-log
lines (HAProxy's ``option httplog`` lines at the front door, or the app's own JSON access lines),
and the WAF tier's events (ModSecurity's JSON audit log, ``logs/waf-N-events.log``), read as the
requests the WAF blocked.

Each log file has a cursor (inode, byte offset, line number) in the guard's store. Only complete
lines are read (a line still being written waits for the next run); a file whose inode changed or
that shrank was rotated or truncated, and is read again from its start. Sealed audit files never
change, so a run that finds nothing new costs a directory listing and a ``stat`` per file.
"""

from __future__ import annotations

import heapq
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import orjson

from summit.security.audit.format import AUDIT_DIR, iso_ms
from summit.security.audit.read import list_chains
from summit.security.guard.store import GuardStore

# the stage's front door, when it runs HAProxy; else the app's stderr, where its JSON access lines go:
# `summit up --detach` writes logs/summit-up.log, the supervisor logs/app.log or logs/web-N.log
# (and the WAF tier's events, when it runs: absent files are skipped)
HAPROXY_LOGS = ["logs/haproxy.log", "logs/waf-*-events.log"]
APP_LOGS = ["logs/summit-up.log", "logs/app.log", "logs/web-*.log"]


def default_access_logs(behind_haproxy: bool) -> list[str]:
    return list(HAPROXY_LOGS if behind_haproxy else APP_LOGS)


def to_ms(text: str) -> int:
    """Milliseconds since the epoch of an ISO 8601 time (UTC unless it says otherwise)."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


class LogFile:
    """One log file read incrementally: ``lines()`` yields the complete lines after the cursor and
    moves it; ``save()`` writes the cursor to the store (in the run's transaction)."""

    def __init__(self, store: GuardStore, path: Path, name: str):
        self.store, self.path, self.name = store, path, name
        self.inode = self.offset = self.line = 0
        self.changed = False

    def lines(self) -> Iterator[tuple[int, bytes]]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return
        known = self.store.cursor(self.name)
        inode, offset, line = known if known else (st.st_ino, 0, 0)
        if inode != st.st_ino or st.st_size < offset:  # rotated or truncated: a new file under the old name
            offset, line = 0, 0
        self.inode, self.offset, self.line = st.st_ino, offset, line
        self.changed = known is None or known != (self.inode, self.offset, self.line)
        if st.st_size == offset:
            return
        with open(self.path, "rb") as handle:
            handle.seek(offset)
            for raw in handle:
                if not raw.endswith(b"\n"):  # being written: the next run reads it whole
                    break
                self.offset += len(raw)
                self.line += 1
                self.changed = True
                yield self.line, raw

    def save(self) -> None:
        if self.changed:
            self.store.set_cursor(self.name, self.inode, self.offset, self.line)


# ---- the audit log -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditRecord:
    time_ms: int
    record: dict  # as the audit log wrote it: event_id, time, action, result, user_id, source_ip, ...

    @property
    def evidence(self) -> dict:
        r = self.record
        item = {"event_id": r.get("event_id"), "time": r.get("time"), "action": r.get("action"), "result": r.get("result")}
        for name in ("reason", "user_id", "source_ip", "resource", "status"):
            if r.get(name) is not None:
                item[name] = r[name]
        return item


def audit_records(store: GuardStore, data_dir: Path, files: list[LogFile]) -> Iterator[AuditRecord]:
    """The audit records not read before, from every chain, in time order (chains merged)."""
    audit_dir = Path(data_dir) / AUDIT_DIR
    streams = []
    for chain in list_chains(audit_dir)[0]:
        chain_files = []
        for seq, path in sorted(chain.files.items()):
            log = LogFile(store, path, f"{AUDIT_DIR}/{chain.chain_id}/{path.name}")
            files.append(log)
            chain_files.append(log)
        streams.append(_chain_records(chain_files))
    return heapq.merge(*streams, key=lambda r: r.time_ms)


def _chain_records(files: list[LogFile]) -> Iterator[AuditRecord]:
    for log in files:
        for _, raw in log.lines():
            try:
                record = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(record, dict) or "event_id" not in record:  # the file's header line
                continue
            try:
                yield AuditRecord(to_ms(record["time"]), record)
            except (KeyError, TypeError, ValueError):
                continue


# ---- access logs ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Request:
    """One line of an access log."""

    time_ms: int
    source: str | None
    method: str
    path: str
    status: int
    blocked: bool  # refused by the front door itself (HAProxy termination state PR: a deny rule, a malformed request) or the WAF
    log: str
    line: int
    waf_rules: tuple[str, ...] = ()  # a WAF event: the ids of the rules that matched (the request was blocked)
    request_id: str | None = None  # a WAF event: its unique_id, the request id of the 403 page and the other logs

    @property
    def evidence(self) -> dict:
        item = {"log": self.log, "line": self.line, "time": iso_ms(self.time_ms), "source_ip": self.source,
                "request": f"{self.method} {self.path[:200]}", "status": self.status}
        if self.waf_rules:
            item["waf_rules"], item["request_id"] = list(self.waf_rules), self.request_id
        return item


# HAProxy's `option httplog` (and httpslog, which adds TLS fields after the request):
#   127.0.0.1:39624 [08/Jan/2026:10:00:00.123] public web/web-1 0/0/0/2/2 404 180 - - ---- 1/1/0/0/0 0/0 "GET /x HTTP/1.1"
# a request too malformed to parse is "<BADREQ>"; TCP listeners' `option tcplog` lines have no request
_HTTPLOG = re.compile(
    rb'^(?P<client>\S+):\d+ \[(?P<date>\d{2}/[A-Za-z]{3}/\d{4}:\d{2}:\d{2}:\d{2}(?:\.\d+)?)\] (?P<frontend>\S+) \S+ \S+ '
    rb'(?P<status>-?\d+) \S+ \S+ \S+ (?P<term>\S{4}) .*?"(?:(?P<method>[A-Z]{1,16}) (?P<uri>\S+)|(?P<badreq><BADREQ>)")'
)
_LOOPBACK_FRONTENDS = (b"stats",)  # HAProxy's own statistics listener (loopback): probes and `summit status`


def parse_haproxy(raw: bytes, log: str, line: int) -> Request | None:
    m = _HTTPLOG.match(raw)
    if m is None or m["frontend"] in _LOOPBACK_FRONTENDS:
        return None
    # refused by HAProxy itself while reading the request (termination state P R): a deny rule, or a
    # request too malformed to parse. A client that connects and leaves (C R, the readiness probe's
    # way) made no request at all.
    term = m["term"].decode()
    blocked = term[:2] == "PR"
    if m["badreq"] and not blocked:
        return None
    try:
        moment = datetime.strptime(m["date"].decode(), "%d/%b/%Y:%H:%M:%S.%f" if b"." in m["date"] else "%d/%b/%Y:%H:%M:%S")
    except ValueError:
        return None
    # HAProxy writes its local time without an offset: read it as this host's local time
    time_ms = int(moment.astimezone(timezone.utc).timestamp() * 1000)
    method, path = ("-", "<BADREQ>") if m["badreq"] else (m["method"].decode(), m["uri"].decode("latin-1").split("?", 1)[0])
    return Request(time_ms, m["client"].decode("latin-1"), method, path, int(m["status"]), blocked, log, line)


def parse_app_json(raw: bytes, log: str, line: int) -> Request | None:
    """A line of the app's JSON access log (``summit.web.logs``); other lines of its stderr are skipped."""
    if not raw.startswith(b"{") or b'"summit.access"' not in raw:
        return None
    try:
        entry = orjson.loads(raw)
        if entry.get("logger") != "summit.access" or entry.get("event") != "request":
            return None
        return Request(to_ms(entry["timestamp"]), entry.get("client"), str(entry["method"]), str(entry["path"]),
                       int(entry["status"]), False, log, line)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        return None


# ModSecurity v3's JSON audit log (SecAuditLogFormat JSON, parts A H Z), one transaction a line:
#   {"transaction": {"client_ip": "203.0.113.7", "time_stamp": "Sun Dec  6 21:42:55 2026", "unique_id": "...",
#    "request": {"method": "GET", "uri": "/x?id=..."}, "response": {"http_code": 418}, "messages": [{"details": {"ruleId": "942100"}}]}}
# The inspecting server answers a blocked request 418 (summit.engines.waf.BLOCK_STATUS; the client gets 403);
# any other status is a request that was scored and passed, which is not a probe.
WAF_BLOCKED = (418, 403)


def parse_waf_event(raw: bytes, log: str, line: int) -> Request | None:
    """A request the WAF blocked, from a line of its event log (None for a request it let pass)."""
    try:
        event = orjson.loads(raw)["transaction"]
        status = int(event["response"]["http_code"])
        if status not in WAF_BLOCKED:
            return None
        # ModSecurity writes ctime's format in local time, with seconds: read it as this host's local time
        moment = datetime.strptime(" ".join(str(event["time_stamp"]).split()), "%a %b %d %H:%M:%S %Y")
        rules = tuple(dict.fromkeys(str(m["details"]["ruleId"]) for m in event.get("messages") or [] if m.get("details", {}).get("ruleId")))
        request = event.get("request") or {}
        return Request(int(moment.astimezone(timezone.utc).timestamp() * 1000), event.get("client_ip") or None,
                       str(request.get("method") or "-"), str(request.get("uri") or "-").split("?", 1)[0], 403, True, log, line,
                       waf_rules=rules or ("-",), request_id=event.get("unique_id"))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        return None


def parse_access_line(raw: bytes, log: str, line: int) -> Request | None:
    """A request from a line of any of the formats, or None for any other line (start-up messages ...)."""
    if raw[:1] != b"{":
        return parse_haproxy(raw, log, line)
    return parse_waf_event(raw, log, line) if raw.startswith(b'{"transaction"') else parse_app_json(raw, log, line)


def access_log_files(store: GuardStore, data_dir: Path, patterns: Iterable[str]) -> list[LogFile]:
    data_dir = Path(data_dir)
    found: dict[str, Path] = {}
    for pattern in patterns:
        if os.path.isabs(pattern) or ".." in Path(pattern).parts:
            raise ValueError(f"guard.access_logs: {pattern!r} must be a path under the data directory, such as logs/haproxy.log")
        for path in sorted(data_dir.glob(pattern)):
            if path.is_file():
                found.setdefault(path.relative_to(data_dir).as_posix(), path)
    return [LogFile(store, path, name) for name, path in found.items()]


def requests(files: list[LogFile]) -> Iterator[Request]:
    """The access-log lines not read before, from every file, in time order (files merged)."""

    def one(log: LogFile) -> Iterator[Request]:
        for number, raw in log.lines():
            request = parse_access_line(raw, log.name, number)
            if request is not None:
                yield request

    return heapq.merge(*(one(log) for log in files), key=lambda r: r.time_ms)
