"""What one statement costs through the sql port on SQLite, against plain sqlite3 in the same run.

    .venv/bin/python bench/sqlite_roundtrip.py [iterations]

Prints microseconds per operation and the ratio to plain sqlite3 doing the same work:
- `SELECT 1` on an open connection;
- a primary-key read (a SQLAlchemy Core `select` built once, as the app's hot paths do) inside an
  open `db.read()` block, and the same read built anew for each call (as most app code does);
- a whole `db.read()` block: checkout, BEGIN, the primary-key read, ROLLBACK;
- a whole `db.write()` block: BEGIN IMMEDIATE, one UPDATE by primary key, COMMIT.
Plain sqlite3 runs the same SQL text on one connection of its own, in WAL mode, in a transaction
where the port uses one.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from summit.wiring import open_port

metadata = sa.MetaData()
users = sa.Table(
    "bench_users",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("username", sa.String(64), nullable=False),
    sa.Column("bio", sa.String(300), nullable=False),
)
ROWS = 1000


def per_call(started: float, n: int) -> float:
    return (time.perf_counter() - started) / n * 1e6


async def port_figures(path: Path, n: int) -> dict[str, float]:
    db = open_port("sql", f"sqlite:///{path}")
    async with db.write() as conn:
        await conn.run_sync(metadata.create_all)
        await conn.execute(sa.insert(users), [{"id": i, "username": f"user{i}", "bio": "x" * 80} for i in range(ROWS)])
    by_id = sa.select(users).where(users.c.id == sa.bindparam("id"))
    one = sa.text("SELECT 1")
    out = {}
    async with db.read() as conn:
        started = time.perf_counter()
        for _ in range(n):
            await conn.execute(one)
        out["select 1"] = per_call(started, n)
        started = time.perf_counter()
        for i in range(n):
            (await conn.execute(by_id, {"id": i % ROWS})).first()
        out["pk read"] = per_call(started, n)
        started = time.perf_counter()
        for i in range(n):
            (await conn.execute(sa.select(users).where(users.c.id == i % ROWS))).first()
        out["pk read, built per call"] = per_call(started, n)
    started = time.perf_counter()
    for i in range(n):
        async with db.read() as conn:
            (await conn.execute(by_id, {"id": i % ROWS})).first()
    out["read block"] = per_call(started, n)
    bump = sa.update(users).where(users.c.id == sa.bindparam("uid")).values(bio=sa.bindparam("b"))
    started = time.perf_counter()
    for i in range(n):
        async with db.write() as conn:
            await conn.execute(bump, {"uid": i % ROWS, "b": f"bio {i}"})
    out["write block"] = per_call(started, n)
    await db.close()
    return out


def plain_figures(path: Path, n: int) -> dict[str, float]:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    sql = "SELECT id, username, bio FROM bench_users WHERE id = ?"
    out = {}
    conn.execute("BEGIN")
    started = time.perf_counter()
    for _ in range(n):
        conn.execute("SELECT 1").fetchall()
    out["select 1"] = per_call(started, n)
    started = time.perf_counter()
    for i in range(n):
        conn.execute(sql, (i % ROWS,)).fetchone()
    out["pk read"] = out["pk read, built per call"] = per_call(started, n)
    conn.execute("ROLLBACK")
    started = time.perf_counter()
    for i in range(n):
        conn.execute("BEGIN")
        conn.execute(sql, (i % ROWS,)).fetchone()
        conn.execute("ROLLBACK")
    out["read block"] = per_call(started, n)
    started = time.perf_counter()
    for i in range(n):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE bench_users SET bio = ? WHERE id = ?", (f"bio {i}", i % ROWS))
        conn.execute("COMMIT")
    out["write block"] = per_call(started, n)
    conn.close()
    return out


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        port = await port_figures(path, n)
        plain = plain_figures(path, n)
    print(f"{'operation':26} {'plain sqlite3':>14} {'sql port':>10} {'ratio':>7}")
    for name, value in port.items():
        print(f"{name:26} {plain[name]:11.1f} us {value:7.1f} us {value / plain[name]:6.1f}x")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000))
