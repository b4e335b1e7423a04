"""The search port on PostgreSQL full-text search: one table shared by every process (psycopg 3).

    postgresql://summit@127.0.0.1:6432/summit?passfile=/srv/secrets/pgpass&prepared_statements=off

``prepared_statements=off`` (behind PgBouncer in transaction pooling) is the index's one option; the
sql adapter's options (``replica``, ``pool_size`` ...) are accepted and ignored, since a stage gives
every port the same base URL; the rest of the query goes to libpq.

One table, ``summit_search_docs``: kind, id, boost, filters (jsonb) and a ``tsvector`` of the words
the port made, with a GIN index on it. The tsvector and the tsquery are written as literals from
those words (``'alice':1A 'liddell':2A 'curious':3``, ``'ali':* | 'smith':*``), never parsed from
the user's text, so PostgreSQL's own parser (which reads e-mail addresses, paths, versions and
depends on the server's locale) plays no part and both adapters cut text the same way. Title
words carry weight A, the others D.

Ranking: PostgreSQL's ``ts_rank`` knows nothing of how common a word is, so each term's rank is
weighed by its rarity among the documents the query matched, ``ln(1 + matched / matched_by_term)``
(a BM25-like IDF computed in the same statement), then summed and multiplied by the boost. Ties
are broken by (kind, id) in code-point order (``COLLATE "C"``), as on SQLite.

Every call is one short transaction on an autocommit connection of a small pool, so it works
through PgBouncer's transaction pooling; a server that cannot be reached or does not answer within
``_TIMEOUT`` is ``SearchUnavailable``. Queries read the primary: an edit is found at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

import orjson
import psycopg

from summit.adapters.postgres.connections import Connections
from summit.ports.search import TITLE_WEIGHT, Hit, Prepared, QueryPlan, SearchError, SearchIndex, SearchUnavailable

T = TypeVar("T")

_POOL_SIZE = 4  # connections per instance: a call holds one for a single short transaction
_TIMEOUT = 15.0  # seconds a call may take, waiting for a connection included
_BATCH = 500  # documents per INSERT of index_many
_MAX_POSITIONS = 255  # positions of one word in a document's tsvector (PostgreSQL keeps 256)
_SQL_OPTIONS = ("replica", "reader", "pool_size", "max_lag_ms", "poll_ms", "replica_timeout_ms", "synchronous", "commit_timeout_ms")
_UNAVAILABLE_STATES = ("08", "57P01", "57P02", "57P03")  # connection exceptions, shutdowns, not yet accepting
_WEIGHTS = f"'{{{1 / TITLE_WEIGHT}, {1 / TITLE_WEIGHT}, {1 / TITLE_WEIGHT}, 1.0}}'::float4[]"  # D, C, B, A
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS summit_search_docs (
        kind text COLLATE "C" NOT NULL,
        doc_id text COLLATE "C" NOT NULL,
        boost double precision NOT NULL,
        filters jsonb,  -- NULL without filters
        words tsvector NOT NULL,
        PRIMARY KEY (kind, doc_id)
    )""",
    "CREATE INDEX IF NOT EXISTS summit_search_words ON summit_search_docs USING gin (words)",
)
# CREATE INDEX takes a lock on the table even when the index exists: look before creating
_SCHEMA_PRESENT = "SELECT to_regclass('summit_search_docs') IS NOT NULL AND to_regclass('summit_search_words') IS NOT NULL"
_UPSERT = (
    "INSERT INTO summit_search_docs (kind, doc_id, boost, filters, words) "
    "SELECT * FROM unnest(%s::text[], %s::text[], %s::float8[], %s::jsonb[], %s::tsvector[]) "
    "ON CONFLICT (kind, doc_id) DO UPDATE SET boost = excluded.boost, filters = excluded.filters, words = excluded.words"
)


