"""``summit migrate-data --to postgres``: a real stage-1 database (the migrations run on SQLite)
copied into a fresh PostgreSQL database: counts, checksums and values (bytes, booleans, floats) as
they were, IDs kept and never minted again; a target with rows, a corrupt or foreign source
write nothing."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, insert, select, text
from typer.testing import CliRunner

from photos import schema as app
from summit import ids
from summit.blueprint import Blueprint, load_blueprint
from summit.cli import data, main  # noqa: F401  (registers the commands)
from summit.datamove import DataMoveError, copy_sqlite_to_postgres
from summit.migrate import upgrade_all
from summit.security.identity import schema as pool
from summit.security.identity.pii import EmailVault
from summit.wiring import open_port

NOW = time.time()
TAGS = ["b", "a", "Z", "Ä", "äb", "z", "日本"]  # text keys that sort differently under a locale's collation
BODIES = [bytes(range(256)), b"", None, b"\x00\xff" * 3000]
FLOATS = [NOW + 0.123456789, 0.1 + 0.2, 1e-310, -0.0, 2.0**60, 123456789.0]


def _id(seq: int, shard: int = 7) -> int:
    return ids.make_id(seq, shard, now_ms=int(NOW * 1000))  # the same ID each time it is asked for


@pytest.fixture
def stage_one(tmp_path: Path) -> tuple[Blueprint, Path]:
    """A stage-1 data directory whose app.db the real migrations made, with rows in several tables."""
    blueprint = load_blueprint(environ={}, overrides={"data_dir": str(tmp_path / "data")})
    blueprint.data_dir.mkdir(parents=True)
    path = blueprint.data_dir / "app.db"
    upgrade_all(blueprint, f"sqlite:///{path}")
    engine = create_engine(f"sqlite:///{path}")
    users = [_id(n) for n in range(1, 4)]
    vault = EmailVault.for_data_dir(blueprint.data_dir)  # emails as the pool stores them: hashed and sealed
    with engine.begin() as conn:
        conn.execute(insert(pool.users), [
            {"id": uid, "username": f"u{n}", "email_hash": vault.index(f"u{n}@example.com"),
             "email_sealed": vault.seal(uid, f"u{n}@example.com"), "password_hash": "$argon2id$x",
             "confirmed": n % 2 == 0, "created_at": FLOATS[n], "password_changed_at": NOW, "mfa_enabled": n == 1,
             "mfa_last_step": 2**40 + n} for n, uid in enumerate(users)])
        conn.execute(insert(pool.groups), [{"name": "moderators", "created_at": NOW}])
        conn.execute(insert(app.users), [
            {"id": uid, "username": f"u{n}", "display_name": "Zoë 📷" if n == 0 else "", "created_at": FLOATS[n]}
            for n, uid in enumerate(users)])
        conn.execute(insert(app.posts), [
            {"id": _id(100 + n), "author_id": users[n % 3], "caption": f"post {n}", "photo_key": f"p/{n}", "content_type": "image/jpeg",
             "width": 640, "height": 480, "thumbs_ready": n % 2 == 1, "created_at": FLOATS[n % len(FLOATS)],
             "edited_at": None if n % 2 else FLOATS[(n + 1) % len(FLOATS)]} for n in range(12)])
        conn.execute(insert(app.post_tags), [{"tag": tag, "post_id": _id(100)} for tag in TAGS])
        conn.execute(insert(app.idempotency_keys), [
            {"scope": "u0", "key": f"k{n}", "fingerprint": "f" * 64, "status": 201, "headers": "{}", "body": body, "created_at": NOW}
            for n, body in enumerate(BODIES)])
        conn.execute(text("CREATE TABLE summit_sequence (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL)"))
        conn.execute(text("INSERT INTO summit_sequence (id, value) VALUES (1, 4321)"))
    engine.dispose()
    return blueprint, path


def _sync_url(url: str) -> str:
    return open_port("sql", url).sync_url


def _rows(sync_url: str, table: Any) -> list[tuple]:  # noqa: ANN401
    """Every row of ``table``, in an order that depends on no engine's collation."""
    engine = create_engine(sync_url, connect_args={"prepare_threshold": None} if sync_url.startswith("postgresql") else {})
    try:
        with engine.connect() as conn:
            return sorted((tuple(row) for row in conn.execute(select(table))), key=repr)
    finally:
        engine.dispose()


