"""``summit kms``: the key management service's keys, for operators: list, create, rotate, and
encrypt or decrypt through stdin and stdout (see docs/kms.md)."""

from __future__ import annotations

import base64
import binascii
import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from summit.cli.main import ConfigOpt, DataDirOpt, app, blueprint_or_exit, console

kms_app = typer.Typer(help="The key management service (like AWS KMS): keys, versions, rotation, envelope encryption.", no_args_is_help=True)
app.add_typer(kms_app, name="kms")

MasterKeyOpt = Annotated[
    Optional[Path],
    typer.Option("--master-key", help="The master key file, when it is kept outside <data_dir>/keys/kms/ (mode 0600)."),
]
ContextOpt = Annotated[
    Optional[list[str]],
    typer.Option("--context", help="An encryption context pair k=v (repeat for more); decrypt needs the same pairs."),
]


def _kms(config, data_dir, master_key):  # noqa: ANN001, ANN202
    from summit.security.kms import Kms, KmsError

    blueprint = blueprint_or_exit(config, data_dir=data_dir)
    try:
        return Kms.for_data_dir(blueprint.data_dir, master_key_file=master_key)
    except KmsError as error:
        _fail(error)


def _fail(error: Exception, code: int = 1) -> None:
    console.print(f"[red]error:[/red] {escape(str(error))}", highlight=False)
    raise typer.Exit(code) from None


def parse_context(pairs: list[str] | None) -> dict[str, str]:
    context: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not k=v", param_hint="--context")
        if key in context:
            raise typer.BadParameter(f"{key!r} is given twice", param_hint="--context")
        context[key] = value
    return context


def _when(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


@kms_app.command("list")
def list_keys(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    master_key: MasterKeyOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """The keys: their versions, when each was made, and when the current one rotates."""
    from summit.security.kms import KmsError

    kms = _kms(config, data_dir, master_key)
    try:
        keys = kms.list_keys()
    except KmsError as error:
        _fail(error)
    if as_json:
        typer.echo(json.dumps([k.as_dict() for k in keys], indent=2))
        return
    if not keys:
        console.print(f"no keys in {escape(str(kms.directory))}: make one with `summit kms create NAME`")
        return
    table = Table("key", "versions", "current", "created", "current since", "next rotation", "description", title=f"summit kms ({kms.directory})")
    for key in keys:
        every = f"every {key.rotation_days} d" if key.rotation_days else "never (by age)"
        table.add_row(
            key.name, str(len(key.versions)), f"v{key.current_version}", _when(key.created), _when(key.versions[-1].created),
            f"{_when(key.next_rotation)} ({every})" if key.next_rotation else every, escape(key.description),
        )  # fmt: skip
    console.print(table)


@kms_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="The key's name: letters, digits, '.', '_' or '-'.")],
    rotation_days: Annotated[int, typer.Option("--rotation-days", min=0, max=36500, help="Rotate when the current version is this old (0: never by age).")] = 365,
    description: Annotated[str, typer.Option("--description", help="What the key protects.")] = "",
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    master_key: MasterKeyOpt = None,
) -> None:
    """Make a key with its first version."""
    from summit.security.kms import KmsError

    kms = _kms(config, data_dir, master_key)
    try:
        kms.create_key(name, rotation_days=rotation_days, description=description)
    except KmsError as error:
        _fail(error)
    console.print(f"created key {escape(name)} (version 1) in {escape(str(kms.directory))}")


@kms_app.command("rotate")
def rotate(
    name: Annotated[Optional[str], typer.Argument(help="The key to rotate now.")] = None,
    due: Annotated[bool, typer.Option("--due", help="Rotate every key whose current version is older than its rotation period.")] = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    master_key: MasterKeyOpt = None,
) -> None:
    """Add a new version to a key (or to every key that is due) and make it current.

    Older versions keep decrypting what they encrypted. Run `summit kms rotate --due` daily
    (cron, a systemd timer): a key rotates when its current version is older than its period.
    """
    from summit.security.kms import KmsError

    if (name is None) == (not due):
        raise typer.BadParameter("give a key NAME or --due (not both)")
    kms = _kms(config, data_dir, master_key)
    try:
        rotated = [(name, kms.rotate(name))] if name else kms.rotate_due()
    except KmsError as error:
        _fail(error)
    for key, version in rotated:
        console.print(f"rotated {escape(key)}: version {version} is current")
    if not rotated:
        console.print("no key is due for rotation")


@kms_app.command("encrypt")
def encrypt(
    name: Annotated[str, typer.Argument(help="The key to encrypt under (its current version).")],
    context: ContextOpt = None,
    binary: Annotated[bool, typer.Option("--binary", help="Write the raw blob instead of base64.")] = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    master_key: MasterKeyOpt = None,
) -> None:
    """Encrypt stdin; write the blob (base64, one line) to stdout.

    Example: `summit kms encrypt backups --context host=db1 < dump.sql > dump.sql.kms`
    """
    from summit.security.kms import KmsError

    pairs = parse_context(context)
    kms = _kms(config, data_dir, master_key)
    plaintext = sys.stdin.buffer.read()
    try:
        blob = kms.encrypt(name, plaintext, pairs)
    except KmsError as error:
        _fail(error)
    out = sys.stdout.buffer
    out.write(blob if binary else base64.b64encode(blob) + b"\n")
    out.flush()


@kms_app.command("decrypt")
def decrypt(
    context: ContextOpt = None,
    key: Annotated[Optional[str], typer.Option("--key", help="Refuse a blob that is not under this key.")] = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    master_key: MasterKeyOpt = None,
) -> None:
    """Decrypt a blob (base64 or raw) from stdin; write the plaintext to stdout.

    The --context pairs must be the ones it was encrypted with. Exits 1 when the blob does not
    decrypt (changed, another context, a key or version this KMS does not have).
    """
    from summit.security.kms import KmsError

    pairs = parse_context(context)
    kms = _kms(config, data_dir, master_key)
    data = sys.stdin.buffer.read()
    if data[:1] != b"\x01":  # a raw blob starts with its format byte, which base64 never does
        try:
            data = base64.b64decode(b"".join(data.split()), validate=True)
        except (binascii.Error, ValueError):
            _fail(ValueError("stdin is neither a KMS blob nor base64 of one"))
    try:
        plaintext = kms.decrypt(data, pairs, key_name=key)
    except KmsError as error:
        _fail(error)
    out = sys.stdout.buffer
    out.write(plaintext)
    out.flush()