class PostgresSearchIndex(SearchIndex):
    def __init__(self, conninfo: dict[str, Any], *, prepared_statements: bool = True):
        """``conninfo``: libpq connection keywords (host, port, dbname, user, passfile ...)."""
        self._connections = Connections(conninfo, prepared_statements=prepared_statements, size=_POOL_SIZE,
                                        schema_present=_SCHEMA_PRESENT, schema=_SCHEMA)

    conninfo = property(lambda self: self._connections.conninfo, doc="libpq's connection keywords")
    prepared_statements = property(lambda self: self._connections.prepared_statements)
    _idle = property(lambda self: self._connections.idle)

    @classmethod
    def from_url(cls, url: str) -> PostgresSearchIndex:
        parts = urlsplit(url)
        if parts.scheme.split("+", 1)[0].lower() not in ("postgresql", "postgres"):
            raise ValueError(f"{url!r}: the PostgreSQL search index takes postgresql:// URLs")
        if not parts.hostname or not parts.path.strip("/"):
            raise ValueError(f"{url!r}: a PostgreSQL URL names a host and a database: postgresql://user@host:port/database")
        conninfo: dict[str, Any] = {"host": parts.hostname, "port": parts.port or 5432, "dbname": unquote(parts.path.strip("/"))}
        if parts.username:
            conninfo["user"] = unquote(parts.username)
        if parts.password:
            conninfo["password"] = unquote(parts.password)
        prepared = True
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key == "prepared_statements":
                if value.lower() not in ("on", "off", "true", "false", "1", "0", "yes", "no"):
                    raise ValueError(f"{url.split('@')[-1]!r}: prepared_statements is on or off, not {value!r}")
                prepared = value.lower() in ("on", "true", "1", "yes")
            elif key not in _SQL_OPTIONS:  # libpq's business
                conninfo[key] = value
        return cls(conninfo, prepared_statements=prepared)

    def __repr__(self) -> str:
        info = self.conninfo
        return f"PostgresSearchIndex('{info['host']}:{info['port']}/{info['dbname']}')"

    # ---- the port (arguments checked by SearchIndex) -----------------------------------------

    async def _index(self, documents: Sequence[Prepared]) -> None:
        async def upsert(conn: psycopg.AsyncConnection[Any]) -> None:
            for start in range(0, len(documents), _BATCH):
                batch = documents[start:start + _BATCH]
                await conn.execute(_UPSERT, (
                    [d.kind for d in batch], [d.doc_id for d in batch], [d.boost for d in batch],
                    [orjson.dumps(d.filters).decode() if d.filters else None for d in batch],
                    [_tsvector(d.title, d.body) for d in batch],
                ))

        await self._run(upsert)

    async def _delete(self, kind: str, doc_id: str) -> bool:
        async def delete(conn: psycopg.AsyncConnection[Any]) -> int:
            cursor = await conn.execute("DELETE FROM summit_search_docs WHERE kind = %s AND doc_id = %s", (kind, doc_id))
            return cursor.rowcount

        return await self._run(delete) == 1

    async def _query(self, plan: QueryPlan) -> list[Hit]:
        sql, params = _query_statement(plan)

        async def select(conn: psycopg.AsyncConnection[Any]) -> list[Hit]:
            rows = await (await conn.execute(sql, params)).fetchall()
            return [Hit(kind, doc_id, score) for kind, doc_id, score in rows]

        return await self._run(select)

    async def _clear(self, kind: str | None) -> None:
        if kind is None:  # far faster than deleting each row; waits for the queries running on the table
            await self._run(lambda conn: conn.execute("TRUNCATE summit_search_docs"))
        else:
            await self._run(lambda conn: conn.execute("DELETE FROM summit_search_docs WHERE kind = %s", (kind,)))

    async def _count(self, kind: str | None) -> int:
        async def count(conn: psycopg.AsyncConnection[Any]) -> int:
            if kind is None:
                cursor = await conn.execute("SELECT count(*) FROM summit_search_docs")
            else:
                cursor = await conn.execute("SELECT count(*) FROM summit_search_docs WHERE kind = %s", (kind,))
            return (await cursor.fetchone())[0]  # type: ignore[index]

        return await self._run(count)

    async def optimize(self) -> None:
        """Move the GIN index's pending entries into it and refresh the planner's statistics."""
        async def tidy(conn: psycopg.AsyncConnection[Any]) -> None:
            await conn.execute("SELECT gin_clean_pending_list('summit_search_words'::regclass)")
            await conn.execute("ANALYZE summit_search_docs")

        await self._run(tidy)

    async def close(self) -> None:
        """Close the idle connections now; those in use close when their call ends."""
        await self._connections.close()

    # ---- connections -------------------------------------------------------------------------

    async def _run(self, work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]) -> T:
        """``work`` in one transaction on a pooled connection; the caller sees the port's errors only."""
        if self._connections.closed:
            raise SearchError(f"{self!r} is closed")
        try:
            async with asyncio.timeout(_TIMEOUT), self._connections.slots:
                if self._connections.closed:  # closed while this call waited for a connection
                    raise SearchError(f"{self!r} is closed")
                return await self._connections.transaction(work)
        except TimeoutError:
            raise SearchUnavailable(f"{self!r}: no answer from the server within {_TIMEOUT:g} s") from None
        except psycopg.Error as error:
            message = f"{self!r}: {(str(error).strip().splitlines() or [type(error).__name__])[0]}"
            state = error.sqlstate or ""
            if state.startswith(_UNAVAILABLE_STATES) or (isinstance(error, psycopg.OperationalError) and not state):
                raise SearchUnavailable(message) from error
            raise SearchError(message) from error


