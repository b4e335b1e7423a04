"""The guard's file: ``<data_dir>/guard/guard.db`` (SQLite, owner-only), holding the findings and
what the rules remember between runs: how far each log was read, the recent events of each sliding
window, the sources each account used, and the principals known to do admin work.

One evaluation is one transaction (``BEGIN IMMEDIATE``), so two runs at once take turns and a run
that fails leaves nothing half-done: the next one reads the same lines again.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
from pathlib import Path
from typing import Any

import orjson

from summit.security.guard.findings import Finding

GUARD_DIR = "guard"
DB_FILE = "guard.db"
SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS findings (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    dedup_key TEXT NOT NULL,
    account TEXT,
    source TEXT,
    severity REAL NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    count INTEGER NOT NULL,
    evidence TEXT NOT NULL,
    details TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    archived_at TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS findings_active ON findings (dedup_key) WHERE archived_at IS NULL;
CREATE INDEX IF NOT EXISTS findings_last_seen ON findings (last_seen);
CREATE TABLE IF NOT EXISTS cursors (log TEXT PRIMARY KEY, inode INTEGER NOT NULL, offset INTEGER NOT NULL, line INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS windows (rule TEXT NOT NULL, key TEXT NOT NULL, newest INTEGER NOT NULL, items TEXT NOT NULL,
                                    PRIMARY KEY (rule, key));
CREATE TABLE IF NOT EXISTS known_sources (account TEXT NOT NULL, network TEXT NOT NULL, first_seen TEXT NOT NULL,
                                          last_seen TEXT NOT NULL, PRIMARY KEY (account, network));
CREATE TABLE IF NOT EXISTS admins (principal TEXT PRIMARY KEY, first_seen TEXT NOT NULL, last_seen TEXT NOT NULL,
                                   actions INTEGER NOT NULL);
"""

_COLUMNS = "id, type, account, source, severity, first_seen, last_seen, count, evidence, details, created_at, updated_at, archived_at"


class GuardError(Exception):
    """The guard cannot do what was asked; the message says what to do."""


def _row_finding(row: tuple) -> Finding:
    (id_, type_, account, source, severity, first, last, count, evidence, details, created, updated, archived) = row
    return Finding(id_, type_, severity, account, source, first, last, count, orjson.loads(evidence), orjson.loads(details),
                   created, updated, archived)


