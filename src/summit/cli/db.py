"""``summit db``: the database's migrations, the platform's histories then the app's (the one the
blueprint names in ``app.migrations``)."""

from __future__ import annotations

import typer

from summit.cli.main import ConfigOpt, DataDirOpt, app, blueprint_or_exit, console

db_app = typer.Typer(help="Database migrations (Alembic).", no_args_is_help=True)
app.add_typer(db_app, name="db")


def _sync_url(blueprint) -> str:  # noqa: ANN001
    from summit.wiring import open_port

    return open_port("sql", blueprint.port_url("sql")).sync_url


def _or_exit(action):  # noqa: ANN001, ANN202
    """Run ``action``; a wrong ``[app]`` value is an error that names the key (exit 2)."""
    from summit.blueprint import BlueprintError

    try:
        return action()
    except BlueprintError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from None


@db_app.command("upgrade")
def upgrade(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Apply every pending migration, the platform's then the app's (``summit up`` does this on start too)."""
    from summit import migrate

    blueprint = blueprint_or_exit(config, data_dir=data_dir)
    blueprint.data_dir.mkdir(parents=True, exist_ok=True)
    url = _sync_url(blueprint)
    _or_exit(lambda: migrate.upgrade_all(blueprint, url))
    for history, revision in migrate.revisions(blueprint, url):
        console.print(f"{history.package} at revision {revision}")


@db_app.command("current")
def current(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Print the database's revision of each history, the platform's then the app's."""
    from summit import migrate

    blueprint = blueprint_or_exit(config, data_dir=data_dir)
    found = _or_exit(lambda: migrate.revisions(blueprint, _sync_url(blueprint)))
    for history, revision in found:
        head = history.head()
        state = "(not applied)" if revision is None else "(head)" if revision == head else f"(head is {head}: run summit db upgrade)"
        typer.echo(f"{history.package}: {revision or '-'} {state}")
