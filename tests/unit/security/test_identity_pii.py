"""Users' emails at rest (pii.py): a keyed hash and a KMS blob, never the address, on a real SQLite
database migrated by the pool's history; an old database with users upgraded by id0003; a blob
moved to another row refused."""

from __future__ import annotations

import asyncio
import base64
import re
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import select, text, update

from summit.errors import Conflict
from summit.security.identity import KeySet, PoolConfig, Session, UserPool, migrations, schema
from summit.security.identity.pii import INDEX_KEY, PII_KEY, EmailVault, SealedEmailError
from summit.security.kms import Kms
from summit.security.passwords import PasswordHasher
from summit.wiring import open_port

PASSWORD = "correct horse battery"
CODE_RE = re.compile(r"\b(\d{6})\b")
OLD_USERS = [(101, "alice", "alice@example.com"), (102, "bob", "Bob.Smith@Example.org"), (103, "carol", "carol+tag@example.net")]


def _pool(db, cache, mailer, data: Path) -> UserPool:  # noqa: ANN001
    keys = KeySet(data / "keys" / "identity")
    return UserPool(db=db, cache=cache, mailer=mailer, keys=keys, hasher=PasswordHasher(time_cost=1, memory_cost=1024),
                    config=PoolConfig(issuer="http://testserver"))


@pytest.fixture
async def pool(tmp_path: Path, migrated: Path):  # noqa: ANN201
    shutil.copyfile(migrated, tmp_path / "app.db")
    db = open_port("sql", f"sqlite:///{tmp_path}/app.db")
    cache = open_port("cache", "memory://?max_items=1000")
    mailer = open_port("mail", f"outbox://{tmp_path}/outbox")
    yield _pool(db, cache, mailer, tmp_path / "data")
    await mailer.close()
    await cache.close()
    await db.close()


async def _code(pool: UserPool, address: str) -> str:
    mails = await pool.mailer.list(to=address)
    return CODE_RE.search(mails[0].subject).group(1)


async def _user_rows(pool: UserPool) -> list:
    async with pool.db.read() as conn:
        return list((await conn.execute(select(schema.users))).all())


def _file_bytes(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(directory.glob("app.db*")))


async def test_sign_up_stores_a_hash_and_a_blob_never_the_address(pool: UserPool, tmp_path: Path) -> None:
    user = await pool.sign_up("alice", "Alice.Liddell@Example.com", PASSWORD)
    (row,) = await _user_rows(pool)
    assert row.email is None
    assert re.fullmatch(r"[0-9a-f]{64}", row.email_hash)
    blob = base64.b64decode(row.email_sealed, validate=True)
    assert blob[0] == 1 and PII_KEY.encode() in blob  # a KMS blob under identity-pii
    assert "alice.liddell" not in repr(tuple(row)).lower()
    await pool.db.close()  # checkpoint the WAL: the file holds what the database holds
    assert b"liddell" not in _file_bytes(tmp_path).lower()
    assert user.email == "alice.liddell@example.com"


async def test_sign_in_and_reset_by_email_find_the_user_by_its_hash(pool: UserPool) -> None:
    user = await pool.sign_up("alice", "alice@example.com", PASSWORD)
    await pool.confirm("  ALICE@example.COM ", await _code(pool, "alice@example.com"))
    session = await pool.sign_in(" Alice@Example.com", PASSWORD)
    assert isinstance(session, Session) and session.user.id == user.id and session.user.email == "alice@example.com"
    assert pool.tokens.verify(session.id_token, token_use="id").claims["email"] == "alice@example.com"
    assert (await pool.get_user(user.id)).email == "alice@example.com"
    await pool.start_password_reset("ALICE@EXAMPLE.COM")
    mails = await pool.mailer.list(to="alice@example.com")
    assert any("reset" in m.subject for m in mails)
    refreshed = await pool.refresh(session.refresh_token)
    assert refreshed.user.email == "alice@example.com"


@pytest.mark.parametrize("again", ["alice@example.com", " Alice@Example.COM ", "ALICE@EXAMPLE.COM"])
async def test_the_same_address_in_another_case_or_spacing_is_a_conflict(pool: UserPool, again: str) -> None:
    await pool.sign_up("alice", "alice@example.com", PASSWORD)
    with pytest.raises(Conflict) as caught:
        await pool.sign_up("alice2", again, PASSWORD)
    assert caught.value.field == "email"
    assert len(await _user_rows(pool)) == 1


