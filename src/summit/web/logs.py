"""Structured JSON logs (structlog): one JSON object per line, with the request id on every line
logged while a request is handled, whether from structlog or the standard ``logging`` module.

The access log is the one line written for every request, so it does not go through ``logging``
and structlog (about 100 us a line): once ``configure_logging`` has run, ``access`` makes the same
JSON object with orjson (about 3 us) and keeps it in a buffer that a thread writes to the stream
the other lines go to every ``FLUSH_SECONDS`` (one system call for many lines, as nginx buffers its
access log); the lines are flushed at exit too. Without ``configure_logging`` (an app embedded in
another program), it is an ordinary ``logging`` record of the ``summit.access`` logger, for that
program's handlers."""

from __future__ import annotations

import atexit
import datetime as dt
import logging
import sys
import threading
import time
from typing import Any

import orjson
import structlog

_configured = False
_access_logger = logging.getLogger("summit.access")
FLUSH_SECONDS = 0.25


class _Lines:
    """Access lines waiting for the stream; written by a thread, under the log handler's lock."""

    def __init__(self, handler: logging.StreamHandler) -> None:
        self.handler = handler
        self.pending: list[str] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._flush_forever, name="summit-access-log", daemon=True).start()
        atexit.register(self.flush)

    def add(self, line: str) -> None:
        with self.lock:
            self.pending.append(line)
            full = len(self.pending) >= 4096
        if full:
            self.flush()

    def flush(self) -> None:
        with self.lock:
            lines, self.pending = self.pending, []
        if not lines:
            return
        self.handler.acquire()
        try:
            self.handler.stream.write("".join(lines))
            self.handler.stream.flush()
        except (OSError, ValueError):  # a closed or broken stream must not break the server
            pass
        finally:
            self.handler.release()

    def _flush_forever(self) -> None:
        while True:
            time.sleep(FLUSH_SECONDS)
            self.flush()


_access_lines: _Lines | None = None  # set by configure_logging


def access(request_id: str, **fields: Any) -> None:
    """Log one request: method, path, route, status, duration_ms, client (the address it came from,
    the load balancer's client behind a trusted proxy: what ``summit guard`` reads)."""
    if not _access_logger.isEnabledFor(logging.INFO):
        return
    if _access_lines is None:
        _access_logger.info("request", extra=fields)
        return
    timestamp = dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z")
    line = {"event": "request", "request_id": request_id, "level": "info", "logger": "summit.access", "timestamp": timestamp, **fields}
    _access_lines.add(orjson.dumps(line).decode() + "\n")


def flush_access_log() -> None:
    """Write out the access lines now (the server does it by itself every FLUSH_SECONDS)."""
    if _access_lines is not None:
        _access_lines.flush()


def configure_logging(level: str = "INFO") -> None:
    global _configured
    if _configured:
        return
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per migration step is noise
    global _access_lines
    _access_lines = _Lines(handler)
    _configured = True
