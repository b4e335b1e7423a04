"""``summit engines``: which engines are installed, which the stage needs, and installing the
missing ones from Debian's packages (before ``summit up --stage 1+`` needs them)."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from summit.cli.main import ConfigOpt, StageOpt, app, blueprint_or_exit, console

engines_app = typer.Typer(help="The engines a stage runs (PostgreSQL, PgBouncer...): check and install them.", no_args_is_help=True)
app.add_typer(engines_app, name="engines")

out = Console(highlight=False)


def _stage_needs(config, stage):  # noqa: ANN001, ANN202
    from summit.engines import install

    blueprint = blueprint_or_exit(config, stage=stage)
    return blueprint.stage, install.needed(blueprint)


@engines_app.command("check")
def check(
    stage: StageOpt = None,
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List every known engine: installed or not, its version, and whether the stage needs it.

    Exit code 0 when everything the stage needs is installed, 1 otherwise.
    """
    from summit.engines import install

    stage_name, needs = _stage_needs(config, stage)
    statuses = install.check()
    if as_json:
        typer.echo(json.dumps([{**s.as_dict(), "needed": s.name in needs} for s in statuses], indent=2))
    else:
        table = Table(title=f"summit engines: stage {escape(stage_name)}")
        for column in ("engine", "status", "version", "path", "packages", f"stage {stage_name}"):
            table.add_column(escape(column), overflow="fold")
        for s in statuses:
            state = ("[green]present[/green]" if s.present else "[red]missing[/red]" if not s.path
                     else f"[yellow]partial[/yellow], no {escape(' '.join(s.missing))}")
            table.add_row(s.name, state, s.version or "-", escape(s.path or "-"), escape(" ".join(s.packages) or f"pip: summit[{s.pip}]"),
                          "[bold]needed[/bold]" if s.name in needs else "-")
        out.print(table)
    absent = [s.name for s in statuses if s.name in needs and not s.present]
    if absent:
        if not as_json:
            console.print(f"stage {escape(stage_name)} needs {', '.join(absent)}: run `summit engines install`")
        raise typer.Exit(1)


@engines_app.command("install")
def install_(
    names: Annotated[Optional[list[str]], typer.Argument(metavar="[ENGINE]...", help="Engines to install (default: the stage's).")] = None,
    stage: StageOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Install what the stage needs (or the engines named) with apt; present ones are left alone."""
    from summit.engines import EngineError, install

    if names and stage:
        console.print("[red]error:[/red] give engine names or --stage, not both")
        raise typer.Exit(2)
    if names:
        bad = install.unknown(names)
        if bad:
            console.print(f"[red]error:[/red] unknown engine {', '.join(map(repr, bad))}; "
                          f"the engines are: {', '.join(install.names())}")
            raise typer.Exit(2)
        wanted = list(names)
    else:
        stage_name, wanted = _stage_needs(config, stage)
        if not wanted:
            out.print(f"nothing to install: stage {stage_name} runs no engine")
            return
    try:
        done = install.install(wanted, on_progress=lambda text: console.print(f"summit: {escape(text)}"))
    except EngineError as error:
        console.print(f"[red]error:[/red] {escape(str(error))}")
        raise typer.Exit(1) from None
    present = ", ".join(f"{s.name} {s.version or '?'}" for s in install.check(wanted))
    if done:
        out.print(f"installed {', '.join(done)}: {present}")
    else:
        out.print(f"nothing to install: {present} present")
