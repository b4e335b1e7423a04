"""The running stage's state file (``<data_dir>/summit.json``): who runs it, where it answers,
and each of its processes (what ``summit status``, ``summit down`` and a second ``summit up`` read).

    {"pid": <the supervisor or the stage-1 server>, "url": ..., "stage": ..., "started_at": ...,
     "ready": true, "ports": {port: URL without passwords},
     "processes": [{"name", "kind", "role", "address", "pid", "state", "started_at", "restarts", "error"}]}
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from summit.blueprint import Blueprint, BlueprintError
from summit.engines.process import alive

FILE = "summit.json"
_SECRET_OPTIONS = ("password",)  # a passfile option names a file: it may be shown


def without_secrets(url: str) -> str:
    """URLs may carry credentials (smtp://user:pass@host, ?password=): keep them off files and screens."""
    parts = urlsplit(url)
    if parts.password is not None:
        netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        url = url.replace(parts.netloc, netloc, 1)
    if any(k in _SECRET_OPTIONS for k, _ in parse_qsl(parts.query, keep_blank_values=True)):
        head, _, query = url.partition("?")
        pairs = [(k, "***" if k in _SECRET_OPTIONS else v) for k, v in parse_qsl(query, keep_blank_values=True)]
        url = head + "?" + urlencode(pairs, safe="/:*")
    return url


def path(data_dir: Path) -> Path:
    return data_dir / FILE


def port_urls(blueprint: Blueprint) -> dict[str, str]:
    urls = {}
    for name in type(blueprint.ports).model_fields:
        try:
            urls[name] = without_secrets(blueprint.port_url(name))
        except BlueprintError:
            urls[name] = getattr(blueprint.ports, name)  # an engine's placeholder, before it runs
    return urls


def write(blueprint: Blueprint, url: str, **fields: Any) -> dict[str, Any]:
    """Record this process as the one running the stage in ``blueprint``'s data directory."""
    record = {
        "pid": os.getpid(),
        "url": url,
        "stage": blueprint.stage,
        "started_at": time.time(),
        "ready": False,
        "ports": port_urls(blueprint),
        "processes": [],
        **fields,
    }
    save(blueprint.data_dir, record)
    return record


def save(data_dir: Path, record: dict[str, Any]) -> None:
    target = path(data_dir)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2))
    tmp.replace(target)


def read(data_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path(data_dir).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def running(data_dir: Path) -> dict[str, Any] | None:
    """The record of the stage running in ``data_dir``, if its supervisor (or server) is alive."""
    record = read(data_dir)
    return record if record and alive(int(record.get("pid") or 0)) else None


def clear(data_dir: Path) -> None:
    """Remove the record if this process wrote it."""
    record = read(data_dir)
    if record and record.get("pid") == os.getpid():
        path(data_dir).unlink(missing_ok=True)
