"""``summit status``: is the stage running, where, and is it healthy?"""

from __future__ import annotations

import json
import time
from typing import Annotated

import httpx
import typer
from rich.table import Table

from summit.cli import state
from summit.cli.main import ConfigOpt, DataDirOpt, app, blueprint_or_exit, console


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@app.command()
def status(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Show whether the stage in the data directory is running, and its health.

    Exits 0 when it runs and answers /healthz, 1 otherwise.
    """
    blueprint = blueprint_or_exit(config, data_dir=data_dir)
    record = state.read(blueprint.data_dir)
    report = {"running": False, "healthy": False, "data_dir": str(blueprint.data_dir.resolve()), "stage": blueprint.stage}
    if record and _alive(int(record.get("pid", 0))):
        report.update(running=True, pid=record["pid"], url=record["url"], stage=record["stage"], ports=record.get("ports", {}))
        report["uptime_seconds"] = round(time.time() - record.get("started_at", time.time()))
        try:
            response = httpx.get(record["url"] + "/healthz", timeout=3)
            report["healthy"] = response.status_code == 200
            report["health"] = response.json() if report["healthy"] else f"HTTP {response.status_code}"
        except (httpx.HTTPError, ValueError) as error:
            report["health"] = f"no answer: {error}"
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        table = Table(show_header=False, title="summit status")
        table.add_row("state", "[green]running[/green]" if report["running"] else "[yellow]not running[/yellow]")
        for key in ("stage", "url", "pid", "uptime_seconds", "data_dir"):
            if key in report:
                table.add_row(key, str(report[key]))
        if report["running"]:
            table.add_row("health", "[green]ok[/green]" if report["healthy"] else f"[red]{report.get('health')}[/red]")
            for name, url in report.get("ports", {}).items():
                table.add_row(f"port {name}", url)
        else:
            table.add_row("hint", "start it with: summit up")
        console.print(table)
    raise typer.Exit(0 if report["running"] and report["healthy"] else 1)