async def test_the_unique_index_refuses_a_second_row_with_the_same_hash(pool: UserPool) -> None:
    await pool.sign_up("alice", "alice@example.com", PASSWORD)
    (row,) = await _user_rows(pool)
    with pytest.raises(sa.exc.IntegrityError):
        async with pool.db.write() as conn:
            await conn.execute(sa.insert(schema.users).values(
                id=row.id + 1, username="mallory", email_hash=row.email_hash, email_sealed=row.email_sealed,
                password_hash="x", created_at=0, password_changed_at=0))


async def test_a_blob_moved_to_another_row_does_not_decrypt(pool: UserPool) -> None:
    alice = await pool.sign_up("alice", "alice@example.com", PASSWORD)
    bob = await pool.sign_up("bob", "bob@example.com", PASSWORD)
    async with pool.db.write() as conn:
        sealed = (await conn.execute(select(schema.users.c.email_sealed).where(schema.users.c.id == alice.id))).scalar_one()
        await conn.execute(update(schema.users).where(schema.users.c.id == bob.id).values(email_sealed=sealed))
    with pytest.raises(SealedEmailError, match=f"user {bob.id} does not decrypt"):
        await pool.get_user(bob.id)
    assert (await pool.get_user(alice.id)).email == "alice@example.com"


async def test_a_hand_rotation_of_the_index_key_loses_nobody(pool: UserPool) -> None:
    await pool.sign_up("alice", "alice@example.com", PASSWORD)
    assert pool.emails.kms.describe_key(INDEX_KEY).rotation_days == 0  # never by age
    assert pool.emails.kms.describe_key(PII_KEY).rotation_days == 365
    pool.emails.kms.rotate(INDEX_KEY)
    pool.emails.kms.rotate(PII_KEY)
    pool.emails = EmailVault(pool.emails.kms)  # a process started after the rotation
    with pytest.raises(Conflict):
        await pool.sign_up("alice2", "Alice@example.com", PASSWORD)  # found under version 1
    bob = await pool.sign_up("bob", "bob@example.com", PASSWORD)  # hashed under version 2
    await pool.confirm("bob@example.com", await _code(pool, "bob@example.com"))
    assert isinstance(await pool.sign_in("bob@example.com", PASSWORD), Session)
    assert (await pool.get_user(bob.id)).email == "bob@example.com"


# ---- a database from before id0003 (SQLite and PostgreSQL) ------------------------------------------