# ---- literals and statements ----------------------------------------------------------------------

def _lexeme(word: str) -> str:
    """A word as a quoted tsvector/tsquery lexeme (the port's words have no quote or backslash;
    they are escaped all the same)."""
    return "'" + word.replace("\\", "\\\\").replace("'", "''") + "'"


def _tsvector(title: list[str], body: list[str]) -> str:
    """The tsvector literal of a document: each word with its positions, title words weighted A."""
    positions: dict[str, list[str]] = {}
    for position, word in enumerate(title, 1):
        positions.setdefault(word, []).append(f"{position}A")
    for position, word in enumerate(body, len(title) + 1):
        positions.setdefault(word, []).append(str(position))
    return " ".join(f"{_lexeme(word)}:{','.join(places[:_MAX_POSITIONS])}" for word, places in positions.items())


def _query_statement(plan: QueryPlan) -> tuple[str, dict[str, Any]]:
    """The SELECT of a plan and its parameters; the terms travel as tsquery literals."""
    terms = [_lexeme(t.word) + (":*" if t.prefix else "") for t in plan.terms]
    params: dict[str, Any] = {"any": " | ".join(terms), "limit": plan.limit + 1}
    params.update((f"q{i}", term) for i, term in enumerate(terms))
    where = ["words @@ %(any)s::tsquery"]
    if plan.kinds is not None:
        params["kinds"] = list(plan.kinds)
        where.append("kind = ANY(%(kinds)s::text[])")
    if plan.filters:
        params["filters"] = orjson.dumps(plan.filters).decode()
        where.append("filters @> %(filters)s::jsonb")
    matched_by = ", ".join(f"count(*) FILTER (WHERE words @@ %(q{i})s::tsquery) OVER () AS n{i}" for i in range(len(terms)))
    relevance = " + ".join(f"ln(1 + matched::float8 / greatest(n{i}, 1)) * ts_rank({_WEIGHTS}, words, %(q{i})s::tsquery, 1)"
                           for i in range(len(terms)))
    sql = (f"SELECT kind, doc_id, score FROM (SELECT kind, doc_id, boost * ({relevance}) AS score FROM ("
           f"SELECT kind, doc_id, boost, words, count(*) OVER () AS matched, {matched_by} "
           f"FROM summit_search_docs WHERE {' AND '.join(where)}) AS found) AS scored")
    if plan.after is not None:
        sql += " WHERE score < %(score)s OR (score = %(score)s AND (kind, doc_id) > (%(kind)s, %(doc_id)s))"
        params.update(score=plan.after.score, kind=plan.after.kind, doc_id=plan.after.doc_id)
    return sql + " ORDER BY score DESC, kind, doc_id LIMIT %(limit)s", params