class GuardStore:
    def __init__(self, data_dir: Path):
        if not Path(data_dir).is_dir():
            raise GuardError(f"no data directory {data_dir}: give the stage's (--data-dir, or data_dir in the blueprint)")
        self.directory = Path(data_dir) / GUARD_DIR
        self.path = self.directory / DB_FILE
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fresh = not self.path.exists()
        if fresh:  # owner-only from the start: it holds addresses and user ids
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        try:
            self.conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.executescript(_SCHEMA)
            self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
        except sqlite3.DatabaseError as error:
            raise GuardError(f"cannot open {self.path}: {error} (move it away to start afresh: findings and progress are lost)") from None

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> GuardStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- transactions ---------------------------------------------------------------------------
    def begin(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")  # one evaluation at a time: the second waits here

    def commit(self) -> None:
        self.conn.execute("COMMIT")

    def rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    # ---- meta -----------------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))

    # ---- how far each log was read -------------------------------------------------------------
    def cursor(self, log: str) -> tuple[int, int, int] | None:
        """(inode, byte offset, lines read) of a log, or None if never read."""
        row = self.conn.execute("SELECT inode, offset, line FROM cursors WHERE log = ?", (log,)).fetchone()
        return tuple(row) if row else None

    def set_cursor(self, log: str, inode: int, offset: int, line: int) -> None:
        self.conn.execute(
            "INSERT INTO cursors VALUES (?, ?, ?, ?) ON CONFLICT (log) DO UPDATE SET inode = excluded.inode, "
            "offset = excluded.offset, line = excluded.line",
            (log, inode, offset, line),
        )

    # ---- sliding windows -----------------------------------------------------------------------
    def window(self, rule: str, key: str) -> list[list]:
        row = self.conn.execute("SELECT items FROM windows WHERE rule = ? AND key = ?", (rule, key)).fetchone()
        return orjson.loads(row[0]) if row else []

    def save_window(self, rule: str, key: str, items: list[list]) -> None:
        if not items:
            self.conn.execute("DELETE FROM windows WHERE rule = ? AND key = ?", (rule, key))
            return
        self.conn.execute(
            "INSERT INTO windows VALUES (?, ?, ?, ?) ON CONFLICT (rule, key) DO UPDATE SET newest = excluded.newest, items = excluded.items",
            (rule, key, max(item[0] for item in items), orjson.dumps(items).decode()),
        )

    def forget_windows(self, rule: str, before_ms: int) -> None:
        """Drop windows whose newest event is older than ``before_ms``: nothing in them can count any more."""
        self.conn.execute("DELETE FROM windows WHERE rule = ? AND newest < ?", (rule, before_ms))

    # ---- baselines -----------------------------------------------------------------------------
    def known_networks(self, account: str) -> set[str]:
        return {row[0] for row in self.conn.execute("SELECT network FROM known_sources WHERE account = ?", (account,))}

    def learn_network(self, account: str, network: str, time: str) -> None:
        self.conn.execute(
            "INSERT INTO known_sources VALUES (?, ?, ?, ?) ON CONFLICT (account, network) DO UPDATE SET "
            "last_seen = max(last_seen, excluded.last_seen), first_seen = min(first_seen, excluded.first_seen)",
            (account, network, time, time),
        )

    def admin_known(self, principal: str) -> bool:
        return self.conn.execute("SELECT 1 FROM admins WHERE principal = ?", (principal,)).fetchone() is not None

    def learn_admin(self, principal: str, time: str) -> None:
        self.conn.execute(
            "INSERT INTO admins VALUES (?, ?, ?, 1) ON CONFLICT (principal) DO UPDATE SET actions = actions + 1, "
            "last_seen = max(last_seen, excluded.last_seen), first_seen = min(first_seen, excluded.first_seen)",
            (principal, time, time),
        )

    # ---- findings ------------------------------------------------------------------------------
    def active(self, key: str) -> Finding | None:
        row = self.conn.execute(f"SELECT {_COLUMNS} FROM findings WHERE dedup_key = ? AND archived_at IS NULL", (key,)).fetchone()
        return _row_finding(row) if row else None

    def insert(self, finding: Finding, key: str) -> None:
        finding.id = finding.id or secrets.token_hex(8)
        self.conn.execute(
            f"INSERT INTO findings (dedup_key, {_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (key, finding.id, finding.type, finding.account, finding.source, finding.severity, finding.first_seen,
             finding.last_seen, finding.count, orjson.dumps(finding.evidence).decode(), orjson.dumps(finding.details).decode(),
             finding.created_at, finding.updated_at, finding.archived_at),
        )

    def update(self, finding: Finding) -> None:
        self.conn.execute(
            "UPDATE findings SET severity = ?, first_seen = ?, last_seen = ?, count = ?, evidence = ?, details = ?, updated_at = ? "
            "WHERE id = ?",
            (finding.severity, finding.first_seen, finding.last_seen, finding.count, orjson.dumps(finding.evidence).decode(),
             orjson.dumps(finding.details).decode(), finding.updated_at, finding.id),
        )

    def get(self, finding_id: str) -> Finding:
        """The finding with this id, or with this unique id prefix (at least 4 characters)."""
        text = finding_id.strip().lower()
        if len(text) < 4 or not all(ch in "0123456789abcdef" for ch in text):
            raise GuardError(f"{finding_id!r} is not a finding id: give the id `summit guard findings` shows (16 hex digits, or a unique prefix)")
        rows = self.conn.execute(f"SELECT {_COLUMNS} FROM findings WHERE id LIKE ? ORDER BY id LIMIT 2", (text + "%",)).fetchall()
        if not rows:
            raise GuardError(f"no finding {finding_id!r}: `summit guard findings --archived` lists them all")
        if len(rows) > 1 and rows[0][0] != text:
            raise GuardError(f"{finding_id!r} names more than one finding ({rows[0][0]}, {rows[1][0]}, ...): give more of the id")
        return _row_finding(rows[0])

    def archive(self, finding_id: str, at: str) -> Finding:
        finding = self.get(finding_id)
        if finding.archived:
            return finding
        self.conn.execute("UPDATE findings SET archived_at = ? WHERE id = ?", (at, finding.id))
        finding.archived_at = at
        return finding

    def findings(self, *, since: str | None = None, types: list[str] | None = None, archived: bool = False) -> list[Finding]:
        """Findings last seen at or after ``since``, newest first; active ones only unless ``archived``."""
        where, args = [], []
        if not archived:
            where.append("archived_at IS NULL")
        if since is not None:
            where.append("last_seen >= ?")
            args.append(since)
        sql = f"SELECT {_COLUMNS} FROM findings" + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY last_seen DESC, id"
        found = [_row_finding(row) for row in self.conn.execute(sql, args)]
        if types:
            import fnmatch

            found = [f for f in found if any(fnmatch.fnmatchcase(f.type, pattern) for pattern in types)]
        return found

    def summary(self) -> dict[str, Any]:
        rows = self.conn.execute("SELECT archived_at IS NULL, count(*) FROM findings GROUP BY 1").fetchall()
        counts = {bool(active): n for active, n in rows}
        return {"active": counts.get(True, 0), "archived": counts.get(False, 0)}
