"""Move a stage-1 SQLite database into PostgreSQL (stage 1 -> 1+), IDs kept; and a stage-1 file
object store into the stage's S3 store (-> 10k), checksums verified (``copy_objects``, at the end).

The target gets the same schema from the same Alembic histories (``upgrade_all``), then every
table the histories made is copied in foreign-key order, in ONE transaction on the target, so a
failure leaves no row behind. The ``summit_ids`` sequence is moved past the source's
``summit_sequence``, so IDs minted on PostgreSQL never repeat one minted on SQLite. After the
commit, row counts and a checksum per table (rows in primary-key order, values normalised the same
way on both sides) prove the copy.

The source is opened read-only. The target must hold no rows yet, except in the tables that
every start of the app fills on its own (``STARTUP_TABLES``): those the copy replaces with the
source's, which its own start-ups filled the same way.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Boolean, Float, LargeBinary, MetaData, String, Table, create_engine, delete, event, func, insert, inspect, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from summit import migrate
from summit.ports.objects import ObjectError, ObjectInfo, ObjectNotFound, ObjectStore, ObjectStoreUnavailable

if TYPE_CHECKING:
    from summit.blueprint import Blueprint

BATCH = 1000  # rows per INSERT round trip
SEQUENCE_TABLE = "summit_sequence"  # the SQLite adapter's ID sequence (one row: its last value)
# Filled by every start of the app (Security.open makes each group with its policy): a running 1+
# stage has them already, and the source has the same rows from its own start-ups.
STARTUP_TABLES = frozenset({"identity_groups", "identity_policies", "identity_policy_attachments"})

Progress = Callable[[str, int, int], None]  # table, rows copied so far, rows in all


class DataMoveError(Exception):
    """The copy cannot start or did not finish; nothing was written to the target's rows."""


@dataclass
class TableReport:
    name: str
    source_rows: int
    target_rows: int = -1
    source_sum: str = ""
    target_sum: str = ""

    @property
    def ok(self) -> bool:
        return self.source_rows == self.target_rows and self.source_sum == self.target_sum


@dataclass
class Report:
    tables: list[TableReport] = field(default_factory=list)
    not_copied: list[str] = field(default_factory=list)  # source tables the histories do not make
    replaced: dict[str, int] = field(default_factory=dict)  # start-up table -> target rows replaced
    sequence: int = 0  # where summit_ids now stands

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tables)


def copy_sqlite_to_postgres(
    sqlite_path: Path, pg_sync_url: str, *, blueprint: Blueprint, on_progress: Progress = lambda table, done, total: None,
) -> Report:
    """Copy every table the deployment's histories made from ``sqlite_path`` into ``pg_sync_url``."""
    source = _open_source(Path(sqlite_path))
    target = create_engine(pg_sync_url, poolclass=NullPool, connect_args={"prepare_threshold": None})  # PgBouncer keeps none
    try:
        try:
            with source.begin() as src:
                src_meta = _reflect_source(src)
                version_tables = _check_revisions(src, blueprint)
            names = [t for t in src_meta.tables if t not in version_tables and t != SEQUENCE_TABLE
                     and not t.startswith(("alembic_version", "sqlite_"))]
            with target.connect() as dst:
                _refuse_rows(dst, [n for n in names if inspect(dst).has_table(n)])  # before the schema is written
            migrate.upgrade_all(blueprint, pg_sync_url)
            report, order = _copy(source, target, src_meta, names, on_progress)
        except DBAPIError as error:
            raise DataMoveError(f"the copy failed, and no row was written to the target: {_first_line(error)}") from None
        try:
            with source.begin() as src, target.connect() as dst:
                dst = dst.execution_options(isolation_level="REPEATABLE READ")
                for entry, table in zip(report.tables, order):
                    entry.source_sum = _checksum(src, src_meta.tables[table.name], table)
                    entry.target_rows = dst.execute(select(func.count()).select_from(table)).scalar_one()
                    entry.target_sum = _checksum(dst, table, table)
        except DBAPIError as error:
            raise DataMoveError(f"the rows were copied (committed), but checking them failed: {_first_line(error)}") from None
        return report
    finally:
        source.dispose()
        target.dispose()


def _copy(source: Engine, target: Engine, src_meta: MetaData, names: list[str], on_progress: Progress) -> tuple[Report, list[Table]]:
    """The copy itself: one transaction on the target, its tables locked against other writers."""
    report = Report()
    with source.begin() as src, target.begin() as dst:
        existing = set(inspect(dst).get_table_names())
        report.not_copied = sorted(n for n in names if n not in existing)
        dst_meta = MetaData()
        dst_meta.reflect(bind=dst, only=[n for n in names if n in existing])
        order = dst_meta.sorted_tables  # foreign-key order
        if order:
            dst.execute(text("LOCK TABLE " + ", ".join(f'"{t.name}"' for t in order) + " IN EXCLUSIVE MODE"))
        _refuse_rows(dst, [t.name for t in order])  # again, now that nobody else can write them
        for table in reversed(order):
            if table.name in STARTUP_TABLES and (gone := dst.execute(delete(table)).rowcount):
                report.replaced[table.name] = gone
        for table in order:
            report.tables.append(_copy_table(src, dst, src_meta.tables[table.name], table, on_progress))
        report.sequence = _move_sequence(src, dst, src_meta)
    return report, order


