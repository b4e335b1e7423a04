"""Backups of a stage's data, and restoring them.

Stage 1 (SQLite): SQLite's online backup API copies ``app.db`` and ``queue.db`` page by page while
the app keeps writing, into a folder under ``<data_dir>/backups/`` with a ``manifest.json``
(sizes and sha256). A restore checks those hashes, then puts the files back; the files it replaces
are moved aside, never deleted.

PostgreSQL (1+, 10k): the primary archives every finished WAL segment into
``<data_dir>/backups/wal/`` (``archive_command``, rendered by ``PostgresServer``), and a backup is
a base backup (``pg_basebackup``, tar format). Together they give point-in-time recovery: a
restore puts the base backup in place of the primary's data directory (the old one moved aside),
with ``recovery.signal`` and ``summit-recovery.conf`` (replay the archive up to a time, then
promote) for its next start; the replicas' data directories are moved aside too, so that the next
``summit up`` makes them again from the restored primary.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shlex
import shutil
import sqlite3
import subprocess
import tarfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from summit.blueprint import Blueprint
from summit.engines import state
from summit.engines.layout import EngineError, Layout, owned_dir, run_as, write_private
from summit.engines.postgres import REPLICATION_ROLE, PostgresServer, bin_dir
from summit.engines.process import alive
from summit.engines.stage import StagePlan, plan

MANIFEST = "manifest.json"
RECOVERY_CONF = "summit-recovery.conf"  # included by PostgresServer's summit.conf while recovery.signal exists
SQLITE_PORTS = ("sql", "queue")


class BackupError(Exception):
    """A backup or a restore cannot be made; the message says why and what to do."""


def backups_dir(data_dir: Path) -> Path:
    return Layout(data_dir).backups_dir


def wal_archive(data_dir: Path) -> Path:
    """Where the primary archives its WAL (``PostgresServer._render`` gives it the same path)."""
    return Layout(data_dir).wal_archive


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


def _fresh(path: Path) -> Path:
    """``path``, or ``path-2``, ``path-3`` ... whichever exists neither whole nor in the making."""
    candidate, n = path, 1
    while candidate.exists() or candidate.with_name(candidate.name + ".partial").exists():
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
    return candidate


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _seal(partial: Path, folder: Path, manifest: dict[str, Any]) -> Path:
    """List the files with their sizes and hashes, write the manifest, and give the folder its name."""
    entries = []
    for entry in manifest["files"]:
        path = partial / entry["name"]
        entries.append({**entry, "size": path.stat().st_size, "sha256": _sha256(path)})
    manifest["files"] = entries
    (partial / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    partial.rename(folder)
    return folder


def read_manifest(folder: Path, *, verify: bool = True) -> dict[str, Any]:
    """The backup's manifest, after checking every file against its size and sha256 (``verify``)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError) as error:
        raise BackupError(f"{folder} is not a summit backup (no readable {MANIFEST}: {error})") from None
    for entry in manifest.get("files", []) if verify else ():
        path = folder / entry["name"]
        if not path.is_file() or path.stat().st_size != entry["size"] or _sha256(path) != entry["sha256"]:
            raise BackupError(f"{path} is missing or differs from the backup's manifest: this backup cannot be trusted")
    return manifest


# ---- stage 1: SQLite ------------------------------------------------------------------------------

def sqlite_files(blueprint: Blueprint) -> dict[str, Path]:
    """The SQLite file behind each port that has one (stage 1: the sql port's app.db, the queue's queue.db)."""
    found = {}
    for port in SQLITE_PORTS:
        url = blueprint.port_url(port)
        if url.startswith("sqlite:///"):
            found[port] = Path(urlsplit(url).path[1:]).resolve()
    return found


def backup_sqlite(blueprint: Blueprint, to: Path | None = None) -> Path:
    """Copy each SQLite database of the stage, consistent and online, into a new folder under ``to``."""
    files = {port: path for port, path in sqlite_files(blueprint).items() if path.is_file()}
    if not files:
        raise BackupError(f"no SQLite database to back up in {blueprint.data_dir} (has the stage run there?)")
    started = _now()
    folder = _fresh((to or backups_dir(blueprint.data_dir.resolve())) / _stamp(started))
    partial = folder.with_name(folder.name + ".partial")
    partial.mkdir(parents=True, mode=0o700)  # the app's data: readable by its owner only
    for path in files.values():
        _sqlite_copy(path, partial / path.name)
    manifest = {"kind": "sqlite", "stage": blueprint.stage, "time": started.isoformat(), "finished_at": _now().isoformat(),
                "files": [{"name": path.name, "port": port} for port, path in files.items()]}
    return _seal(partial, folder, manifest)