def _same(a: list[tuple], b: list[tuple]) -> None:
    """Equal, and of the same types (True is not 1, -0.0 keeps its sign)."""
    assert a == b
    for row_a, row_b in zip(a, b):
        for x, y in zip(row_a, row_b):
            assert type(x) is type(y), (x, y)
            if isinstance(x, float):
                assert math.copysign(1, x) == math.copysign(1, y) and x.hex() == y.hex()


@pytest.mark.postgres
async def test_the_copy_keeps_every_row_and_value_and_ids_go_on_after_it(stage_one, postgres_db) -> None:  # noqa: ANN001
    blueprint, path = stage_one
    target = _sync_url(postgres_db.url)
    seen: dict[str, int] = {}
    report = copy_sqlite_to_postgres(path, target, blueprint=blueprint, on_progress=lambda t, done, total: seen.__setitem__(t, done))
    assert report.ok, report
    counts = {t.name: t.target_rows for t in report.tables}
    assert counts["identity_users"] == 3 and counts["posts"] == 12 and counts["post_tags"] == len(TAGS)
    assert counts["idempotency_keys"] == len(BODIES) and counts["comments"] == 0
    assert seen["posts"] == 12
    assert not any(t.startswith(("alembic_version", "summit_")) for t in counts)
    assert [t.name for t in report.tables].index("users") < [t.name for t in report.tables].index("posts")  # foreign-key order
    source = f"sqlite:///{path}"
    for table, order in ((pool.users, pool.users.c.id), (app.users, app.users.c.id), (app.posts, app.posts.c.id),
                         (app.idempotency_keys, app.idempotency_keys.c.key), (app.post_tags, app.post_tags.c.tag)):
        _same(_rows(target, table), _rows(source, table))
    bodies = dict((r[1], r[5]) for r in _rows(target, app.idempotency_keys))
    assert bodies == {f"k{n}": body for n, body in enumerate(BODIES)}
    vault = EmailVault.for_data_dir(blueprint.data_dir)  # the sealed emails open on PostgreSQL, found by their hash
    sealed = [(r[0], r[3], r[4], r[2]) for r in _rows(target, pool.users)]  # id, email_hash, email_sealed, email
    assert sorted(vault.open(uid, blob) for uid, _, blob, _ in sealed) == ["u0@example.com", "u1@example.com", "u2@example.com"]
    assert {h for _, h, _, _ in sealed} == {vault.index(f"u{n}@example.com") for n in range(3)}
    assert {e for *_, e in sealed} == {None}

    db = open_port("sql", postgres_db.url)
    try:
        async with db.write() as conn:
            fresh = await db.next_id(conn, 7)
            last = await conn.scalar(text("SELECT last_value FROM summit_ids"))
    finally:
        await db.close()
    assert last > 4321 and report.sequence >= 4321
    copied = [r[0] for r in _rows(target, app.posts)] + [r[0] for r in _rows(target, pool.users)]
    assert fresh > max(copied)


@pytest.mark.postgres
def test_a_target_with_rows_is_refused_and_left_as_it_was(stage_one, postgres_db) -> None:  # noqa: ANN001
    blueprint, path = stage_one
    target = _sync_url(postgres_db.url)
    assert copy_sqlite_to_postgres(path, target, blueprint=blueprint).ok
    before = _rows(target, app.posts)
    with pytest.raises(DataMoveError, match="already has rows in .*posts.*nothing was written"):
        copy_sqlite_to_postgres(path, target, blueprint=blueprint)
    assert _rows(target, app.posts) == before