def _open_source(path: Path) -> Engine:
    """A read-only engine whose ``begin()`` starts a real SQLite transaction (one snapshot)."""
    if not path.is_file():
        raise DataMoveError(f"{path} does not exist: give the stage-1 data directory that holds the app's database")
    engine = _read_only(path)

    @event.listens_for(engine, "connect")
    def _no_implicit_transactions(dbapi: Any, record: Any) -> None:  # noqa: ANN401
        dbapi.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")

    return engine


def _read_only(path: Path) -> Engine:
    """An engine on the SQLite file at ``path`` that cannot write it (nor create it)."""
    uri = path.resolve().as_uri() + "?mode=ro"  # percent-encoded: any file name
    return create_engine("sqlite+pysqlite://", creator=lambda: sqlite3.connect(uri, uri=True, check_same_thread=False), poolclass=NullPool)


def _reflect_source(src: Connection) -> MetaData:
    meta = MetaData()
    try:
        meta.reflect(bind=src)
    except DBAPIError as error:
        raise DataMoveError(f"the source is not a readable SQLite database: {_first_line(error)}") from None
    return meta


def _check_revisions(src: Connection, blueprint: Blueprint) -> set[str]:
    """Each history of the source at the head this code has (else the schemas differ); their version tables."""
    tables = set()
    for history in migrate.histories(blueprint):
        tables.add(history.version_table)
        head = history.head()
        try:
            revision = src.execute(text(f'SELECT version_num FROM "{history.version_table}"')).scalar()
        except DBAPIError:
            revision = None
        if revision != head:
            state = "does not have it" if revision is None else f"is at revision {revision}"
            raise DataMoveError(
                f"{history.package}: the code's head is {head}, the source {state}: bring the stage-1 database to "
                "head first (`SUMMIT_STAGE=1 summit db upgrade --data-dir DIR`), or check that it is summit's app.db")
    return tables


def _refuse_rows(dst: Connection, names: Iterable[str]) -> None:
    full = [n for n in names if n not in STARTUP_TABLES and dst.execute(text(f'SELECT EXISTS (SELECT 1 FROM "{n}")')).scalar()]
    if full:
        raise DataMoveError(
            f"the target already has rows in {', '.join(sorted(full))}: nothing was written. "
            "Copy into an empty database (a fresh 1+ stage), or empty those tables first")


def _converters(table: Table) -> dict[str, Callable[[Any], Any]]:
    """How a value from SQLite (dynamically typed) becomes the target column's type."""
    out: dict[str, Callable[[Any], Any]] = {}
    for column in table.columns:
        if isinstance(column.type, Boolean):
            out[column.name] = lambda v: v if v is None else bool(v)
        elif isinstance(column.type, Float):
            out[column.name] = lambda v: float(v) if isinstance(v, (int, Decimal)) and not isinstance(v, bool) else v
        elif isinstance(column.type, LargeBinary):
            out[column.name] = lambda v: bytes(v) if isinstance(v, memoryview) else v
    return out


def _copy_table(src: Connection, dst: Connection, source: Table, target: Table, on_progress: Progress) -> TableReport:
    columns = [c.name for c in source.columns]
    unknown = [c for c in columns if c not in target.columns]
    if unknown:
        raise DataMoveError(f"{source.name}: the target has no column {', '.join(unknown)}: the schemas differ")
    total = src.execute(select(func.count()).select_from(source)).scalar_one()
    convert = _converters(target)
    on_progress(source.name, 0, total)
    done = 0
    rows = src.execution_options(yield_per=BATCH).execute(select(*(source.c[c] for c in columns)))
    for part in rows.partitions(BATCH):
        batch = [{c: convert[c](v) if c in convert else v for c, v in zip(columns, row)} for row in part]
        dst.execute(insert(target), batch)
        done += len(batch)
        on_progress(source.name, done, total)
    return TableReport(source.name, total)


def _move_sequence(src: Connection, dst: Connection, src_meta: MetaData) -> int:
    """Put ``summit_ids`` past the source's last sequence value (and past where it already is)."""
    last = 0
    if SEQUENCE_TABLE in src_meta.tables:
        last = src.execute(text(f"SELECT COALESCE(MAX(value), 0) FROM {SEQUENCE_TABLE}")).scalar_one()
    dst.execute(text("CREATE SEQUENCE IF NOT EXISTS summit_ids AS bigint"))
    return dst.execute(text("SELECT setval('summit_ids', GREATEST(:last, (SELECT last_value FROM summit_ids), 1))"),
                       {"last": int(last)}).scalar_one()