def _sqlite_copy(source_path: Path, target_path: Path) -> None:
    source = sqlite3.connect(source_path.as_uri() + "?mode=ro", uri=True)  # never writes the live database
    target = sqlite3.connect(target_path)
    try:
        source.backup(target)  # a consistent snapshot, while other connections keep writing
        target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file (the app turns WAL on again)
    finally:
        target.close()
        source.close()


def restore_sqlite(blueprint: Blueprint, folder: Path, manifest: dict[str, Any]) -> dict[Path, Path]:
    """Put the backup's files in place of the stage's; returns each replaced file -> where it went."""
    targets = sqlite_files(blueprint)
    for entry in manifest["files"]:
        if entry.get("port") not in targets:
            raise BackupError(f"the backup holds {entry['name']} of the {entry.get('port')} port, which is not SQLite in "
                              f"stage {blueprint.stage}: restore it with the stage it was taken from (--stage {manifest.get('stage')})")
    aside = _fresh(backups_dir(blueprint.data_dir.resolve()) / f"replaced-{_stamp(_now())}")
    moved: dict[Path, Path] = {}
    for entry in manifest["files"]:
        target = targets[entry["port"]]
        incoming = target.with_name(target.name + ".restoring")
        shutil.copyfile(folder / entry["name"], incoming)  # first the copy, so a failure leaves the old file in place
        for companion in (target, *(target.with_name(target.name + s) for s in ("-wal", "-shm", "-journal"))):
            if companion.exists():  # a -wal left beside the old file would be replayed into the restored one
                aside.mkdir(parents=True, exist_ok=True, mode=0o700)
                moved[companion] = aside / companion.name
                companion.rename(moved[companion])
        incoming.replace(target)
    return moved


# ---- PostgreSQL: base backups and point-in-time recovery ---------------------------------------

def _primary(stage: StagePlan) -> PostgresServer:
    servers = stage.of_kind("postgres")
    if not servers:
        raise BackupError(f"stage {stage.blueprint.stage} runs no PostgreSQL")
    return servers[0]  # type: ignore[return-value]


def backup_postgres(stage: StagePlan, to: Path | None = None) -> Path:
    """A base backup of the running primary (pg_basebackup: tar, gzip, with the WAL it needs), under ``to``."""
    layout, primary, user = stage.layout, _primary(stage), run_as()
    started = _now()
    folder = _fresh((to or backups_dir(layout.data_dir)) / f"base-{_stamp(started)}")
    partial = owned_dir(folder.with_name(folder.name + ".partial"), user)  # pg_basebackup writes it as the engines' user
    # as the replication role: pg_hba.conf admits replication connections from it alone (and it needs no more)
    passfile = layout.engine_dir(primary.name) / "backup.pgpass"
    password = PostgresServer.passwords(layout)[REPLICATION_ROLE]
    write_private(passfile, f"{primary.host}:{primary.port}:*:{REPLICATION_ROLE}:{password}\n", owner=user)
    try:
        _run([str(bin_dir() / "pg_basebackup"), "-h", primary.host, "-p", str(primary.port), "-U", REPLICATION_ROLE,
              "-D", str(partial), "-F", "tar", "-z", "-X", "stream", "-c", "fast", "--no-password",
              "-l", f"summit {_stamp(started)}"], user, "pg_basebackup", env={"PGPASSFILE": str(passfile)})
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    finally:
        passfile.unlink(missing_ok=True)
    manifest = {"kind": "postgres", "stage": stage.blueprint.stage, "server": primary.name, "time": started.isoformat(),
                "finished_at": _now().isoformat(), "wal_archive": str(wal_archive(layout.data_dir)),
                "files": [{"name": f.name} for f in sorted(partial.iterdir())]}
    return _seal(partial, folder, manifest)


