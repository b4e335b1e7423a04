"""``summit backup`` / ``summit restore``: stage 1's SQLite files back as they were at backup time
(the replaced ones kept aside); PostgreSQL back to a point in time from a base backup and the WAL
archive, on a stage of the test's own (it is stopped and restored)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, LargeBinary, MetaData, String, Table, delete, insert, select, update
from typer.testing import CliRunner

from summit import backup
from summit.blueprint import Blueprint, load_blueprint
from summit.cli import data, main  # noqa: F401  (registers the commands)
from summit.engines import state
from summit.testing.engines import running_postgres
from summit.wiring import open_port

notes = Table("notes", MetaData(), Column("id", Integer, primary_key=True), Column("body", String(50)), Column("blob", LargeBinary))
ROWS = [(n, f"note {n}", bytes([n]) * n) for n in range(1, 6)]


@pytest.fixture
def blueprint(tmp_path: Path) -> Blueprint:
    return load_blueprint(environ={}, overrides={"data_dir": str(tmp_path / "data")})


async def _write(blueprint: Blueprint) -> None:
    db = open_port("sql", f"sqlite:///{blueprint.data_dir / 'app.db'}")
    queue = open_port("queue", blueprint.port_url("queue"))
    try:
        async with db.write() as conn:
            await conn.run_sync(lambda sync: notes.create(sync))
            await conn.execute(insert(notes), [{"id": i, "body": b, "blob": x} for i, b, x in ROWS])
        await queue.send("jobs", b"one")
    finally:
        await queue.close()
        await db.close()


async def _rows(blueprint: Blueprint) -> list[tuple]:
    db = open_port("sql", f"sqlite:///{blueprint.data_dir / 'app.db'}")
    try:
        async with db.read() as conn:
            return [tuple(r) for r in await conn.execute(select(notes).order_by(notes.c.id))]
    finally:
        await db.close()


async def test_a_sqlite_backup_restores_the_rows_as_they_were(blueprint: Blueprint) -> None:
    await _write(blueprint)
    db = open_port("sql", f"sqlite:///{blueprint.data_dir / 'app.db'}")
    try:
        async with db.read():  # the app keeps its database open: the backup is online
            folder = backup.backup(blueprint)
        async with db.write() as conn:  # then the data changes
            await conn.execute(update(notes).where(notes.c.id == 1).values(body="changed", blob=b"\xff"))
            await conn.execute(delete(notes).where(notes.c.id.in_([2, 3])))
            await conn.execute(insert(notes).values(id=9, body="after the backup"))
    finally:
        await db.close()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["kind"] == "sqlite" and manifest["stage"] == "1"
    assert {f["name"]: f["port"] for f in manifest["files"]} == {"app.db": "sql", "queue.db": "queue"}
    assert folder.parent == blueprint.data_dir.resolve() / "backups" and oct(folder.stat().st_mode & 0o777) == "0o700"

    moved = backup.restore(blueprint, folder)
    assert await _rows(blueprint) == ROWS
    aside = {path.name for path in moved.values()}
    assert {"app.db", "queue.db"} <= aside and all(path.exists() for path in moved.values())
    queue = open_port("queue", blueprint.port_url("queue"))
    try:
        assert (await queue.stats("jobs")).visible == 1
    finally:
        await queue.close()


async def test_a_restore_is_refused_while_the_stage_runs_or_when_the_backup_was_altered(blueprint: Blueprint) -> None:
    await _write(blueprint)
    folder = backup.backup(blueprint)
    state.save(blueprint.data_dir, {"pid": os.getpid(), "stage": "1"})  # this process "runs" the stage
    with pytest.raises(backup.BackupError, match="is running .*summit down"):
        backup.restore(blueprint, folder)
    state.path(blueprint.data_dir).unlink()
    damaged = folder / "app.db"
    damaged.write_bytes(damaged.read_bytes()[:-1] + b"?")
    with pytest.raises(backup.BackupError, match="differs from the backup's manifest"):
        backup.restore(blueprint, folder)
    assert await _rows(blueprint) == ROWS  # untouched


async def test_the_commands_back_up_and_restore(blueprint: Blueprint, tmp_path: Path) -> None:
    await _write(blueprint)
    runner = CliRunner()
    made = runner.invoke(main.app, ["backup", "--data-dir", str(blueprint.data_dir), "--to", str(tmp_path / "b1")], env={"COLUMNS": "200"})
    assert made.exit_code == 0, made.output
    (folder,) = (tmp_path / "b1").iterdir()  # a timestamped folder under --to
    assert "backed up" in made.output and (folder / "manifest.json").is_file()
    await asyncio.to_thread((blueprint.data_dir / "app.db").unlink)
    back = runner.invoke(main.app, ["restore", str(folder), "--data-dir", str(blueprint.data_dir)], env={"COLUMNS": "200"})
    assert back.exit_code == 0, back.output
    assert await _rows(blueprint) == ROWS
    timed = runner.invoke(main.app, ["restore", str(folder), "--data-dir", str(blueprint.data_dir), "--to-time", "2026-12-06 15:30:00"])
    assert timed.exit_code == 1 and "--to-time needs a PostgreSQL backup" in timed.output


# ---- PostgreSQL: point-in-time recovery ------------------------------------------------------------

def _wait(condition, what: str, timeout: float = 60.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout:g} s")
        time.sleep(0.1)


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_postgres_recovers_to_a_point_in_time() -> None:
    with running_postgres(replicas=0) as pg:
        name = pg.create_database()
        layout, primary = pg.stage.layout, pg.primary

        def insert_rows(ids: range) -> None:
            with pg.superuser(name) as conn:
                conn.execute("INSERT INTO notes (id) SELECT generate_series(%s::int, %s::int)", (ids.start, ids.stop - 1))

        def ids() -> list[int]:
            with pg.superuser(name) as conn:
                return [row[0] for row in conn.execute("SELECT id FROM notes ORDER BY id")]

        with pg.superuser(name) as conn:
            conn.execute("CREATE TABLE notes (id int PRIMARY KEY)")
        insert_rows(range(1, 4))
        data_dir = str(layout.data_dir)
        state.save(layout.data_dir, {"pid": os.getpid(), "stage": "1+"})  # as if `summit up --stage 1+` ran it
        made = CliRunner().invoke(main.app, ["backup", "--data-dir", data_dir], env={"COLUMNS": "200"})
        assert made.exit_code == 0, made.output
        state.path(layout.data_dir).unlink()
        (folder,) = (layout.data_dir / "backups").glob("base-*")
        manifest = backup.read_manifest(folder)
        assert manifest["kind"] == "postgres" and manifest["stage"] == "1+"
        assert {"base.tar.gz", "pg_wal.tar.gz"} <= {f["name"] for f in manifest["files"]}
        insert_rows(range(4, 7))  # after the backup, before the point in time
        time.sleep(0.2)
        with pg.superuser(name) as conn:
            point = conn.execute("SELECT clock_timestamp()").fetchone()[0]
        time.sleep(0.2)
        insert_rows(range(7, 10))  # after the point in time
        with pg.superuser() as conn:
            segment = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()[0]

            def archived() -> bool:
                last = conn.execute("SELECT last_archived_wal FROM pg_stat_archiver").fetchone()[0]
                return bool(last) and last >= segment

            _wait(archived, f"{segment} was not archived")
        archive = backup.wal_archive(layout.data_dir)
        assert (archive / segment).stat().st_size == 16 * 1024 * 1024 and not list(archive.glob("*.tmp"))

        restore = ["restore", str(folder), "--data-dir", data_dir, "--to-time", point.isoformat(sep=" ")]
        refused = CliRunner().invoke(main.app, restore, env={"COLUMNS": "200"})
        assert refused.exit_code == 1 and "postgres-primary is running" in refused.output, refused.output
        asyncio.run(pg.supervisor.stop())
        done = CliRunner().invoke(main.app, restore, env={"COLUMNS": "200"})
        assert done.exit_code == 0, done.output
        assert "summit up --stage 1+" in done.output
        (aside,) = primary.data(layout).parent.glob("data.before-restore-*")
        assert (aside / "PG_VERSION").exists()
        asyncio.run(pg.supervisor.start())  # as the next `summit up`: it replays the archive, then promotes

        assert ids() == [1, 2, 3, 4, 5, 6]
        with pg.superuser(name) as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0] is False
        insert_rows(range(7, 8))  # writable again, and the ids after the point are free
        assert ids() == [1, 2, 3, 4, 5, 6, 7]
        asyncio.run(pg.supervisor.stop())  # the start after the recovery is an ordinary one
        asyncio.run(pg.supervisor.start())
        assert "summit-recovery.conf" not in (primary.data(layout) / "summit.conf").read_text()
        assert ids() == [1, 2, 3, 4, 5, 6, 7]
