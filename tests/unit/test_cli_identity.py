"""`summit identity`: key rotation and groups, on a real data directory."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from typer.testing import CliRunner

from summit.cli import identity, main  # noqa: F401  (registers the commands)
from summit.security.identity import KeySet, PoolConfig, UserPool
from summit.security.identity import migrations as identity_migrations
from summit.security.passwords import PasswordHasher
from summit.wiring import open_port

runner = CliRunner()


def summit(*args: str):  # noqa: ANN201
    return runner.invoke(main.app, list(args), env={})


def test_rotation_keeps_old_keys_until_retired(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    first = summit("identity", "keys", "-d", data)
    assert first.exit_code == 0 and "(active)" in first.output
    old = first.output.split()[0]
    assert summit("identity", "rotate-keys", "-d", data).exit_code == 0
    listed = summit("identity", "keys", "-d", data).output
    assert old in listed and f"{old}  (active)" not in listed
    keys = KeySet(tmp_path / "data" / "keys" / "identity")
    assert len(keys.kids()) == 2 and keys.active_kid != old
    refused = summit("identity", "retire-key", keys.active_kid, "-d", data)
    assert refused.exit_code == 2 and "rotate first" in refused.output
    assert summit("identity", "retire-key", old, "-d", data).exit_code == 0
    assert KeySet(tmp_path / "data" / "keys" / "identity").kids() == [keys.active_kid]


def test_add_to_group_makes_a_confirmed_user_a_member(tmp_path: Path) -> None:
    data = tmp_path / "data"

    async def make_user() -> None:
        db = open_port("sql", f"sqlite:///{data}/app.db")
        identity_migrations.upgrade(db.sync_url)
        mailer = open_port("mail", f"outbox://{data}/outbox")
        pool = UserPool(db=db, cache=open_port("cache", "memory://"), mailer=mailer, keys=KeySet(data / "keys" / "identity"),
                        hasher=PasswordHasher(time_cost=1, memory_cost=1024), config=PoolConfig(issuer="http://x"))
        await pool.sign_up("carol", "carol@example.com", "correct horse 1")
        await db.close()

    asyncio.run(make_user())
    unknown = summit("identity", "add-to-group", "nobody", "admins", "-d", str(data))
    assert unknown.exit_code == 2 and "no user 'nobody'" in unknown.output
    assert summit("identity", "add-to-group", "carol", "admins", "-d", str(data)).exit_code == 0
    groups = json.loads(summit("identity", "groups", "--json", "-d", str(data)).output)
    assert groups == [{"name": "admins", "members": ["carol"], "policies": []}]


def test_key_ids_never_read_as_options() -> None:
    """A kid is a base64url thumbprint; one in 64 would start with '-' and `retire-key KID` would take it
    for an option (CI met one)."""
    from summit.security.identity.keys import _new_key

    assert not [kid for kid in (_new_key().kid for _ in range(400)) if kid.startswith("-")]
