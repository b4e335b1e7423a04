"""``summit config check``: compliance rules over the blueprint and the running stage (like AWS Config)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from summit.cli.main import ConfigOpt, DataDirOpt, app, blueprint_or_exit, console

config_app = typer.Typer(help="The stage's configuration (like AWS Config): check it against the compliance rules.", no_args_is_help=True)
app.add_typer(config_app, name="config")

_COLOUR = {"COMPLIANT": "green", "NON_COMPLIANT": "red", "NOT_APPLICABLE": "dim"}


def _blueprint_file(config: Path | None) -> Path | None:
    """The file the blueprint was read from, as ``load_blueprint`` picks it (None: defaults only)."""
    from summit.blueprint.model import DEFAULT_FILE

    file = Path(config or os.environ.get("SUMMIT_CONFIG") or DEFAULT_FILE)
    return file if file.is_file() else None


@config_app.command("check")
def check(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    rules: Annotated[Optional[list[str]], typer.Option("--rule", help="Only this rule; repeatable (default: every rule).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Evaluate the compliance rules over the blueprint and, when the stage runs, over its processes
    and sockets; one line per rule and resource, with what to fix.

    Exits 0 when every result is COMPLIANT or NOT_APPLICABLE, 1 when one is NON_COMPLIANT,
    2 when the blueprint cannot be read. The rules: docs/config-rules.md.
    """
    from summit.ops.config_rules import RULES, Context, evaluate

    for name in rules or []:
        if name not in RULES:
            raise typer.BadParameter(f"{name!r} is not a rule; the rules are: {', '.join(RULES)}", param_hint="--rule")
    blueprint = blueprint_or_exit(config, data_dir=data_dir)
    report = evaluate(Context.for_blueprint(blueprint, blueprint_file=_blueprint_file(config)), rules)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
        raise typer.Exit(0 if report.ok else 1)
    counts = report.counts()
    table = Table(title=f"summit config check (stage {blueprint.stage})", show_lines=False)
    for name in ("rule", "resource", "compliance"):
        table.add_column(name, no_wrap=True)
    table.add_column("reason")
    for r in report.results:
        colour = _COLOUR[r.compliance]
        table.add_row(escape(r.rule), escape(r.resource), f"[{colour}]{r.compliance}[/{colour}]", escape(r.reason))
    console.print(table)
    console.print(", ".join(f"{n} {c.lower()}" for c, n in counts.items()), highlight=False)
    raise typer.Exit(0 if report.ok else 1)