def restore_postgres(stage: StagePlan, folder: Path, manifest: dict[str, Any], to_time: datetime | None = None) -> dict[str, Path]:
    """Put the base backup in place of the primary's data, set to replay the WAL archive up to
    ``to_time`` (default: its end) at the next start; returns each server -> its old data, moved aside."""
    layout, primary, user = stage.layout, _primary(stage), run_as()
    servers: list[PostgresServer] = stage.of_kind("postgres")  # type: ignore[assignment]
    for server in servers:
        if _postmaster_alive(server.data(layout)):
            raise BackupError(f"{server.name} is running: stop the stage (`summit down`) before a restore")
    if to_time is not None:
        to_time = to_time if to_time.tzinfo else to_time.astimezone()  # a time without a zone is this machine's
        if to_time < datetime.fromisoformat(manifest["finished_at"]):
            raise BackupError(f"{to_time.isoformat()} is before this backup was finished ({manifest['finished_at']}): "
                              "pick an older backup, or a later time")
    home = layout.engine_dir(primary.name)
    incoming = home / "data.restoring"
    shutil.rmtree(incoming, ignore_errors=True)
    owned_dir(incoming, user)
    _untar(folder / "base.tar.gz", incoming)
    if (folder / "pg_wal.tar.gz").exists():
        _untar(folder / "pg_wal.tar.gz", incoming / "pg_wal")
    command = f'cp {shlex.quote(str(wal_archive(layout.data_dir)))}/%f "%p"'
    lines = [f"# written by `summit restore` from {folder}: read at the next start only (while recovery.signal exists)",
             f"restore_command = {_literal(command)}",
             "recovery_target_timeline = 'latest'", "recovery_target_action = 'promote'"]
    if to_time is not None:
        lines.append(f"recovery_target_time = {_literal(to_time.isoformat(sep=' '))}")
    (incoming / RECOVERY_CONF).write_text("\n".join(lines) + "\n")
    (incoming / "recovery.signal").touch()
    _chown_tree(incoming, user)
    moved: dict[str, Path] = {}
    stamp = _stamp(_now())
    for server in servers:
        data = server.data(layout)
        if data.exists():
            moved[server.name] = _fresh(data.with_name(f"data.before-restore-{stamp}"))
            data.rename(moved[server.name])
    incoming.rename(primary.data(layout))
    return moved


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _postmaster_alive(data: Path) -> bool:
    try:
        pid = int((data / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return False
    return alive(pid)


def _untar(archive: Path, into: Path) -> None:
    into.mkdir(parents=True, exist_ok=True, mode=0o700)
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(into, filter="data")  # no absolute paths, nothing outside ``into``


def _chown_tree(root: Path, user: str | None) -> None:
    if not user:
        return
    entry = pwd.getpwnam(user)
    os.chown(root, entry.pw_uid, entry.pw_gid)
    for parent, dirs, files in os.walk(root):
        for name in dirs + files:
            os.chown(os.path.join(parent, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False)


def _run(argv: list[str], user: str | None, what: str, env: dict[str, str] | None = None) -> None:
    """Run a PostgreSQL tool as ``user`` (bounded: an hour); its output goes into the error if it fails."""
    root = os.geteuid() == 0
    try:
        result = subprocess.run(  # noqa: S603  (an argument list)
            argv, capture_output=True, text=True, timeout=3600, env={**os.environ, "LC_ALL": "C.UTF-8", **(env or {})},
            user=user if root else None, group=user if root else None, extra_groups=[] if user and root else None,
        )
    except subprocess.TimeoutExpired:
        raise BackupError(f"{what} did not finish within an hour") from None
    if result.returncode != 0:
        raise BackupError(f"{what} failed (exit {result.returncode}): {(result.stderr or result.stdout).strip()[-800:]}")


# ---- what the commands call ----------------------------------------------------------------------

def backup(blueprint: Blueprint, to: Path | None = None) -> Path:
    """Back up the stage in ``blueprint``'s data directory (SQLite files, or a PostgreSQL base backup)."""
    if not blueprint.engines.postgres.enabled:
        return backup_sqlite(blueprint, to)
    if not state.running(blueprint.data_dir.resolve()):
        raise BackupError(f"a base backup is taken from the running PostgreSQL: start the stage first "
                          f"(`summit up --stage {blueprint.stage} --detach`)")
    try:
        return backup_postgres(plan(blueprint, with_app=False), to)
    except EngineError as error:
        raise BackupError(str(error)) from None


def restore(blueprint: Blueprint, folder: Path, to_time: datetime | None = None) -> dict[Any, Path]:
    """Restore ``folder`` into the stopped stage; returns what was moved aside."""
    running = state.running(blueprint.data_dir.resolve())
    if running:
        raise BackupError(f"stage {running.get('stage')} is running in {blueprint.data_dir} (pid {running['pid']}): "
                          "stop it with `summit down` before a restore")
    manifest = read_manifest(folder)
    if manifest.get("kind") == "sqlite":
        if to_time is not None:
            raise BackupError("--to-time needs a PostgreSQL backup (SQLite backups restore as they were taken)")
        return restore_sqlite(blueprint, folder, manifest)
    if manifest.get("kind") != "postgres" or not blueprint.engines.postgres.enabled:
        raise BackupError(f"{folder} is a {manifest.get('kind')} backup of stage {manifest.get('stage')}: "
                          f"restore it with that stage (--stage {manifest.get('stage')})")
    try:
        return restore_postgres(plan(blueprint, with_app=False), folder, manifest, to_time)
    except EngineError as error:
        raise BackupError(str(error)) from None

