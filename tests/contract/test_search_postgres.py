"""The search port on PostgreSQL: the contract, and what is particular to it: instances (as
processes would have) sharing one table, the stage's URL, a server that is down or drops
connections."""

from __future__ import annotations

import asyncio
import socket
import time
from urllib.parse import urlsplit, urlunsplit

import pytest

from summit.adapters.postgres.search import PostgresSearchIndex, _tsvector
from summit.ports.search import Document, SearchError, SearchUnavailable
from summit.testing.backends import backend_fixture
from summit.testing.search import SearchContract, ids
from summit.wiring import open_port

PATIENCE = 10.0  # an upper bound, in real seconds, for what should happen soon


class TestSearchContract(SearchContract):
    backend = backend_fixture("search", only=("postgres",))


@pytest.mark.postgres
async def test_two_instances_share_the_index(postgres_db) -> None:  # noqa: ANN001
    first, second = (open_port("search", postgres_db.url) for _ in range(2))
    try:
        # both make the table at once on a fresh database: the loser of that race carries on
        await asyncio.gather(first.count(), second.count())
        await asyncio.gather(
            first.index_many(Document("post", str(i), {"caption": f"shared ocean {i}"}) for i in range(600)),
            second.index("user", "1", {"name": "ocean lover"}, rank=9),
        )
        assert await second.count() == 601
        assert ids(await second.query("lover")) == [("user", "1")]
        assert await first.delete("user", "1")
        assert ids(await second.query("lover")) == []
        await second.optimize()
        assert len((await first.query("ocean", limit=100)).hits) == 100
    finally:
        await first.close()
        await second.close()


@pytest.mark.postgres
async def test_the_stage_url_with_the_sql_options(postgres_db) -> None:  # noqa: ANN001
    url = postgres_db.url + "&pool_size=3&max_lag_ms=500&poll_ms=50&synchronous=off&commit_timeout_ms=100"
    assert "replica=" in url and "prepared_statements=off" in url
    search = open_port("search", url)
    try:
        assert isinstance(search, PostgresSearchIndex) and not search.prepared_statements
        assert "passfile" in search.conninfo
        assert not {"replica", "pool_size", "max_lag_ms", "synchronous", "prepared_statements"} & set(search.conninfo)
        await search.index("user", "1", {"name": "alice"})
        assert [conn.prepare_threshold for conn in search._idle] == [None]  # PgBouncer keeps no prepared statements
    finally:
        await search.close()


@pytest.mark.postgres
async def test_words_are_stored_as_the_port_made_them(postgres_db) -> None:  # noqa: ANN001
    """PostgreSQL's parser plays no part: an e-mail address, a path or a version are words as on SQLite."""
    search = open_port("search", postgres_db.url)
    try:
        await search.index("post", "1", {"caption": "mail alice@example.com, see /usr/lib and v1.2.3"}, rank=1)
        for text in ("example", "alice", "usr", "lib", "v1", "3"):
            assert ids(await search.query(text)) == [("post", "1")], text
        with postgres_db.stage.superuser(postgres_db.name) as admin:
            [(words,)] = admin.execute("SELECT words::text FROM summit_search_docs").fetchall()
        expected = ["mail", "alice", "example", "com", "see", "usr", "lib", "and", "v1", "2", "3"]  # one field: the title (A)
        assert sorted(words.split()) == sorted(f"'{word}':{i}A" for i, word in enumerate(expected, 1))
    finally:
        await search.close()


def test_tsvector_literals() -> None:
    assert _tsvector(["alice", "liddell"], ["alice", "o'hara"]) == "'alice':1A,3 'liddell':2A 'o''hara':4"
    assert _tsvector([], []) == ""
    assert _tsvector(["x"] * 300, []).count(",") == 254  # at most 255 positions of a word


def test_url_options() -> None:
    search = PostgresSearchIndex.from_url("postgres://app:s%40cret@db.example:6432/summit?sslmode=require&connect_timeout=2")
    assert search.prepared_statements
    assert search.conninfo == {"host": "db.example", "port": 6432, "dbname": "summit", "user": "app", "password": "s@cret",
                               "sslmode": "require", "connect_timeout": "2"}
    assert "s@cret" not in repr(search)
    bare = PostgresSearchIndex.from_url("postgresql://db.example/summit?replica=db2:5432&prepared_statements=off")
    assert bare.conninfo == {"host": "db.example", "port": 5432, "dbname": "summit", "connect_timeout": "5"}
    assert not bare.prepared_statements


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("sqlite:///search.db", "postgresql://"),
        ("postgresql://db.example", "names a host and a database"),
        ("postgresql:///summit", "names a host and a database"),
        ("postgresql://db.example/summit?prepared_statements=maybe", "prepared_statements"),
    ],
)
def test_bad_urls_are_rejected(url: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        PostgresSearchIndex.from_url(url)


async def test_an_unreachable_server_is_search_unavailable_not_a_hang() -> None:
    with socket.socket() as probe:  # a loopback port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    search = PostgresSearchIndex.from_url(f"postgresql://summit@127.0.0.1:{port}/summit?connect_timeout=2")
    try:
        for call in (lambda: search.query("alice"), lambda: search.index("user", "1", {"name": "x"}), lambda: search.count()):
            start = time.monotonic()
            with pytest.raises(SearchUnavailable, match="127.0.0.1"):
                await call()
            assert time.monotonic() - start < PATIENCE
    finally:
        await search.close()


@pytest.mark.postgres
async def test_connections_the_server_dropped_are_replaced(postgres_db) -> None:  # noqa: ANN001
    """Straight to the primary (past PgBouncer): idle pooled connections that the server closed are
    replaced before anything is sent on them, so the caller sees no error."""
    parts = urlsplit(postgres_db.url)
    primary = postgres_db.stage.primary
    search = open_port("search", urlunsplit(parts._replace(netloc=f"{parts.username}@{primary.host}:{primary.port}")))
    try:
        await asyncio.gather(*(search.index("post", str(i), {"caption": "kept"}) for i in range(4)))
        assert len(search._idle) > 1
        with postgres_db.stage.superuser() as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                          (postgres_db.name,))
        await asyncio.sleep(0.1)
        assert len((await search.query("kept")).hits) == 4
    finally:
        await search.close()


@pytest.mark.postgres
async def test_a_closed_index_refuses_calls(postgres_db) -> None:  # noqa: ANN001
    search = open_port("search", postgres_db.url)
    await search.index("user", "1", {"name": "x"})
    await search.close()
    assert search._idle == []
    with pytest.raises(SearchError, match="closed"):
        await search.query("x")
