"""The running stage's state file (``<data_dir>/summit.json``): what ``summit status`` reads."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from summit.blueprint import Blueprint

FILE = "summit.json"


def _without_password(url: str) -> str:
    """URLs may carry credentials (smtp://user:pass@host): keep them out of files and screens."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def path(data_dir: Path) -> Path:
    return data_dir / FILE


def write(blueprint: Blueprint, url: str) -> None:
    record = {
        "pid": os.getpid(),
        "url": url,
        "stage": blueprint.stage,
        "started_at": time.time(),
        "ports": {name: _without_password(blueprint.port_url(name)) for name in type(blueprint.ports).model_fields},
    }
    target = path(blueprint.data_dir)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2))
    tmp.replace(target)


def read(data_dir: Path) -> dict | None:
    try:
        return json.loads(path(data_dir).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def clear(blueprint: Blueprint) -> None:
    record = read(blueprint.data_dir)
    if record and record.get("pid") == os.getpid():
        path(blueprint.data_dir).unlink(missing_ok=True)
