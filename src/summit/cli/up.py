"""``summit up``: start a stage and serve the app until Ctrl-C."""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.panel import Panel

from summit.cli import state
from summit.cli.main import ConfigOpt, DataDirOpt, StageOpt, app, blueprint_or_exit, console


def _check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                console.print(f"[red]error:[/red] {host}:{port} is already in use: stop what runs there, or pass --port")
            else:
                console.print(f"[red]error:[/red] cannot listen on {host}:{port}: {error.strerror}")
            raise typer.Exit(1) from None


def _check_factory(blueprint) -> None:  # noqa: ANN001
    """Fail before listening if the app cannot be imported, with the key to fix (or --app)."""
    from summit.blueprint import BlueprintError

    try:
        blueprint.app.load_factory()
    except BlueprintError as error:
        console.print(f"[red]error:[/red] {error} (the blueprint's \\[app] section, or --app)")
        raise typer.Exit(2) from None


@app.command()
def up(
    config: ConfigOpt = None,
    stage: StageOpt = None,
    host: Annotated[Optional[str], typer.Option(help="Address to listen on (default 127.0.0.1).")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port to listen on (default 8000).")] = None,
    data_dir: DataDirOpt = None,
    workers: Annotated[Optional[int], typer.Option(help="Web worker processes (default 1).")] = None,
    target: Annotated[Optional[str], typer.Option("--app", help="ASGI app factory to serve, 'module:function' (default: the blueprint's app.factory).")] = None,
) -> None:
    """Start a stage and serve the app on http://HOST:PORT. Ctrl-C stops it cleanly.

    Stage 1 runs everything in this one process: the app, SQLite, files on disk, the cache and the
    queue worker; all data lives in the data directory.
    """
    blueprint = blueprint_or_exit(
        config, stage=stage, data_dir=data_dir,
        **{"server.host": host, "server.port": port, "server.workers": workers, "app.factory": target},
    )
    _check_factory(blueprint)
    target = blueprint.app.factory
    blueprint = blueprint.model_copy(update={"data_dir": blueprint.data_dir.resolve()})
    server = blueprint.server
    _check_port_free(server.host, server.port)
    blueprint.data_dir.mkdir(parents=True, exist_ok=True)
    # worker processes build the app from the environment: hand them the same blueprint
    os.environ["SUMMIT_STAGE"] = blueprint.stage
    os.environ["SUMMIT_DATA_DIR"] = str(blueprint.data_dir.resolve())
    os.environ["SUMMIT_SERVER__HOST"] = server.host
    os.environ["SUMMIT_SERVER__PORT"] = str(server.port)
    os.environ["SUMMIT_APP__FACTORY"] = target
    if config is not None:
        os.environ["SUMMIT_CONFIG"] = str(Path(config).resolve())
    url = f"http://{server.host if ':' not in server.host else f'[{server.host}]'}:{server.port}"
    console.print(
        Panel.fit(
            f"[bold]{target}[/bold] is starting at [link={url}]{url}[/link]\n"
            f"stage {blueprint.stage}: {blueprint.description}\n"
            f"data: {blueprint.data_dir.resolve()}\n"
            f"API docs: {url}/api/v1/docs   health: {url}/healthz\n"
            "Ctrl-C stops it.",
            title="summit up",
        )
    )
    from granian import Granian
    from granian.constants import Interfaces

    state.write(blueprint, url)
    try:
        Granian(
            target,
            factory=True,
            address=server.host,
            port=server.port,
            interface=Interfaces.ASGI,
            workers=server.workers,
            log_access=False,
        ).serve()
    finally:
        state.clear(blueprint)
        console.print("summit: stopped")
