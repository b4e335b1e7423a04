"""Map port URLs to adapters through one explicit table.

``open_port("cache", "memory://?max_items=1000")`` imports the adapter only when it is used,
and says which extra to install when its driver is missing, or which schemes exist when the URL's
scheme is unknown. The part of a scheme before '+' picks the adapter (``sqlite+aiosqlite://``).
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any
from urllib.parse import urlsplit

# port -> scheme -> "module:Class"
ADAPTERS: dict[str, dict[str, str]] = {
    "sql": {
        "sqlite": "summit.adapters.sqlite.database:SQLiteDatabase",
        "postgresql": "summit.adapters.postgres.database:PostgresDatabase",  # also postgresql+psycopg://
        "postgres": "summit.adapters.postgres.database:PostgresDatabase",
    },
    "objects": {
        "file": "summit.adapters.files.objects:FileObjectStore",
        "memory": "summit.adapters.memory.objects:MemoryObjectStore",
        "s3": "summit.adapters.s3.objects:S3ObjectStore",  # any S3 store (SeaweedFS at 10k)
    },
    "cache": {
        "memory": "summit.adapters.memory.cache:MemoryCache",
        "redis": "summit.adapters.redis.cache:RedisCache",
        "rediss": "summit.adapters.redis.cache:RedisCache",  # TLS
    },
    "queue": {
        "sqlite": "summit.adapters.sqlite.queue:SQLiteQueue",
        "postgresql": "summit.adapters.postgres.queue:PostgresQueue",
        "postgres": "summit.adapters.postgres.queue:PostgresQueue",
    },
    "search": {
        "sqlite": "summit.adapters.sqlite.search:SQLiteSearchIndex",  # FTS5
        "postgresql": "summit.adapters.postgres.search:PostgresSearchIndex",
        "postgres": "summit.adapters.postgres.search:PostgresSearchIndex",
    },
    "cdn": {
        "none": "summit.adapters.memory.cdn:NoCdn",
        "varnish": "summit.adapters.varnish.cdn:VarnishCdn",
    },
    "mail": {
        "outbox": "summit.adapters.outbox.mailer:OutboxMailer",
        "smtp": "summit.adapters.smtp.mailer:SmtpMailer",  # also smtp+ssl://
    },
}

# driver module -> the extra that installs it
EXTRAS: dict[str, str] = {
    "aiosmtplib": "smtp",
    "psycopg": "postgres",
    "aiobotocore": "s3",
    "botocore": "s3",
    "aiohttp": "s3",
    "redis": "redis",
}


class WiringError(ValueError):
    pass


def scheme_of(url: str) -> str:
    scheme = urlsplit(url).scheme
    if not scheme:
        raise WiringError(f"{url!r} is not a URL: it needs a scheme such as sqlite:// or memory://")
    return scheme.split("+", 1)[0].lower()


def adapter_class(port: str, url: str) -> type:
    if port not in ADAPTERS:
        raise WiringError(f"unknown port {port!r}; the ports are: {', '.join(sorted(ADAPTERS))}")
    scheme = scheme_of(url)
    table = ADAPTERS[port]
    if scheme not in table:
        hint = difflib.get_close_matches(scheme, table, n=1)
        did_you_mean = f" (did you mean {hint[0]}://?)" if hint else ""
        raise WiringError(
            f"no {port} adapter for {scheme}://{did_you_mean}; the {port} port takes: "
            + ", ".join(f"{s}://" for s in sorted(table))
        )
    module_name, _, class_name = table[scheme].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        extra = EXTRAS.get((error.name or "").split(".")[0])
        if extra is None:
            raise
        raise WiringError(
            f"the {port} adapter for {scheme}:// needs {error.name}: pip install 'summit[{extra}]'"
        ) from error
    return getattr(module, class_name)


def open_port(port: str, url: str) -> Any:
    """An adapter instance for ``port`` built from ``url``."""
    return adapter_class(port, url).from_url(url)
