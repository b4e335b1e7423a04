"""The adapters each port's contract suite runs against: one table per port, one line per adapter.

A contract test module sets the suite's ``backend`` fixture from its port's table, and the suite
runs once per line::

    class TestQueue(QueueContract):
        backend = backend_fixture("queue")

A line is ``param(url, id=..., engine=..., marks=...)``. In the URL, ``{tmp}`` is a fresh directory
of the test, and ``{engine}`` what the fixture named by ``engine`` yields (``{engine.address}``
reads an attribute of it). An adapter whose engine runs as a server names a session-scoped fixture
that starts it and yields its address, and carries the engine's marker, so ``pytest -m "not
redis"`` selects no line that needs Redis and starts no server::

    param("redis://{engine}/0?max_receives=3", id="redis", engine="redis_server", marks=pytest.mark.redis)

Embedded adapters have no engine and no marker. An engine of the mail port also offers
``delivered()``: what its server received.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from summit.wiring import adapter_class

SENDER = "noreply@summit.example"


@dataclass(frozen=True)
class Entry:
    """One line of a table: a URL template and the fixture that runs its engine (None: embedded)."""

    url: str
    engine: str | None = None


@dataclass(frozen=True)
class Backend:
    """One adapter of a port, ready to open: its URL, and what its engine's fixture yielded."""

    url: str
    engine: Any = None

    def open(self, port: str, **options: Any) -> Any:
        """A fresh adapter built by the wiring, as the app builds it; ``options`` go to ``from_url``."""
        return adapter_class(port, self.url).from_url(self.url, **options)


def param(url: str, *, id: str, engine: str | None = None, marks: Any = ()) -> Any:  # noqa: A002
    return pytest.param(Entry(url, engine), id=id, marks=marks)


# port -> the adapters its contract runs against (the queue contract expects max_receives=3)
BACKENDS: dict[str, list[Any]] = {
    "sql": [
        param("sqlite:///{tmp}/app.db", id="sqlite"),
        # a fresh database, through PgBouncer, with a streaming replica behind the router
        param("postgresql://{engine.location}", id="postgres", engine="postgres_db", marks=pytest.mark.postgres),
    ],
    "objects": [
        param("file://{tmp}/objects", id="file"),
        param("memory://", id="memory"),
        # SeaweedFS's S3 gateway, a fresh bucket for each test
        param("s3://{engine.location}", id="s3", engine="s3_bucket", marks=pytest.mark.s3),
    ],
    "cache": [
        param("memory://?max_items=1000", id="memory"),
        # the session's Redis, through a key prefix of the test's own
        param("redis://{engine.location}", id="redis", engine="redis_db", marks=pytest.mark.redis),
    ],
    "queue": [
        param("sqlite:///{tmp}/queue.db?max_receives=3", id="sqlite"),
        param("sqlite://?max_receives=3", id="sqlite-memory"),
        param("postgresql://{engine.location}&max_receives=3", id="postgres", engine="postgres_db", marks=pytest.mark.postgres),
    ],
    "search": [
        param("sqlite:///{tmp}/search.db", id="sqlite"),
        param("sqlite://", id="sqlite-memory"),
        param("postgresql://{engine.location}", id="postgres", engine="postgres_db", marks=pytest.mark.postgres),
    ],
    "cdn": [
        param("none://", id="none"),
        # an edge and a regional tier in front of a small origin; purges go to both
        param("varnish://{engine.location}", id="varnish", engine="varnish_tiers", marks=pytest.mark.varnish),
    ],
    "mail": [
        param("outbox://{tmp}/outbox", id="outbox"),
        param(
            f"smtp://{{engine.address}}?from={SENDER}&starttls=false&timeout=10",
            id="smtp",
            engine="smtpd",
            marks=pytest.mark.smtp,
        ),
    ],
}


def backend_fixture(port: str, *, only: tuple[str, ...] | None = None) -> Any:
    """The ``backend`` fixture of a contract suite, parametrized over ``port``'s table (the lines
    whose ids ``only`` names, when a test module runs the suite on one adapter's lines)."""
    if port not in BACKENDS:
        raise ValueError(f"no table of adapters for port {port!r}; the tables are: {', '.join(sorted(BACKENDS))}")
    lines = BACKENDS[port]
    if only is not None:
        unknown = sorted(set(only) - {line.id for line in lines})
        if unknown:
            raise ValueError(f"no line {', '.join(unknown)} in the {port} table; its lines are: {', '.join(line.id for line in lines)}")
        lines = [line for line in lines if line.id in only]

    @pytest.fixture(params=lines, name="backend")
    def backend(self: object, request: pytest.FixtureRequest, tmp_path: Any) -> Backend:
        entry: Entry = request.param
        engine = request.getfixturevalue(entry.engine) if entry.engine else None
        return Backend(entry.url.format(tmp=tmp_path, engine=engine), engine)

    return backend
