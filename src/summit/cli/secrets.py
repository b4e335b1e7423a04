"""``summit secrets``: the Secrets Manager for operators: list, describe, get (masked unless
--show), put (the value from stdin, never from the command line) and rotate (see docs/secrets.md)."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from summit.cli.main import ConfigOpt, DataDirOpt, app, blueprint_or_exit, console

secrets_app = typer.Typer(help="The secrets manager (like AWS Secrets Manager): versions, staging labels, rotation.", no_args_is_help=True)
app.add_typer(secrets_app, name="secrets")

MasterKeyOpt = Annotated[Optional[Path], typer.Option("--master-key", help="The KMS master key file, when kept outside <data_dir>/keys/kms/.")]
NameArg = Annotated[str, typer.Argument(help="The secret's name, e.g. db/app.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
MASK = "********"


def _manager(config, data_dir, master_key):  # noqa: ANN001, ANN202
    from summit.security.kms import Kms, KmsError
    from summit.security.secrets import SecretsError, SecretsManager

    blueprint = blueprint_or_exit(config, data_dir=data_dir)
    try:
        return SecretsManager.for_data_dir(blueprint.data_dir, kms=Kms.for_data_dir(blueprint.data_dir, master_key_file=master_key))
    except (KmsError, SecretsError) as error:
        _fail(error)


def _fail(error: Exception, code: int = 1) -> None:
    console.print(f"[red]error:[/red] {escape(str(error))}", highlight=False)
    raise typer.Exit(code) from None


def _when(ts: float | None) -> str:
    return "-" if not ts else datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def masked(value: str | bytes) -> str:
    """The value with every secret part hidden: a JSON object keeps its keys, nothing else shows."""
    if isinstance(value, bytes):
        return f"{MASK} ({len(value)} bytes, binary)"
    try:
        doc = json.loads(value)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        return json.dumps(dict.fromkeys(doc, MASK))
    return f"{MASK} ({len(value)} characters)"


@secrets_app.command("list")
def list_secrets(config: ConfigOpt = None, data_dir: DataDirOpt = None, master_key: MasterKeyOpt = None, as_json: JsonOpt = False) -> None:
    """The secrets: versions, the current one, the last change and the last rotation."""
    from summit.security.secrets import CURRENT, SecretsError

    manager = _manager(config, data_dir, master_key)
    try:
        found = manager.list()
    except SecretsError as error:
        _fail(error)
    if as_json:
        typer.echo(json.dumps([s.as_dict() for s in found], indent=2))
        return
    if not found:
        console.print(f"no secrets in {escape(str(manager.directory))}: add one with `summit secrets put NAME < value`")
        return
    table = Table("secret", "versions", "current", "changed", "rotation", "last rotated", title=f"summit secrets ({manager.directory})")
    for info in found:
        rotation = info.rotation
        failure = rotation.get("last_failure")
        table.add_row(
            escape(info.name), str(len(info.versions)), (info.holder(CURRENT) or "-")[:8], _when(info.changed),
            escape(rotation.get("strategy", "-")),
            _when(rotation.get("last_rotated")) + (f" [red](failed at {failure['step']} {_when(failure['at'])})[/red]" if failure else ""),
        )  # fmt: skip
    console.print(table)


@secrets_app.command("describe")
def describe(name: NameArg, config: ConfigOpt = None, data_dir: DataDirOpt = None, master_key: MasterKeyOpt = None, as_json: JsonOpt = False) -> None:
    """A secret's versions with their staging labels, and its rotation (never the values)."""
    from summit.security.secrets import SecretsError

    manager = _manager(config, data_dir, master_key)
    try:
        info = manager.describe(name)
    except SecretsError as error:
        _fail(error)
    if as_json:
        typer.echo(json.dumps(info.as_dict(), indent=2))
        return
    table = Table("version", "created", "labels", title=f"{info.name}{f' ({info.description})' if info.description else ''}")
    for version in reversed(info.versions):
        table.add_row(version.version_id, _when(version.created), ", ".join(version.stages) or "[dim](deprecated)[/dim]")
    console.print(table)
    if info.rotation:
        console.print(escape(json.dumps(info.rotation)), highlight=False)


