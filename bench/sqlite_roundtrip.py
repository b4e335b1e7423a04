"""What one statement costs through the sql port on SQLite (SQLAlchemy async over aiosqlite).

    .venv/bin/python bench/sqlite_roundtrip.py [iterations]

Prints microseconds per `SELECT 1` on an open connection, and per whole `db.read()` block (checkout,
BEGIN, the query, ROLLBACK on return), against the same query on a plain sqlite3 connection: the
difference is the cost of the thread hops, not of SQLite.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

from summit.wiring import open_port


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        db = open_port("sql", f"sqlite:///{path}")
        await db.ping()
        async with db.read() as conn:
            started = time.perf_counter()
            for _ in range(n):
                await conn.execute(text("SELECT 1"))
            per_statement = (time.perf_counter() - started) / n
        started = time.perf_counter()
        for _ in range(n):
            async with db.read() as conn:
                await conn.execute(text("SELECT 1"))
        per_block = (time.perf_counter() - started) / n
        await db.close()
        plain = sqlite3.connect(path)
        started = time.perf_counter()
        for _ in range(n):
            plain.execute("SELECT 1").fetchall()
        per_plain = (time.perf_counter() - started) / n
        plain.close()
    print(f"plain sqlite3 SELECT 1:          {per_plain * 1e6:8.1f} us")
    print(f"sql port, SELECT 1 (open conn):  {per_statement * 1e6:8.1f} us  ({per_statement / per_plain:,.0f} x plain)")
    print(f"sql port, whole db.read() block: {per_block * 1e6:8.1f} us  ({per_block / per_plain:,.0f} x plain)")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000))
