"""``summit migrate-data``: move a stage-1 database into PostgreSQL (stage 1 -> 1+), IDs kept, or
a stage-1 file object store into the stage's S3 store (-> 10k), checksums verified.
``summit backup`` and ``summit restore``: the stage's data, SQLite files or PostgreSQL base
backups with point-in-time recovery from the WAL archive."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table

from summit.cli.main import ConfigOpt, DataDirOpt, StageOpt, app, blueprint_or_exit, console
from summit.engines import state

BAR_FROM = 10_000  # rows from which a table's copy shows a progress bar


def _fail(message: str, code: int = 1) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


@app.command("migrate-data")
def migrate_data(
    to: Annotated[str, typer.Option("--to", help="The engine to move the data to: postgres (app.db) or s3 (the photos).")],
    config: ConfigOpt = None,
    from_data_dir: Annotated[Optional[Path], typer.Option("--from-data-dir", help="The stage-1 data directory holding app.db and objects/ (default: the blueprint's).")] = None,
    to_url: Annotated[Optional[str], typer.Option("--to-url", help="The target database or S3 store (default: the PostgreSQL, or the S3 store, of the stage running on the same data directory).")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before copying.")] = False,
) -> None:
    """Copy a stage-1 SQLite database into an empty PostgreSQL, IDs kept, then verify the copy; or
    copy stage 1's photos (file://<data_dir>/objects) into the stage's S3 store.

    --to postgres: every table the migrations made (the app's and the user pool's) is copied in one
    transaction; then row counts and a checksum per table are compared. The usual move: `summit
    down`, `summit up --stage 1+ --detach`, `summit migrate-data --to postgres`. Pending jobs stay in
    stage 1's queue.db (they are not copied).

    --to s3: every object is copied with its content type and read back to check its sha256; one the
    store has already with the same sha256 is skipped, so it can run again. With `summit up --stage
    10k --detach` on the same data directory. Exits 1 if anything differs.
    """
    from summit import datamove
    from summit.blueprint import BlueprintError
    from summit.wiring import open_port

    if to not in ("postgres", "s3"):
        raise _fail(f"--to {to!r}: the data moves to postgres (app.db) or s3 (the photos)", 2)
    source = blueprint_or_exit(config, stage="1", data_dir=from_data_dir)
    data = source.data_dir.resolve()
    running = state.running(data)
    if running and running.get("stage") == "1":
        raise _fail(f"stage 1 is running in {data} (pid {running['pid']}) and writes app.db: stop it with `summit down` first")
    if to == "s3":
        _migrate_objects(config, source, running, to_url, yes)
        return
    files = _sqlite_files(source)
    if "sql" not in files:
        raise _fail(f"stage 1's sql port is not SQLite here ({source.ports.sql}): nothing to move")
    if to_url is None:
        target = blueprint_or_exit(config, stage="1+", data_dir=data)
        if not target.endpoints():
            raise _fail(f"no 1+ stage runs in {data}: the data goes into its PostgreSQL. Start it on the same data directory "
                        f"(`summit up --stage 1+ --data-dir {data} --detach`) and run this again, or give --to-url")
        try:
            to_url = target.port_url("sql")
        except BlueprintError as error:
            raise _fail(str(error)) from None
    if not to_url.startswith(("postgresql:", "postgres:", "postgresql+")):
        raise _fail(f"--to-url {state.without_secrets(to_url)}: the data moves into PostgreSQL (postgresql://...)", 2)
    shown = state.without_secrets(to_url)
    try:
        sync_url = open_port("sql", to_url).sync_url
    except ValueError as error:
        raise _fail(f"--to-url: {str(error).replace(to_url, shown)}", 2) from None
    if not yes:
        typer.confirm(f"Copy {files['sql']} into {shown}?", abort=True)
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=console, transient=True) as progress:
            report = datamove.copy_sqlite_to_postgres(files["sql"], sync_url, blueprint=source, on_progress=_bars(progress))
    except (datamove.DataMoveError, BlueprintError) as error:
        raise _fail(str(error)) from None
    _print_report(report, shown, files.get("queue"))
    if not report.ok:
        raise _fail("the copy differs from the source (see the table): do not switch to it")
    console.print("restart the 1+ stage (`summit down`, `summit up --stage 1+`) so that its processes drop what they "
                  "cached before the copy, and its start-up checks the groups' policies again")


def _migrate_objects(config: Path | None, source: Any, running: dict | None, to_url: str | None, yes: bool) -> None:  # noqa: ANN401
    """``--to s3``: stage 1's file store into the running stage's S3 store (or ``to_url``)."""
    import asyncio

    from summit import datamove
    from summit.blueprint import BlueprintError
    from summit.wiring import open_port

    data = source.data_dir.resolve()
    from_url = source.port_url("objects")
    if not from_url.startswith("file:"):
        raise _fail(f"stage 1's objects port is not a file store here ({from_url}): nothing to move")
    if to_url is None:
        stage = running.get("stage") if running else "10k"
        try:
            to_url = blueprint_or_exit(config, stage=stage, data_dir=data).port_url("objects")
        except BlueprintError:
            raise _fail(f"no stage with an S3 store runs in {data}: the photos go into its bucket. Start it on the same "
                        f"data directory (`summit up --stage 10k --data-dir {data} --detach`) and run this again, "
                        "or give --to-url s3://...") from None
    if not to_url.startswith("s3:"):
        raise _fail(f"the target {state.without_secrets(to_url)} is not an S3 store (s3://...): start stage 10k, or give --to-url", 2)
    shown = state.without_secrets(to_url)
    try:
        origin, target = open_port("objects", from_url), open_port("objects", to_url)
    except ValueError as error:
        raise _fail(str(error), 2) from None
    if not yes:
        typer.confirm(f"Copy the objects of {from_url} into {shown}?", abort=True)

    async def copy(on_progress: Any) -> Any:  # noqa: ANN401
        try:
            return await datamove.copy_objects(origin, target, on_progress=on_progress)
        finally:
            await target.close()

    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=console, transient=True) as progress:
            report = asyncio.run(copy(_bars(progress, always=True)))
    except datamove.DataMoveError as error:
        raise _fail(str(error)) from None
    console.print(f"objects of {from_url} in {shown}: {report.copied} copied and read back with the same sha256 "
                  f"({report.bytes_copied / 1e6:.1f} MB), {report.skipped} there already with the same sha256")
    for key, why in report.failed[:20]:
        console.print(f"[red]not copied[/red] {key}: {why}")
    if not report.ok:
        raise _fail(f"{len(report.failed)} of {report.total} object(s) were not copied (see above): run it again, "
                    "or keep serving from the files")


def _sqlite_files(blueprint: Any) -> dict[str, Path]:  # noqa: ANN401
    from summit.backup import sqlite_files

    return sqlite_files(blueprint)


def _bars(progress: Progress, *, always: bool = False) -> Any:  # noqa: ANN401
    tasks: dict[str, TaskID] = {}

    def update(table: str, done: int, total: int) -> None:
        if total < BAR_FROM and not always:
            return
        if table not in tasks:
            tasks[table] = progress.add_task(table, total=total)
        progress.update(tasks[table], completed=done)

    return update


def _print_report(report: Any, target: str, queue_db: Path | None) -> None:  # noqa: ANN401
    from summit.datamove import pending_jobs

    console.print(f"copied into {target}")
    table = Table("table", "rows", "checksum ok")
    for entry in report.tables:
        rows = str(entry.source_rows) if entry.source_rows == entry.target_rows else f"{entry.source_rows} -> {entry.target_rows}"
        table.add_row(entry.name, rows, "[green]yes[/green]" if entry.ok else "[red]NO[/red]")
    console.print(table)
    for name, count in report.replaced.items():
        console.print(f"{name}: the {count} row(s) the 1+ stage's start-up made were replaced by the source's")
    if report.not_copied:
        console.print(f"[yellow]not copied[/yellow] (no migration makes them): {', '.join(report.not_copied)}")
    console.print(f"summit_ids continues after {report.sequence}: new IDs never repeat a copied one")
    jobs = pending_jobs(queue_db) if queue_db else None
    if jobs:
        console.print(f"[yellow]{jobs} pending job(s) stay in {queue_db}[/yellow] (summit_queue_messages; the queue is not "
                      "copied): run stage 1 until they are done before moving, or send them again")
    else:
        console.print(f"pending jobs: none in {queue_db or 'stage 1 queue.db'} (the queue is not copied)")


@app.command()
def backup(
    config: ConfigOpt = None,
    stage: StageOpt = None,
    data_dir: DataDirOpt = None,
    to: Annotated[Optional[Path], typer.Option("--to", help="Where to make the backup's timestamped folder (default: <data_dir>/backups/).")] = None,
) -> None:
    """Back up the stage's data, with a manifest.json (sizes, sha256).

    Stage 1: app.db and queue.db through SQLite's online backup (the app may keep running).
    Stages with PostgreSQL: a base backup of the running primary (pg_basebackup); with the WAL
    archive in <data_dir>/backups/wal/ it restores to any later time.
    """
    from summit import backup as backups

    blueprint = _running_blueprint(config, stage, data_dir)
    try:
        folder = backups.backup(blueprint, to.resolve() if to else None)
    except backups.BackupError as error:
        raise _fail(str(error)) from None
    manifest = backups.read_manifest(folder, verify=False)
    size = sum(entry["size"] for entry in manifest["files"])
    console.print(f"[green]backed up[/green] stage {manifest['stage']} into {folder} ({len(manifest['files'])} files, {size / 1e6:.1f} MB)")


@app.command()
def restore(
    folder: Annotated[Path, typer.Argument(help="The backup's folder (with its manifest.json).")],
    config: ConfigOpt = None,
    stage: StageOpt = None,
    data_dir: DataDirOpt = None,
    to_time: Annotated[Optional[str], typer.Option("--to-time", help="PostgreSQL only: recover up to this time, e.g. \"2026-12-06 15:30:00\" (this machine's zone unless it has one; default: the end of the WAL archive).")] = None,
) -> None:
    """Restore a backup into the stopped stage; what it replaces is moved aside, not deleted.

    A SQLite backup is in place when this returns. A PostgreSQL backup replaces the primary's data
    directory and asks it to replay the WAL archive up to --to-time (by default, the last archived
    segment) and then promote: the next `summit up` finishes the recovery (the replicas are made
    again from the recovered primary). The time must lie after the backup was finished and before the
    last commit in the archive.
    """
    from summit import backup as backups

    moment = None
    if to_time is not None:
        try:
            moment = datetime.fromisoformat(to_time)
        except ValueError:
            raise _fail(f"--to-time {to_time!r}: write it as YYYY-MM-DD HH:MM:SS (optionally with +HH:MM)", 2) from None
    try:
        manifest = backups.read_manifest(folder.resolve(), verify=False)
        blueprint = blueprint_or_exit(config, stage=stage or manifest.get("stage"), data_dir=data_dir)
        moved = backups.restore(blueprint, folder.resolve(), moment)
    except backups.BackupError as error:
        raise _fail(str(error)) from None
    for old, new in moved.items():
        console.print(f"moved aside: {old} -> {new}")
    if manifest["kind"] == "sqlite":
        console.print(f"[green]restored[/green] {folder} (taken {manifest['time']})")
    else:
        until = moment.isoformat(sep=" ") if moment else "the end of the WAL archive"
        console.print(f"[green]ready to recover[/green] from {folder} up to {until}: "
                      f"`summit up --stage {blueprint.stage}` finishes the recovery")


def _running_blueprint(config: Path | None, stage: str | None, data_dir: Path | None) -> Any:  # noqa: ANN401
    """The blueprint of the stage running in the data directory (else the one asked for)."""
    blueprint = blueprint_or_exit(config, stage=stage, data_dir=data_dir)
    running = state.running(blueprint.data_dir.resolve())
    if running and not stage and running.get("stage") != blueprint.stage:
        blueprint = blueprint_or_exit(config, stage=running["stage"], data_dir=data_dir)
    return blueprint
