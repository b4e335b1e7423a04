"""``summit up``: start a stage and serve the app until Ctrl-C (or in the background with
``--detach``); ``summit down`` stops it; ``summit serve`` is the app server alone (what the
control plane runs as the stage's ``app`` process)."""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.panel import Panel

from summit.cli.main import ConfigOpt, DataDirOpt, StageOpt, app, blueprint_or_exit, console
from summit.engines import state
from summit.engines.process import alive, signal_group, tail


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
        if blueprint.engines.any():
            blueprint.app.find_factory()  # the app runs in processes of its own: only check it is there
        else:
            blueprint.app.load_factory()
    except BlueprintError as error:
        console.print(f"[red]error:[/red] {error} (the blueprint's \\[app] section, or --app)")
        raise typer.Exit(2) from None


def _url(blueprint) -> str:  # noqa: ANN001
    return blueprint.public_url  # https://HOST:HTTPS_PORT behind TLS (engines.haproxy.tls)


@app.command()
def up(
    config: ConfigOpt = None,
    stage: StageOpt = None,
    host: Annotated[Optional[str], typer.Option(help="Address to listen on (default 127.0.0.1).")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port to listen on (default 8000).")] = None,
    https_port: Annotated[Optional[int], typer.Option(help="Port for HTTPS when the front door speaks TLS (engines.haproxy.https_port, default 8443; stage 1k and later).")] = None,
    data_dir: DataDirOpt = None,
    workers: Annotated[Optional[int], typer.Option(help="Web worker processes (default 1).")] = None,
    target: Annotated[Optional[str], typer.Option("--app", help="ASGI app factory to serve, 'module:function' (default: the blueprint's app.factory).")] = None,
    detach: Annotated[bool, typer.Option("--detach", help="Start in the background and return once the stage answers; `summit down` stops it.")] = False,
) -> None:
    """Start a stage and serve the app on http://HOST:PORT. Ctrl-C stops it cleanly.

    Stage 1 runs everything in this one process: the app, SQLite, files on disk, the cache and the
    queue worker. Later stages (--stage 1+, 10k) also run their engines (PostgreSQL, PgBouncer, ...)
    as supervised processes, started in order and restarted if they die. All data lives in the
    data directory.
    """
    blueprint = blueprint_or_exit(
        config, stage=stage, data_dir=data_dir,
        **{"server.host": host, "server.port": port, "server.workers": workers, "app.factory": target},
        **({"engines": {"haproxy": {"https_port": https_port}}} if https_port is not None else {}),
    )
    _check_factory(blueprint)
    blueprint = blueprint.model_copy(update={"data_dir": blueprint.data_dir.resolve()})
    running = state.running(blueprint.data_dir)
    if running:
        console.print(f"[yellow]stage {running.get('stage')} is already running[/yellow] in {blueprint.data_dir} "
                      f"(pid {running['pid']}, {running.get('url')}): see `summit status`, stop it with `summit down`")
        raise typer.Exit(1)
    server = blueprint.server
    _check_port_free(server.host, server.port)
    if blueprint.tls:
        _check_port_free(server.host, blueprint.engines.haproxy.https_port)
    blueprint.data_dir.mkdir(parents=True, exist_ok=True)
    if config is not None:
        os.environ["SUMMIT_CONFIG"] = str(Path(config).resolve())
    if detach:
        _detach(blueprint)
        return
    url = _url(blueprint)
    console.print(
        Panel.fit(
            f"[bold]{blueprint.app.factory}[/bold] is starting at [link={url}]{url}[/link]\n"
            f"stage {blueprint.stage}: {blueprint.description}\n"
            f"data: {blueprint.data_dir}\n"
            f"API docs: {url}/api/v1/docs   health: {url}/healthz\n"
            + (f"TLS: the stage's own CA signs it: `summit certs export-ca ca.pem`, then `curl --cacert ca.pem {url}/healthz`\n"
               if blueprint.tls else "")
            + "Ctrl-C stops it.",
            title="summit up",
        )
    )
    if blueprint.engines.any():
        _supervise(blueprint, url)
        return
    state.write(blueprint, url, ready=True, processes=[{
        "name": "app", "kind": "app", "role": "web (in this process: app, SQLite, files, cache, queue worker)",
        "address": f"{server.host}:{server.port}", "pid": os.getpid(), "state": "running", "started_at": time.time(),
        "restarts": 0, "error": "",
    }])
    try:
        _serve(blueprint)
    finally:
        state.clear(blueprint.data_dir)
        console.print("summit: stopped")


def _serve(blueprint) -> None:  # noqa: ANN001
    """granian serving the blueprint's app factory, in the foreground."""
    from granian import Granian
    from granian.constants import Interfaces

    server = blueprint.server
    # worker processes build the app from the environment: hand them the same blueprint
    os.environ["SUMMIT_STAGE"] = blueprint.stage
    os.environ["SUMMIT_DATA_DIR"] = str(blueprint.data_dir)
    os.environ["SUMMIT_SERVER__HOST"] = server.host
    os.environ["SUMMIT_SERVER__PORT"] = str(server.port)
    os.environ["SUMMIT_APP__FACTORY"] = blueprint.app.factory
    Granian(
        blueprint.app.factory,
        factory=True,
        address=server.host,
        port=server.port,
        interface=Interfaces.ASGI,
        workers=server.workers,
        log_access=False,
    ).serve()


@app.command(hidden=True)
def serve(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Serve the blueprint's app alone (the stage's `app` process, run by the control plane)."""
    blueprint = blueprint_or_exit(config, data_dir=data_dir)
    _check_factory(blueprint)
    _serve(blueprint.model_copy(update={"data_dir": blueprint.data_dir.resolve()}))


def _supervise(blueprint, url: str) -> None:  # noqa: ANN001
    """Run the stage's engines and the app under the supervisor until SIGINT/SIGTERM."""
    from summit.engines import EngineError, Supervisor, install, plan, publish, unpublish

    missing = [status for status in install.check(install.needed(blueprint)) if not status.present]
    if missing:
        names = ", ".join(status.name for status in missing)
        console.print(f"[red]error:[/red] stage {blueprint.stage} runs {names}, not installed here: "
                      f"install with `summit engines install --stage {blueprint.stage}` (Debian packages; as root)")
        raise typer.Exit(1)
    try:
        stage = plan(blueprint)
        if _app_login(stage):
            stage = plan(blueprint)  # again: the app's URL names the delivered login now
        publish(stage)
    except EngineError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1) from None
    record = state.write(blueprint, url, ports=state.port_urls(blueprint))

    def changed(processes: list[dict]) -> None:
        record["processes"] = processes
        state.save(blueprint.data_dir, record)

    def ready() -> None:
        record["ready"] = True
        state.save(blueprint.data_dir, record)
        console.print(f"[green]stage {blueprint.stage} is up[/green] at {url} ({len(stage.engines)} processes; "
                      "`summit status` shows them, Ctrl-C or `summit down` stops them)")

    supervisor = Supervisor(stage.layout, stage.engines, on_event=lambda text: console.print(f"summit: {text}"), on_change=changed)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await supervisor.run(stop, on_ready=ready)

    try:
        asyncio.run(main())
    except EngineError as error:
        console.print(f"[red]error:[/red] the stage could not start: {error}")
        raise typer.Exit(1) from None
    finally:
        unpublish(stage.layout)
        state.clear(blueprint.data_dir)
        console.print("summit: stopped")


