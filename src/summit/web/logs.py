"""Structured JSON logs (structlog): one JSON object per line, with the request id on every line
logged while a request is handled, whether from structlog or the standard ``logging`` module.

The access log is the one line written for every request, so it does not go through ``logging``
and structlog (about 100 us a line): once ``configure_logging`` has run, ``access`` writes the
same JSON object with orjson, straight to the stream the other lines go to (about 3 us). Without
``configure_logging`` (an app embedded in another program), it is an ordinary ``logging`` record
of the ``summit.access`` logger, for that program's handlers."""

from __future__ import annotations

import datetime as dt
import logging
import sys
from typing import Any, TextIO

import orjson
import structlog

_configured = False
_access_logger = logging.getLogger("summit.access")
_access_stream: TextIO | None = None  # set by configure_logging: where the fast access lines go


def access(request_id: str, **fields: Any) -> None:
    """Log one request: method, path, route, status, duration_ms."""
    if not _access_logger.isEnabledFor(logging.INFO):
        return
    if _access_stream is None:
        _access_logger.info("request", extra=fields)
        return
    timestamp = dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z")
    line = {"event": "request", "request_id": request_id, "level": "info", "logger": "summit.access", "timestamp": timestamp, **fields}
    try:
        _access_stream.write(orjson.dumps(line).decode() + "\n")
    except (OSError, ValueError):  # a closed or broken stream must not fail the request
        pass


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
    global _access_stream
    _access_stream = handler.stream
    _configured = True