@pytest.mark.postgres
def test_rows_the_1plus_start_up_made_are_replaced_by_the_sources(stage_one, postgres_db) -> None:  # noqa: ANN001
    blueprint, path = stage_one
    target = _sync_url(postgres_db.url)
    upgrade_all(blueprint, target)
    engine = create_engine(target, connect_args={"prepare_threshold": None})
    with engine.begin() as conn:  # what Security.open does at each start of the app
        conn.execute(insert(pool.groups), [{"name": "moderators", "created_at": 1.0}, {"name": "admins", "created_at": 1.0}])
    engine.dispose()
    report = copy_sqlite_to_postgres(path, target, blueprint=blueprint)
    assert report.ok and report.replaced == {"identity_groups": 2}
    assert _rows(target, pool.groups) == [("moderators", NOW)]


def _tables(sync_url: str) -> list[str]:
    engine = create_engine(sync_url, connect_args={"prepare_threshold": None})
    try:
        with engine.connect() as conn:
            return list(conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars())
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_a_corrupt_source_is_a_clear_error_and_writes_nothing(tmp_path: Path, postgres_db) -> None:  # noqa: ANN001
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "app.db").write_bytes(b"this is not a database, only words " * 200)
    result = CliRunner().invoke(main.app, ["migrate-data", "--to", "postgres", "--from-data-dir", str(data_dir),
                                           "--to-url", postgres_db.url, "--yes"], env={"COLUMNS": "200"})
    assert result.exit_code == 1, result.output
    assert "not a readable SQLite database" in result.output
    assert _tables(_sync_url(postgres_db.url)) == []


def test_a_sqlite_file_that_is_not_summits_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY)"))
    engine.dispose()
    blueprint = load_blueprint(environ={}, overrides={"data_dir": str(tmp_path)})
    with pytest.raises(DataMoveError, match="does not have it"):
        copy_sqlite_to_postgres(path, "postgresql+psycopg://nobody@127.0.0.1:1/none", blueprint=blueprint)


def test_without_a_running_1plus_stage_it_says_how_to_start_one(stage_one) -> None:  # noqa: ANN001
    blueprint, _ = stage_one
    result = CliRunner().invoke(main.app, ["migrate-data", "--to", "postgres", "--from-data-dir", str(blueprint.data_dir), "--yes"],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 1, result.output
    assert "summit up --stage 1+" in " ".join(result.output.split())  # however the terminal wrapped it


@pytest.mark.postgres
async def test_the_command_prints_each_table_and_the_pending_jobs(stage_one, postgres_db) -> None:  # noqa: ANN001
    blueprint, _ = stage_one
    queue = open_port("queue", f"sqlite:///{blueprint.data_dir / 'queue.db'}")
    try:
        await queue.send("thumbnails", b"{}")
        await queue.send("thumbnails", b"{}")
    finally:
        await queue.close()
    result = CliRunner().invoke(main.app, ["migrate-data", "--to", "postgres", "--from-data-dir", str(blueprint.data_dir),
                                           "--to-url", postgres_db.url, "--yes"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "identity_users" in result.output and "checksum ok" in result.output and "NO" not in result.output
    assert "2 pending job(s) stay in" in result.output


@pytest.mark.postgres
def test_a_copy_that_differs_from_its_source_exits_1(stage_one, postgres_db, monkeypatch) -> None:  # noqa: ANN001
    from summit import datamove

    copy = datamove._copy_table

    def copy_then_spoil(src, dst, source, target, on_progress):  # noqa: ANN001, ANN202
        done = copy(src, dst, source, target, on_progress)
        if target.name == "idempotency_keys":  # one byte of one value changes on its way
            dst.execute(text("UPDATE idempotency_keys SET body = '\\x00'::bytea WHERE key = 'k1'"))
        return done

    monkeypatch.setattr(datamove, "_copy_table", copy_then_spoil)
    blueprint, _ = stage_one
    result = CliRunner().invoke(main.app, ["migrate-data", "--to", "postgres", "--from-data-dir", str(blueprint.data_dir),
                                           "--to-url", postgres_db.url, "--yes"], env={"COLUMNS": "200"})
    assert result.exit_code == 1, result.output
    assert "the copy differs from the source" in result.output
    lines = [line for line in result.output.splitlines() if "idempotency_keys" in line]
    assert lines and "NO" in lines[0], result.output