def _checksum(conn: Connection, table: Table, target: Table) -> str:
    """sha256 over the rows in primary-key order (byte order for text, on both engines), each value
    written as the same text whichever engine it came from."""
    columns = [c.name for c in table.columns]
    convert = _converters(target)
    keys = [c.name for c in target.primary_key.columns] or columns
    postgres = conn.dialect.name == "postgresql"
    order = [table.c[k].collate("C") if postgres and isinstance(target.c[k].type, String) else table.c[k] for k in keys]
    digest = hashlib.sha256()
    rows = conn.execution_options(yield_per=BATCH).execute(select(*(table.c[c] for c in columns)).order_by(*order))
    for row in rows:
        values = [_normal(convert[c](v) if c in convert else v) for c, v in zip(columns, row)]
        digest.update(json.dumps(values).encode() + b"\n")
    return digest.hexdigest()


def _normal(value: Any) -> str:  # noqa: ANN401
    if value is None:
        return "N"
    if isinstance(value, bool):
        return "T" if value else "F"
    if isinstance(value, int):
        return f"I{value}"
    if isinstance(value, (float, Decimal)):
        number = float(value)
        if math.isfinite(number) and number.is_integer() and abs(number) < 2**63:
            return f"I{int(number)}"  # 3.0 from one engine and 3 from the other are the same value
        return f"R{number!r}"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "B" + bytes(value).hex()
    if isinstance(value, str):
        return "S" + value
    return "O" + str(value)


def _first_line(error: BaseException) -> str:
    orig = getattr(error, "orig", None) or error
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0]


def pending_jobs(queue_path: Path) -> int | None:
    """Messages waiting in a stage-1 queue database (None if there is none to look at)."""
    if not queue_path.is_file():
        return None
    engine = _read_only(queue_path)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("summit_queue_messages"):
                return None
            return conn.execute(text("SELECT COUNT(*) FROM summit_queue_messages")).scalar_one()
    except DBAPIError:
        return None
    finally:
        engine.dispose()


# ---- objects: a stage-1 file store into an S3 store ------------------------------------------------

OBJECTS_PAGE = 1000  # objects listed (and copied concurrently, a few at a time) per page of the source
OBJECTS_AT_ONCE = 4


@dataclass
class ObjectsReport:
    total: int = 0
    copied: int = 0
    skipped: int = 0  # in the target already, with the same sha256
    bytes_copied: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # key, why

    @property
    def ok(self) -> bool:
        return not self.failed and self.copied + self.skipped == self.total


async def copy_objects(source: ObjectStore, target: ObjectStore, *, on_progress: Progress = lambda name, done, total: None) -> ObjectsReport:
    """Copy every object of ``source`` into ``target`` (key, bytes, content type), each verified: the
    source's bytes hash to their sha256, and so do the bytes read back from the target. An object
    the target has already with the same sha256 is skipped, so running it again (after an
    interruption, or to catch up) copies only what is missing. The source is only read.

    A target that stops answering ends the copy (``DataMoveError``: what was copied stays, and
    counts as done next time); an object that cannot be copied is reported and the rest go on."""
    report = ObjectsReport(total=await _count(source))
    on_progress("objects", 0, report.total)
    slots = asyncio.Semaphore(OBJECTS_AT_ONCE)

    async def one(info: ObjectInfo) -> None:
        async with slots:
            try:
                await _copy_object(source, target, info, report)
            except ObjectStoreUnavailable:
                raise
            except ObjectError as error:
                report.failed.append((info.key, str(error)))
            on_progress("objects", report.copied + report.skipped + len(report.failed), report.total)

    after = ""
    try:
        while page := await source.list(after=after, limit=OBJECTS_PAGE):
            await asyncio.gather(*(one(info) for info in page))
            after = page[-1].key
    except ObjectStoreUnavailable as error:
        raise DataMoveError(f"{error}; {report.copied} object(s) were copied and verified: run it again, they are skipped") from None
    report.total = max(report.total, report.copied + report.skipped + len(report.failed))  # puts to the source meanwhile
    return report


async def _count(store: ObjectStore) -> int:
    count, after = 0, ""
    while page := await store.list(after=after, limit=OBJECTS_PAGE):
        count, after = count + len(page), page[-1].key
    return count


async def _copy_object(source: ObjectStore, target: ObjectStore, info: ObjectInfo, report: ObjectsReport) -> None:
    try:
        there = await target.head(info.key)
        if there.etag == info.etag and there.size == info.size:
            report.skipped += 1
            return
    except ObjectNotFound:
        pass
    try:
        got = await source.get(info.key)
    except ObjectNotFound:
        report.total -= 1  # deleted since it was listed: nothing to copy
        return
    if hashlib.sha256(got.data).hexdigest() != got.info.etag:
        raise ObjectError(f"the source's bytes do not match their sha256 ({got.info.etag[:12]}...): not copied")
    await target.put(info.key, got.data, content_type=got.info.content_type)
    back = await target.get(info.key)
    if hashlib.sha256(back.data).hexdigest() != got.info.etag or back.info.content_type != got.info.content_type:
        raise ObjectError("the copy read back from the target differs from the source")
    report.copied += 1
    report.bytes_copied += len(got.data)

