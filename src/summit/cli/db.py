"""``summit db``: the application database's migrations."""

from __future__ import annotations

import typer

from summit.cli.main import ConfigOpt, DataDirOpt, app, blueprint_or_exit, console

db_app = typer.Typer(help="Database migrations (Alembic).", no_args_is_help=True)
app.add_typer(db_app, name="db")


def _sync_url(blueprint) -> str:  # noqa: ANN001
    from summit.wiring import open_port

    return open_port("sql", blueprint.port_url("sql")).sync_url


@db_app.command("upgrade")
def upgrade(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Apply every pending migration, the platform's then the app's (``summit up`` does this on start too)."""
    from photos import migrations
    from photos.identity import migrate

    blueprint = blueprint_or_exit(config, data_dir=data_dir)
    blueprint.data_dir.mkdir(parents=True, exist_ok=True)
    url = _sync_url(blueprint)
    migrate(url)
    console.print(f"database at revision {migrations.current(url)}")


@db_app.command("current")
def current(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Print the database's migration revision."""
    from photos import migrations

    blueprint = blueprint_or_exit(config, data_dir=data_dir)
    typer.echo(migrations.current(_sync_url(blueprint)) or "(empty database)")
