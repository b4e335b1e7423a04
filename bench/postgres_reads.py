"""The data tier measured against its own engines, in one run (ratios are what to read):

    .venv/bin/python bench/postgres_reads.py [--seconds 10]

Starts a stage of its own with the control plane (PostgreSQL primary + 2 streaming replicas, a
PgBouncer in front of each), pins the servers to CPU 0 and the clients to CPU 1, and reports:
- the baseline: `pgbench -S` (primary-key reads of pgbench_accounts) with one client through the
  primary's PgBouncer;
- the same primary-key read done by one asyncio task through the sql port (a whole `db.read()`
  block each: BEGIN, the SELECT, ROLLBACK), with 0 replicas (the primary) and with 2 (the router
  picks a replica), and its ratio to the baseline;
- read throughput with 0 and 2 replicas under 32 concurrent tasks in one process;
- replication lag under a write load (pgbench's TPC-B-like script, 4 clients): the time from a
  commit on the primary until a replica shows it, p50 and p99.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import statistics
import subprocess
import time

import psutil
import sqlalchemy as sa

from summit.engines.postgres import APP_ROLE, bin_dir
from summit.testing.engines import PostgresStage, running_postgres
from summit.wiring import open_port

ACCOUNTS = 100_000  # pgbench -s 1
accounts = sa.Table("pgbench_accounts", sa.MetaData(), sa.Column("aid", sa.Integer, primary_key=True), sa.Column("abalance", sa.Integer))


def pin_servers(stage: PostgresStage, cpu: int) -> None:
    for unit in stage.supervisor.units:
        leader = psutil.Process(unit.process.pid)
        for process in [leader, *leader.children(recursive=True)]:
            try:
                process.cpu_affinity([cpu])
            except psutil.Error:
                pass


def pgbench(stage: PostgresStage, database: str, *args: str, port: int | None = None) -> str:
    front = stage.stage.engine("pgbouncer-primary")
    env = {**os.environ, "PGPASSFILE": str(stage.stage.layout.secrets_dir / "pgpass")}
    argv = ["taskset", "-c", "1", str(bin_dir() / "pgbench"), "-h", "127.0.0.1", "-p", str(port or front.port), "-U", APP_ROLE, *args, database]
    return subprocess.run(argv, capture_output=True, text=True, env=env, check=True, timeout=600).stdout


def tps(output: str) -> float:
    return float(re.search(r"tps = ([0-9.]+)", output).group(1))  # type: ignore[union-attr]


async def port_reads(url: str, seconds: float, tasks: int) -> float:
    """Primary-key reads per second through the sql port: ``tasks`` tasks, each a read block per read."""
    db = open_port("sql", url)
    query = sa.select(accounts.c.abalance).where(accounts.c.aid == sa.bindparam("aid"))
    async with db.read() as conn:  # connect, and let the router see the replicas once
        await conn.execute(query, {"aid": 1})
    if db.monitor is not None:
        await db.monitor.first_poll()
    count = 0
    deadline = time.monotonic() + seconds

    async def reader() -> None:
        nonlocal count
        while time.monotonic() < deadline:
            async with db.read() as conn:
                (await conn.execute(query, {"aid": random.randint(1, ACCOUNTS)})).first()
            count += 1

    started = time.monotonic()
    await asyncio.gather(*(reader() for _ in range(tasks)))
    elapsed = time.monotonic() - started
    await db.close()
    return count / elapsed


def replication_lag(stage: PostgresStage, database: str, seconds: float) -> list[float]:
    """Commit-to-visible times on replica 1 while pgbench writes in the background."""
    load = subprocess.Popen(  # noqa: S603
        ["taskset", "-c", "1", str(bin_dir() / "pgbench"), "-h", "127.0.0.1", "-p", str(stage.stage.engine("pgbouncer-primary").port),
         "-U", APP_ROLE, "-c", "4", "-j", "2", "-T", str(int(seconds) + 2), "-n", database],
        env={**os.environ, "PGPASSFILE": str(stage.stage.layout.secrets_dir / "pgpass")}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    lags: list[float] = []
    try:
        with stage.superuser(database) as primary, stage.superuser(database, server="postgres-replica-1") as replica:
            primary.execute("CREATE TABLE IF NOT EXISTS lag_marks (id int PRIMARY KEY, n int)")
            primary.execute("INSERT INTO lag_marks VALUES (1, 0) ON CONFLICT (id) DO UPDATE SET n = 0")
            time.sleep(0.5)
            deadline = time.monotonic() + seconds
            n = 0
            while time.monotonic() < deadline and n < 5000:
                n += 1
                primary.execute("UPDATE lag_marks SET n = %s WHERE id = 1", (n,))
                committed = time.perf_counter()
                while replica.execute("SELECT n FROM lag_marks WHERE id = 1").fetchone()[0] < n:
                    if time.perf_counter() - committed > 10:
                        raise RuntimeError("the replica fell more than 10 s behind")
                lags.append(time.perf_counter() - committed)
                time.sleep(0.01)
    finally:
        load.wait(timeout=60)
    return lags


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per measurement")
    o = parser.parse_args()
    with running_postgres(replicas=2) as stage:
        database = stage.create_database("bench")
        with stage.superuser(database) as conn:
            conn.execute(f'GRANT ALL ON SCHEMA public TO "{APP_ROLE}"')
        pgbench(stage, database, "-i", "-s", "1", "-q", port=stage.primary.port)
        pin_servers(stage, 0)
        os.sched_setaffinity(0, {1})
        time.sleep(1)  # replicas catch up with the initialisation
        baseline = tps(pgbench(stage, database, "-S", "-c", "1", "-j", "1", "-T", str(int(o.seconds)), "-n"))
        primary_only = stage.url(database).split("&replica=")[0] + "&prepared_statements=off"
        with_replicas = stage.url(database)
        single_0 = asyncio.run(port_reads(primary_only, o.seconds, 1))
        single_2 = asyncio.run(port_reads(with_replicas, o.seconds, 1))
        many_0 = asyncio.run(port_reads(primary_only, o.seconds, 32))
        many_2 = asyncio.run(port_reads(with_replicas, o.seconds, 32))
        lags = replication_lag(stage, database, o.seconds)
    q = statistics.quantiles(lags, n=100)
    print(f"{'measure':58} {'value':>12}")
    print(f"{'pgbench -S, 1 client, through PgBouncer (baseline)':58} {baseline:9,.0f}/s")
    print(f"{'sql port, 1 task, read block per read, 0 replicas':58} {single_0:9,.0f}/s  {single_0 / baseline:.2f}x baseline")
    print(f"{'sql port, 1 task, read block per read, 2 replicas':58} {single_2:9,.0f}/s  {single_2 / baseline:.2f}x baseline")
    print(f"{'sql port, 32 tasks, 0 replicas':58} {many_0:9,.0f}/s")
    print(f"{'sql port, 32 tasks, 2 replicas':58} {many_2:9,.0f}/s")
    print(f"{'replication lag under pgbench writes (commit -> visible)':58} p50 {q[49] * 1000:.2f} ms, p99 {q[98] * 1000:.2f} ms ({len(lags)} samples)")


if __name__ == "__main__":
    main()
