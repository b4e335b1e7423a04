"""The search port on SQLite FTS5: an index in a file of its own, the embedded default of stage 1.

    sqlite:///<data_dir>/search.db?busy_timeout_ms=10000&inline_ms=20&readers=4
    sqlite://                      (in memory: private to the instance, for tests)

Two tables: ``summit_search_docs`` (kind, id, boost, filters; its rowid is the document's row in
the index) and ``summit_search_words``, an FTS5 table of the words the port made (title, body),
tokenized by ``unicode61`` with ``remove_diacritics 2`` (letters, digits and marks are word
characters, as the port's), with prefix indexes of 2 and 3 characters. A query is an OR of quoted
terms (``"alice"* OR "smith"*``: never syntax from the user's text) ranked by ``bm25`` with the
title weighing ``TITLE_WEIGHT`` times the body, times the document's boost.

Statements run on the event loop's thread, as the sql port's on SQLite do, under a deadline
(``inline_ms``) that SQLite's progress handler enforces. A query that passes it (a short prefix over
a large index) is interrupted and runs again, whole, on a worker thread, on the same read
connection, which it keeps meanwhile; the adapter remembers the last ``SLOW_QUERIES`` such queries
(their words, kinds and filters) and sends them to the thread at once the next time, since people
type the same short prefixes again and again. A write is one transaction: if it passes the
deadline, SQLite rolls the whole transaction back and it runs again on a thread; so does a write
that finds another process holding the lock (``BEGIN IMMEDIATE`` waits ``busy_timeout_ms`` there,
never on the loop); a batch of more than ``INLINE_DOCUMENTS`` goes to the thread at once. Writers
of this process queue on an asyncio lock and share one connection; readers have their own
(``readers``, WAL mode: they never wait for the writer). The WAL is copied back into the file by a
background thread once it passes ``CHECKPOINT_BYTES``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import orjson

from summit.adapters.sqlite.database import sqlite_path
from summit.ports.search import TITLE_WEIGHT, After, Hit, Prepared, QueryPlan, SearchError, SearchIndex, SearchUnavailable

T = TypeVar("T")

_OPTIONS = ("busy_timeout_ms", "inline_ms", "readers")
INLINE_DOCUMENTS = 20  # a larger index_many (a bulk load) runs on a thread from the start, not twice
SLOW_QUERIES = 1024  # queries remembered as too long for the loop
CHECKPOINT_BYTES = 4 * 1024 * 1024  # a WAL larger than this is copied back into the file (as SQLite's default)
_PROGRESS_STEPS = 1000  # SQLite VM steps between two looks at the deadline
_MIN_VERSION = (3, 35, 0)  # RETURNING
_DOCS = """CREATE TABLE IF NOT EXISTS summit_search_docs (
    id INTEGER PRIMARY KEY,  -- the document's rowid in summit_search_words
    kind TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    boost REAL NOT NULL,
    filters TEXT,  -- a JSON object; NULL without filters
    UNIQUE (kind, doc_id)
)"""
_WORDS = ("CREATE VIRTUAL TABLE IF NOT EXISTS summit_search_words USING fts5(title, body, "
          "tokenize = \"unicode61 remove_diacritics 2 categories 'L* N* M*'\", prefix = '2 3')")
_UPSERT = ("INSERT INTO summit_search_docs (kind, doc_id, boost, filters) VALUES (?, ?, ?, ?) "
           "ON CONFLICT (kind, doc_id) DO UPDATE SET boost = excluded.boost, filters = excluded.filters RETURNING id")
_SCORE = f"-bm25(summit_search_words, {TITLE_WEIGHT}, 1.0) * d.boost"


class _Connection(sqlite3.Connection):
    """sqlite3's connection with a deadline that its progress handler enforces."""

    deadline = 0.0  # time.perf_counter() after which a running statement is interrupted; 0: none

    def past_deadline(self) -> int:
        return 1 if self.deadline and time.perf_counter() > self.deadline else 0


class _Later(Exception):
    """Raised inline when a statement must run again on a thread (too long, or the lock is busy)."""


