"""``summit``: run a stage, look at it, manage it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from summit import __version__
from summit.blueprint import BlueprintError, load_blueprint

app = typer.Typer(
    name="summit",
    help="Grow one web service from its first user to ten million, stage by stage.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)
console = Console(stderr=True)

ConfigOpt = Annotated[Optional[Path], typer.Option("--config", "-c", help="Blueprint file (default: ./summit.toml if present).")]
DataDirOpt = Annotated[Optional[Path], typer.Option("--data-dir", "-d", help="Where the stage keeps its data (default: ./.summit).")]
StageOpt = Annotated[Optional[str], typer.Option("--stage", "-s", help="Stage preset to run (default: the blueprint's, or 1).")]


def blueprint_or_exit(config: Path | None, **overrides):  # noqa: ANN003, ANN201
    """Load the blueprint, or print what is wrong with it and exit 2."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    nested: dict = {}
    for key, value in clean.items():
        section, _, name = key.partition(".")
        if name:
            nested.setdefault(section, {})[name] = value
        else:
            nested[key] = value
    try:
        return load_blueprint(config, overrides=nested)
    except BlueprintError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from None


@app.command()
def version() -> None:
    """Print summit's version."""
    typer.echo(__version__)


def main() -> None:
    from summit.cli import audit, bench, data, db, engines, iam, identity, mail, plan, search, status, up  # noqa: F401  (register their commands)
    from summit.cli import kms, secrets  # noqa: F401  (register their commands)
    from summit.cli import guard  # noqa: F401  (registers its commands)
    from summit.cli import certs  # noqa: F401  (register its commands)
    from summit.cli import shield  # noqa: F401  (registers its commands)
    from summit.cli import config_check  # noqa: F401  (registers its commands)

    app()


if __name__ == "__main__":  # python -m summit.cli.main
    main()