def _app_login(stage) -> bool:  # noqa: ANN001
    """The app's PostgreSQL login as the rotated secret db/app (made the first time; summit.ops.dblogin)."""
    from summit.ops.dblogin import ensure
    from summit.security.secrets import SecretsError

    try:
        return ensure(stage)
    except SecretsError as error:
        console.print(f"[red]error:[/red] the app's database login (secret db/app): {error}")
        raise typer.Exit(1) from None


def _detach(blueprint) -> None:  # noqa: ANN001
    """Run this same `summit up` in the background and return once the stage is ready."""
    log = blueprint.data_dir / "logs" / "summit-up.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "summit", "up", "--stage", blueprint.stage, "--data-dir", str(blueprint.data_dir),
            "--host", blueprint.server.host, "--port", str(blueprint.server.port), "--workers", str(blueprint.server.workers),
            "--app", blueprint.app.factory, "--https-port", str(blueprint.engines.haproxy.https_port)]
    with open(log, "ab") as out:
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,  # noqa: S603
                                 start_new_session=True, env={**os.environ, "COLUMNS": "120"})
    console.print(f"summit: starting stage {blueprint.stage} in the background (pid {child.pid}; log {log})")
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if child.poll() is not None:
            console.print(f"[red]error:[/red] the stage stopped while starting (exit {child.returncode}); the end of {log}:\n{tail(log, 30)}")
            raise typer.Exit(1)
        record = state.read(blueprint.data_dir)
        if record and record.get("pid") == child.pid and record.get("ready"):
            if not blueprint.engines.any() and not _answers(record["url"]):
                time.sleep(0.2)
                continue
            console.print(f"[green]stage {blueprint.stage} is up[/green] at {record['url']} (pid {child.pid}): "
                          "`summit status` shows it, `summit down` stops it")
            return
        time.sleep(0.2)
    console.print(f"[red]error:[/red] the stage did not come up within 600 s; see {log}")
    raise typer.Exit(1)


def _answers(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url + "/healthz", timeout=2) as response:  # noqa: S310 (loopback)
            return response.status == 200
    except OSError:
        return False


@app.command()
def down(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for a clean stop before killing what is left.")] = 90.0,
) -> None:
    """Stop the stage running in the data directory (its engines and the app)."""
    blueprint = blueprint_or_exit(config, data_dir=data_dir)
    data = blueprint.data_dir.resolve()
    record = state.read(data)
    if record is None:
        console.print(f"nothing is running in {data}")
        return
    pid = int(record.get("pid") or 0)
    if alive(pid):
        console.print(f"summit: stopping stage {record.get('stage')} (pid {pid})")
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if alive(pid):
            console.print(f"[yellow]the supervisor did not stop within {timeout:g} s: killing it and its processes[/yellow]")
            os.kill(pid, signal.SIGKILL)
    left = [p for p in record.get("processes", []) if p.get("pid") and p["pid"] != pid and alive(p["pid"])]
    for process in left:  # a supervisor that died without stopping its engines left these
        console.print(f"summit: killing {process['name']} (pid {process['pid']}), left behind")
        signal_group(process["pid"], signal.SIGKILL)
    state.path(data).unlink(missing_ok=True)
    (data / "run" / "endpoints.json").unlink(missing_ok=True)
    console.print("summit: stopped")