class SQLiteSearchIndex(SearchIndex):
    def __init__(self, path: Path | None, *, busy_timeout_ms: int = 10_000, inline_ms: float = 20.0, readers: int = 4):
        """``path=None`` keeps the index in memory, private to this instance."""
        for name, value, least in (("busy_timeout_ms", busy_timeout_ms, 0), ("inline_ms", inline_ms, 0), ("readers", readers, 1)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < least:
                raise ValueError(f"{name} must be a number >= {least}, not {value!r}")
        self.path = path
        self.busy_timeout_ms = int(busy_timeout_ms)
        self.inline_seconds = inline_ms / 1000
        self.max_readers = readers
        self.moved_to_thread = 0  # statements that passed the deadline or met a busy lock (for tests and status)
        self._writer: _Connection | None = None
        self._write_lock = asyncio.Lock()
        self._idle_readers: list[_Connection] = []
        self._open_readers = 0
        self._reader_freed = asyncio.Condition()
        self._checkpointing: threading.Thread | None = None
        self._slow: OrderedDict[str, None] = OrderedDict()  # match, kinds, filters -> (run on a thread)
        self._closed = False

    @classmethod
    def from_url(cls, url: str) -> SQLiteSearchIndex:
        parts = urlsplit(url)
        if parts.scheme.split("+", 1)[0].lower() != "sqlite":
            raise ValueError(f"{url!r}: the SQLite search index takes sqlite:///path/search.db URLs (sqlite:// in memory)")
        path = sqlite_path(url)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        unknown = sorted(set(query) - set(_OPTIONS))
        if unknown:
            raise ValueError(f"{url!r}: unknown option(s) {', '.join(unknown)}; the SQLite search index takes {', '.join(_OPTIONS)}")
        options: dict[str, int] = {}
        for name, value in query.items():
            if not value.isdigit() or (name == "readers" and int(value) < 1):
                unit = "a whole number of milliseconds" if name.endswith("_ms") else "a whole number >= 1"
                raise ValueError(f"{url!r}: {name} must be {unit}, not {value!r}")
            options[name] = int(value)
        return cls(path, **options)

    def __repr__(self) -> str:
        return f"SQLiteSearchIndex({str(self.path or ':memory:')!r})"

    # ---- the port (arguments checked by SearchIndex) -----------------------------------------

    async def _index(self, documents: Sequence[Prepared]) -> None:
        rows = [(d.kind, d.doc_id, d.boost, orjson.dumps(d.filters).decode() if d.filters else None,
                 " ".join(d.title), " ".join(d.body)) for d in documents]
        await self._write(_index_rows, rows, inline=len(rows) <= INLINE_DOCUMENTS)

    async def _delete(self, kind: str, doc_id: str) -> bool:
        return await self._write(_delete_row, kind, doc_id)

    async def _query(self, plan: QueryPlan) -> list[Hit]:
        sql, params = _query_statement(plan)
        key = repr((params["match"], plan.kinds, sorted(plan.filters.items())))
        slow = key in self._slow
        if slow:
            self._slow.move_to_end(key)
        rows = await self._read(lambda conn: conn.execute(sql, params).fetchall(), inline=not slow,
                                on_thread=lambda: self._remember_slow(key))
        return [Hit(kind, doc_id, score) for kind, doc_id, score in rows]

    def _remember_slow(self, key: str) -> None:
        self._slow[key] = None
        if len(self._slow) > SLOW_QUERIES:
            self._slow.popitem(last=False)

    async def _clear(self, kind: str | None) -> None:
        await self._write(_clear_rows, kind)

    async def _count(self, kind: str | None) -> int:
        if kind is None:
            sql, params = "SELECT count(*) FROM summit_search_docs", ()
        else:
            sql, params = "SELECT count(*) FROM summit_search_docs WHERE kind = ?", (kind,)
        return await self._read(lambda conn: conn.execute(sql, params).fetchone()[0])

    async def optimize(self) -> None:
        """Merge the index's segments into one (faster queries after a bulk load), on a thread."""
        def merge(conn: _Connection) -> None:
            conn.execute("INSERT INTO summit_search_words (summit_search_words) VALUES ('optimize')")

        await self._write(merge, inline=False)
        if self.path is not None:
            await asyncio.to_thread(self._checkpoint)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        async with self._write_lock:
            if self._checkpointing is not None:
                await asyncio.to_thread(self._checkpointing.join)
            for conn in [*self._idle_readers, *([self._writer] if self._writer else [])]:
                conn.close()
            self._idle_readers.clear()
            self._writer = None

    # ---- running statements ------------------------------------------------------------------

    async def _write(self, fn: Callable[..., T], *args: Any, inline: bool = True) -> T:
        """``fn(conn, *args)`` in one write transaction: inline under the deadline, else (or if it
        passes it, or the lock is busy) the whole transaction on a thread."""
        async with self._write_lock:
            conn = await self._writer_connection()
            try:
                if inline:
                    try:
                        result = self._transaction(conn, fn, args, waiting=False)
                    except _Later:
                        self.moved_to_thread += 1
                        result = await _on_thread(conn, self._transaction, conn, fn, args, waiting=True)
                else:
                    result = await _on_thread(conn, self._transaction, conn, fn, args, waiting=True)
            except sqlite3.Error as error:
                raise self._error(error) from error
            self._after_commit()
            return result

    def _transaction(self, conn: _Connection, fn: Callable[..., T], args: tuple[Any, ...], *, waiting: bool) -> T:
        if waiting:  # on a thread: wait for another process's lock, take as long as it takes
            conn.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
        try:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as error:
                if not waiting and _busy(error):
                    raise _Later from None
                raise
            try:
                if not waiting:
                    conn.deadline = time.perf_counter() + self.inline_seconds
                try:
                    result = fn(conn, *args)
                finally:
                    conn.deadline = 0.0
                conn.execute("COMMIT")
            except BaseException as error:
                if conn.in_transaction:  # (an interrupted statement has rolled it back already)
                    conn.execute("ROLLBACK")
                if not waiting and isinstance(error, sqlite3.OperationalError) and _interrupted_or_busy(error):
                    raise _Later from None
                raise
            return result
        finally:
            if waiting:
                conn.execute("PRAGMA busy_timeout = 0")

    async def _read(self, fn: Callable[[_Connection], T], *, inline: bool = True, on_thread: Callable[[], None] = lambda: None) -> T:
        """``fn(conn)``, one statement: inline under the deadline, else (or if it passes it) on a thread."""
        async with self._reader() as conn:
            if inline:
                conn.deadline = time.perf_counter() + self.inline_seconds
                try:
                    return fn(conn)
                except sqlite3.OperationalError as error:
                    if not _interrupted_or_busy(error):
                        raise self._error(error) from error
                except sqlite3.Error as error:
                    raise self._error(error) from error
                finally:
                    conn.deadline = 0.0
                self.moved_to_thread += 1
                on_thread()
            try:
                return await _on_thread(conn, self._waiting, conn, fn)
            except sqlite3.Error as error:
                raise self._error(error) from error

    def _waiting(self, conn: _Connection, fn: Callable[[_Connection], T]) -> T:
        conn.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
        try:
            return fn(conn)
        finally:
            conn.execute("PRAGMA busy_timeout = 0")

    @contextlib.asynccontextmanager
    async def _reader(self) -> AsyncIterator[_Connection]:
        """A read connection of this instance's own (in memory: the one connection, under the write lock)."""
        if self.path is None:
            async with self._write_lock:
                yield await self._writer_connection()
            return
        if self._writer is None:  # the schema exists before anyone reads
            async with self._write_lock:
                await self._writer_connection()
        conn = self._idle_readers.pop() if self._idle_readers else await self._another_reader()
        try:
            yield conn
        finally:
            if self._closed:
                conn.close()
            else:
                self._idle_readers.append(conn)
                if self._open_readers >= self.max_readers:
                    async with self._reader_freed:
                        self._reader_freed.notify()

    async def _another_reader(self) -> _Connection:
        if self._open_readers < self.max_readers:
            self._open_readers += 1
            try:
                conn = await asyncio.to_thread(self._connect, writer=False)
            except BaseException:
                self._open_readers -= 1
                raise
            return conn
        async with self._reader_freed:
            await self._reader_freed.wait_for(lambda: bool(self._idle_readers))
        return self._idle_readers.pop()

    # ---- connections -------------------------------------------------------------------------

    async def _writer_connection(self) -> _Connection:
        """The write connection (the caller holds the write lock); opened on a thread the first
        time, since making the file and its schema may wait for another process's lock."""
        if self._writer is None:
            self._writer = await asyncio.to_thread(self._open_writer)
        return self._writer

    def _connect(self, *, writer: bool) -> _Connection:
        """A connection, on a thread: opening one may wait for another process (switching a new
        file to WAL, making the schema); once open, it never waits on the loop (busy_timeout 0)."""
        if self._closed:
            raise SearchError(f"{self!r} is closed")
        if sqlite3.sqlite_version_info < _MIN_VERSION:
            raise SearchError(f"the SQLite search index needs SQLite >= 3.35 with FTS5; this Python has {sqlite3.sqlite_version}: "
                              "use a newer Python, or postgresql:// for the search port")
        try:
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path or ":memory:", factory=_Connection, isolation_level=None,
                                   check_same_thread=False, timeout=self.busy_timeout_ms / 1000)
        except (OSError, sqlite3.Error) as error:
            raise SearchError(f"{self!r}: cannot open the index: {error}") from error
        pragmas = ("synchronous = NORMAL", "wal_autocheckpoint = 0") if writer else ("query_only = ON", "busy_timeout = 0")
        try:
            if writer:
                self._switch_to_wal(conn)
            for pragma in pragmas:
                conn.execute(f"PRAGMA {pragma}")
        except sqlite3.Error as error:
            conn.close()
            raise self._error(error) from error
        conn.set_progress_handler(conn.past_deadline, _PROGRESS_STEPS)
        return conn

    def _switch_to_wal(self, conn: _Connection) -> None:
        """WAL mode (kept in the file). Two processes switching a new file at once each hold a
        shared lock and want an exclusive one: SQLite answers one of them "locked" at once, without
        waiting, so it tries again here until busy_timeout_ms."""
        deadline = time.monotonic() + self.busy_timeout_ms / 1000
        while True:
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as error:
                if not _busy(error) or time.monotonic() > deadline:
                    raise
            time.sleep(0.01)

    def _open_writer(self) -> _Connection:
        """A write connection, with the schema made (on a thread: it may wait for another process)."""
        conn = self._connect(writer=True)
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(_DOCS)
                conn.execute(_WORDS)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("PRAGMA busy_timeout = 0")  # from now on, waiting happens on a thread, on purpose
        except sqlite3.Error as error:
            conn.close()
            if "no such module: fts5" in str(error):
                raise SearchError(f"this Python's SQLite ({sqlite3.sqlite_version}) has no FTS5: use one built with it, "
                                  "or postgresql:// for the search port") from error
            raise self._error(error) from error
        return conn

    def _after_commit(self) -> None:
        if self.path is None or (self._checkpointing and self._checkpointing.is_alive()):
            return
        try:
            size = self.path.with_name(self.path.name + "-wal").stat().st_size
        except OSError:
            return
        if size > CHECKPOINT_BYTES:
            self._checkpointing = threading.Thread(target=self._checkpoint, name="summit-search-checkpoint", daemon=True)
            self._checkpointing.start()

    def _checkpoint(self) -> None:
        """Copy the WAL back into the file, on a connection of its own (PASSIVE: blocks nobody)."""
        with contextlib.closing(sqlite3.connect(self.path, timeout=0)) as conn:  # type: ignore[arg-type]
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _error(self, error: sqlite3.Error) -> SearchError:
        if _busy(error):
            return SearchUnavailable(f"{self!r}: another process holds the index's lock past {self.busy_timeout_ms} ms")
        return SearchError(f"{self!r}: {error}")


