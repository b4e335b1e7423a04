"""``summit identity``: the user pool's signing keys and IAM groups, operated on the data directory
(the stage may be running: a rotation is picked up by every process within a second)."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer
from rich.table import Table

from summit.cli.main import ConfigOpt, DataDirOpt, app, blueprint_or_exit, console

identity_app = typer.Typer(help="The user pool: signing keys, groups (admins, moderators, ...).", no_args_is_help=True)
app.add_typer(identity_app, name="identity")


def _keys(config, data_dir):  # noqa: ANN001, ANN202
    from summit.security.identity import KeySet

    blueprint = blueprint_or_exit(config, data_dir=data_dir)
    return KeySet(blueprint.data_dir / "keys" / "identity")


@identity_app.command("keys")
def keys(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """List the signing keys (the JWKS); the active one signs new tokens."""
    key_set = _keys(config, data_dir)
    for kid in key_set.kids():
        typer.echo(f"{kid}{'  (active)' if kid == key_set.active_kid else ''}")


@identity_app.command("rotate-keys")
def rotate_keys(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Add a new signing key and make it active. Older keys stay in the JWKS, so tokens they signed
    stay valid until they expire: nobody is signed out. Retire old keys later with retire-key."""
    kid = _keys(config, data_dir).rotate()
    console.print(f"new active signing key: {kid}")


@identity_app.command("retire-key")
def retire_key(kid: Annotated[str, typer.Argument(help="The key id to remove.")], config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Remove a key from the JWKS: tokens it signed stop validating (wait one refresh-token lifetime)."""
    try:
        _keys(config, data_dir).retire(kid)
    except (ValueError, FileNotFoundError) as error:
        console.print(f"[red]error:[/red] {error if isinstance(error, ValueError) else f'no key {kid!r}'}")
        raise typer.Exit(2) from None
    console.print(f"retired {kid}")


async def _with_access(blueprint, action):  # noqa: ANN001, ANN202
    from summit.security.identity import migrations
    from summit.security import Access
    from summit.wiring import open_port

    db = open_port("sql", blueprint.port_url("sql"))
    try:
        await asyncio.to_thread(migrations.upgrade, db.sync_url, data_dir=blueprint.data_dir)  # seals emails: needs the KMS
        return await action(Access(db), db)
    finally:
        await db.close()


@identity_app.command("add-to-group")
def add_to_group(
    username: Annotated[str, typer.Argument(help="A user of the pool.")],
    group: Annotated[str, typer.Argument(help="e.g. admins or moderators (created if missing)")],
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Put a user in a group: how the first admin is made (admins manage the rest via the admin API)."""
    from sqlalchemy import select

    from summit.errors import Conflict, ServiceError
    from summit.security.identity import schema

    blueprint = blueprint_or_exit(config, data_dir=data_dir)

    async def act(access, db):  # noqa: ANN001, ANN202
        async with db.read() as conn:
            row = (await conn.execute(select(schema.users.c.id).where(schema.users.c.username == username.strip().lower()))).first()
        if row is None:
            raise typer.BadParameter(f"no user {username!r}", param_hint="USERNAME")
        try:
            await access.create_group(group)
        except Conflict:
            pass
        await access.add_member(group, row.id)

    try:
        asyncio.run(_with_access(blueprint, act))
    except ServiceError as error:
        console.print(f"[red]error:[/red] {error.message}")
        raise typer.Exit(2) from None
    console.print(f"{username} is in {group}")


@identity_app.command("groups")
def groups(config: ConfigOpt = None, data_dir: DataDirOpt = None, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Groups with their members and policies."""
    blueprint = blueprint_or_exit(config, data_dir=data_dir)

    async def act(access, db):  # noqa: ANN001, ANN202
        return await access.groups()

    found = asyncio.run(_with_access(blueprint, act))
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    table = Table("group", "members", "policies")
    for entry in found:
        table.add_row(entry["name"], ", ".join(entry["members"]), ", ".join(entry["policies"]))
    console.print(table)