OLD = sa.table("identity_users", *(sa.column(name) for name in (
    "id", "username", "email", "password_hash", "confirmed", "created_at", "password_changed_at")))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def old_db(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(the port's URL, its sync URL) of a database at id0002 (emails in clear) with users, as the
    pool wrote them before."""
    url = f"sqlite:///{tmp_path}/app.db" if request.param == "sqlite" else request.getfixturevalue("postgres_db").url
    sync_url = open_port("sql", url).sync_url
    migrations.upgrade(sync_url, "id0002")
    hasher = PasswordHasher(time_cost=1, memory_cost=1024)
    _insert_old(sync_url, [{"id": user_id, "username": username, "email": email, "password_hash": hasher.hash(PASSWORD),
                            "confirmed": True, "created_at": 0.0, "password_changed_at": 0.0} for user_id, username, email in OLD_USERS])
    return url, sync_url


def _insert_old(sync_url: str, rows: list[dict]) -> None:
    engine = sa.create_engine(sync_url)
    with engine.begin() as conn:
        conn.execute(sa.insert(OLD), rows)
    engine.dispose()


def _select(sync_url: str, query: str) -> list:
    engine = sa.create_engine(sync_url)
    with engine.connect() as conn:
        rows = conn.execute(text(query)).all()
    engine.dispose()
    return rows


async def _signs_in_by_email(url: str, data: Path, tmp_path: Path) -> None:
    db = open_port("sql", url)
    cache, mailer = open_port("cache", "memory://"), open_port("mail", f"outbox://{tmp_path}/outbox")
    pool = _pool(db, cache, mailer, data)
    try:
        assert await pool.seal_plaintext() == 0  # nothing left in clear
        for user_id, _, email in OLD_USERS:
            session = await pool.sign_in(email.upper(), PASSWORD)
            assert isinstance(session, Session) and session.user.id == user_id
            assert (await pool.get_user(user_id)).email == email.lower()
    finally:
        await mailer.close()
        await cache.close()
        await db.close()


async def test_id0003_seals_the_emails_of_an_old_database_and_everyone_still_signs_in(old_db: tuple[str, str], tmp_path: Path) -> None:
    url, sync_url = old_db
    await asyncio.to_thread(migrations.upgrade, sync_url, data_dir=tmp_path / "data")
    rows = _select(sync_url, "SELECT email, email_hash, email_sealed FROM identity_users")
    assert len(rows) == 3 and all(r.email is None and r.email_hash and r.email_sealed for r in rows)
    if url.startswith("sqlite"):
        raw = _file_bytes(tmp_path).lower()
        assert not [email for _, _, email in OLD_USERS if email.lower().encode() in raw]  # not even in freed pages
    await _signs_in_by_email(url, tmp_path / "data", tmp_path)


async def test_rows_left_in_plaintext_are_sealed_when_the_pool_opens(old_db: tuple[str, str], tmp_path: Path) -> None:
    url, sync_url = old_db
    await asyncio.to_thread(migrations.upgrade, sync_url)  # no data directory: the migration cannot seal
    db = open_port("sql", url)
    pool = _pool(db, open_port("cache", "memory://"), open_port("mail", f"outbox://{tmp_path}/outbox"), tmp_path / "data")
    assert await pool.seal_plaintext(batch=2) == 3  # what Security.open does
    assert await pool.seal_plaintext() == 0  # idempotent
    await db.close()
    await _signs_in_by_email(url, tmp_path / "data", tmp_path)


def test_two_old_rows_with_one_address_stop_the_upgrade_with_what_to_fix(old_db: tuple[str, str], tmp_path: Path) -> None:
    _, sync_url = old_db
    _insert_old(sync_url, [{"id": 104, "username": "alice2", "email": "ALICE@example.com", "password_hash": "x",
                            "confirmed": True, "created_at": 0.0, "password_changed_at": 0.0}])
    with pytest.raises(SealedEmailError, match="users 101 and 104 have the same email"):
        migrations.upgrade(sync_url, data_dir=tmp_path / "data")
    # the migration's transaction rolled back: nothing half done
    assert _select(sync_url, "SELECT count(*) FROM identity_users WHERE email IS NOT NULL")[0][0] == 4


def test_downgrade_puts_the_addresses_back(old_db: tuple[str, str], tmp_path: Path) -> None:
    _, sync_url = old_db
    migrations.upgrade(sync_url, data_dir=tmp_path / "data")
    migrations.downgrade(sync_url, "id0002", data_dir=tmp_path / "data")
    emails = sorted(r.email for r in _select(sync_url, "SELECT email FROM identity_users"))
    assert emails == sorted(e.lower() for _, _, e in OLD_USERS)


def test_the_history_makes_the_schema_the_pool_describes(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    url = f"sqlite:///{tmp_path}/app.db"
    migrations.upgrade(url, data_dir=tmp_path / "data")
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), schema.metadata)
    engine.dispose()
    assert [d for d in diff if "summit_identity_version" not in repr(d)] == []


def test_the_vault_is_cheap_per_lookup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vault = EmailVault(Kms.for_data_dir(tmp_path))
    vault.candidates("warm@example.com")
    calls = []
    original = Path.iterdir

    def counting(self):  # noqa: ANN001, ANN202
        calls.append(self)
        return original(self)

    sealed = vault.seal(1, "x@example.com")
    monkeypatch.setattr(Path, "iterdir", counting)  # counts the directory listings, changes nothing
    for n in range(100):
        vault.candidates(f"user{n}@example.com")
        assert vault.open(1, sealed) == "x@example.com"
    assert calls == []  # lookups and opening read no directory (sealing, at sign-up, does)


async def test_accounts_an_app_migration_imports_in_clear_are_sealed_when_the_pool_opens(tmp_path: Path) -> None:
    """A stage-1 database from before the user pool: Summit Photos' 0002 copies its accounts into
    the pool's table after id0003 ran (in clear); the pool seals them when it opens."""
    import importlib

    from summit.blueprint import load_blueprint
    from summit.migrate import History, upgrade, upgrade_all

    blueprint = load_blueprint(environ={}, overrides={"data_dir": str(tmp_path / "data")})
    url = f"sqlite:///{tmp_path}/app.db"
    migrations.upgrade(url, "id0002")
    upgrade(History.of(importlib.import_module("photos.migrations")).location, url, "0001")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO users (id, username, email, password_hash, created_at) VALUES (101, 'alice', :e, :h, 0)"),
                     {"e": "alice@example.com", "h": PasswordHasher(time_cost=1, memory_cost=1024).hash(PASSWORD)})
    engine.dispose()
    upgrade_all(blueprint, url)
    assert _select(url, "SELECT email FROM identity_users")[0].email == "alice@example.com"  # imported after id0003
    db = open_port("sql", url)
    pool = _pool(db, open_port("cache", "memory://"), open_port("mail", f"outbox://{tmp_path}/outbox"), tmp_path / "data")
    try:
        assert await pool.seal_plaintext() == 1
        assert _select(url, "SELECT email FROM identity_users")[0].email is None
        session = await pool.sign_in("alice@example.com", PASSWORD)
        assert isinstance(session, Session) and session.user.email == "alice@example.com"
    finally:
        await db.close()