async def _on_thread(conn: _Connection, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn`` on a worker thread, using ``conn``. If the caller is cancelled, the statement running
    there is interrupted (a transaction rolls back) and the thread is waited for, so that ``conn``
    is never handed to anyone else while the thread still uses it."""
    work = asyncio.ensure_future(asyncio.to_thread(fn, *args, **kwargs))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        conn.interrupt()
        await asyncio.wait({work})
        if not work.cancelled():
            work.exception()  # retrieved: the caller is gone, however the thread ended
        raise


def _busy(error: sqlite3.Error) -> bool:
    return "locked" in str(error) or "busy" in str(error)


def _interrupted_or_busy(error: sqlite3.Error) -> bool:
    return str(error) == "interrupted" or _busy(error)


# ---- statements (on the connection they are given; inside a transaction when they write) --------

def _index_rows(conn: _Connection, rows: list[tuple[str, str, float, str | None, str, str]]) -> None:
    for kind, doc_id, boost, filters, title, body in rows:
        rowid = conn.execute(_UPSERT, (kind, doc_id, boost, filters)).fetchone()[0]
        conn.execute("DELETE FROM summit_search_words WHERE rowid = ?", (rowid,))  # a replaced document's words
        conn.execute("INSERT INTO summit_search_words (rowid, title, body) VALUES (?, ?, ?)", (rowid, title, body))


def _delete_row(conn: _Connection, kind: str, doc_id: str) -> bool:
    row = conn.execute("DELETE FROM summit_search_docs WHERE kind = ? AND doc_id = ? RETURNING id", (kind, doc_id)).fetchone()
    if row is None:
        return False
    conn.execute("DELETE FROM summit_search_words WHERE rowid = ?", (row[0],))
    return True


def _clear_rows(conn: _Connection, kind: str | None) -> None:
    if kind is None:  # dropping is far faster than deleting each document's words
        conn.execute("DROP TABLE summit_search_words")
        conn.execute("DROP TABLE summit_search_docs")
        conn.execute(_DOCS)
        conn.execute(_WORDS)
        return
    conn.execute("DELETE FROM summit_search_words WHERE rowid IN (SELECT id FROM summit_search_docs WHERE kind = ?)", (kind,))
    conn.execute("DELETE FROM summit_search_docs WHERE kind = ?", (kind,))


def _query_statement(plan: QueryPlan) -> tuple[str, dict[str, Any]]:
    """The SELECT of a plan and its parameters: the user's words travel as quoted FTS5 strings."""
    params: dict[str, Any] = {"match": " OR ".join(_phrase(t.word) + ("*" if t.prefix else "") for t in plan.terms),
                              "limit": plan.limit + 1}
    where = ["summit_search_words MATCH :match"]
    if plan.kinds is not None:
        names = [f"k{i}" for i in range(len(plan.kinds))]
        params.update(zip(names, plan.kinds))
        where.append(f"d.kind IN ({', '.join(':' + n for n in names)})")
    for i, (name, value) in enumerate(sorted(plan.filters.items())):
        params[f"fp{i}"], params[f"fv{i}"] = f'$."{name}"', value
        where.append(f"json_extract(d.filters, :fp{i}) = :fv{i}")
    sql = (f"SELECT kind, doc_id, score FROM (SELECT d.kind AS kind, d.doc_id AS doc_id, {_SCORE} AS score "
           "FROM summit_search_words CROSS JOIN summit_search_docs AS d ON d.id = summit_search_words.rowid "
           f"WHERE {' AND '.join(where)})")
    if plan.after is not None:
        sql += " WHERE score < :score OR (score = :score AND (kind > :kind OR (kind = :kind AND doc_id > :doc_id)))"
        params.update(_after(plan.after))
    return sql + " ORDER BY score DESC, kind, doc_id LIMIT :limit", params


def _phrase(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


def _after(after: After) -> dict[str, Any]:
    return {"score": after.score, "kind": after.kind, "doc_id": after.doc_id}