@secrets_app.command("get")
def get(
    name: NameArg,
    stage: Annotated[Optional[str], typer.Option("--stage", help="The version with this label (default AWSCURRENT).")] = None,
    version_id: Annotated[Optional[str], typer.Option("--version-id", help="This version.")] = None,
    show: Annotated[bool, typer.Option("--show", help="Print the value itself (only the value, for a pipe).")] = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    master_key: MasterKeyOpt = None,
) -> None:
    """A version of a secret: masked, unless --show prints the value (and nothing else) to stdout."""
    from summit.security.secrets import SecretsError

    manager = _manager(config, data_dir, master_key)
    try:
        value = manager.get_secret_value(name, stage=stage, version_id=version_id)
    except SecretsError as error:
        _fail(error)
    if show:
        out = sys.stdout.buffer
        out.write(value.value if isinstance(value.value, bytes) else value.value.encode())
        out.flush()
        return
    typer.echo(f"{value.name}  version {value.version_id}  [{', '.join(value.stages) or 'deprecated'}]  created {_when(value.created)}")
    typer.echo(masked(value.value))
    console.print("(masked: add --show to print the value)")


@secrets_app.command("put")
def put(
    name: NameArg,
    stage: Annotated[Optional[list[str]], typer.Option("--stage", help="Labels for the new version (default AWSCURRENT; repeat for more).")] = None,
    description: Annotated[Optional[str], typer.Option("--description", help="What the secret is for.")] = None,
    binary: Annotated[bool, typer.Option("--binary", help="Store stdin's bytes as they are (a binary secret).")] = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    master_key: MasterKeyOpt = None,
) -> None:
    """Store a new version of a secret (made if missing), its value read from stdin.

    The value comes from stdin (one final newline dropped) or a hidden prompt, never from the
    command line, where shell history and `ps` would keep it. Example:
    `summit secrets put db/app < app.json`
    """
    from summit.security.secrets import SecretsError

    manager = _manager(config, data_dir, master_key)
    value: Any
    if sys.stdin.isatty() and not binary:
        value = typer.prompt("value", hide_input=True, confirmation_prompt=True)
    else:
        raw = sys.stdin.buffer.read()
        if binary:
            value = raw
        else:
            try:
                value = raw.decode()
            except UnicodeDecodeError:
                _fail(ValueError("stdin is not UTF-8 text: use --binary for a binary secret"), 2)
            value = value[:-1] if value.endswith("\n") else value
    try:
        version = manager.put_secret_value(name, value, stages=stage or ["AWSCURRENT"], description=description)
        stages = manager.get_secret_value(name, version_id=version).stages
    except SecretsError as error:
        _fail(error)
    console.print(f"{escape(name)}: version {version} [{', '.join(stages)}]", highlight=False)


def _options(pairs: list[str] | None) -> dict[str, str]:
    options = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise typer.BadParameter(f"{pair!r} is not name=value", param_hint="--option")
        options[key] = value
    return options


@secrets_app.command("rotate")
def rotate(
    name: NameArg,
    strategy: Annotated[
        Optional[str],
        typer.Option("--strategy", help="random, postgres-alternating-users or module:Class; remembered for the next rotations."),
    ] = None,
    option: Annotated[Optional[list[str]], typer.Option("--option", help="A strategy option name=value, e.g. admin_secret=db/admin (repeat).")] = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    master_key: MasterKeyOpt = None,
) -> None:
    """Rotate a secret in four steps (create, set, test, finish) with its strategy.

    If a step fails, the rotation is rolled back (AWSCURRENT unchanged, the resource put back),
    the error says which step failed and why, and the exit code is 1.
    """
    from summit.security.secrets import SecretsError

    options = _options(option)
    manager = _manager(config, data_dir, master_key)
    try:
        if strategy:
            manager.configure_rotation(name, strategy, options)
        elif options:
            raise typer.BadParameter("--option needs --strategy", param_hint="--option")
        console.print(f"rotating {escape(name)} ({escape(manager.describe(name).rotation.get('strategy', '?'))}):", highlight=False)
        result = manager.rotate(name, progress=lambda text: console.print(f"  {escape(text)}", highlight=False))
    except SecretsError as error:
        _fail(error)
    resumed = " (an interrupted rotation, finished)" if result.resumed else ""
    console.print(f"rotated {escape(name)}{resumed} in {result.seconds:.2f} s: version {result.version_id} is AWSCURRENT, "
                  f"{result.previous_version_id} AWSPREVIOUS", highlight=False)
