"""``summit status``: is the stage running, where, and is each of its processes healthy?
``summit logs``: what a process of the stage printed."""

from __future__ import annotations

import json
import ssl
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.table import Table

from summit.cli.main import ConfigOpt, DataDirOpt, app, blueprint_or_exit, console
from summit.engines import Layout, probes, state
from summit.engines.process import alive, tail


def _healthy(record: dict, data_dir: Path) -> tuple[bool, str]:
    verify: bool | ssl.SSLContext = True
    ca = data_dir / "certs" / "ca.pem"
    if record["url"].startswith("https://") and ca.is_file():  # TLS at the front door: the stage's own CA signed it
        verify = ssl.create_default_context(cafile=str(ca))
    try:
        response = httpx.get(record["url"] + "/healthz", timeout=3, verify=verify)
    except httpx.HTTPError as error:
        return False, f"no answer: {error}"
    if response.status_code != 200:
        return False, f"HTTP {response.status_code}"
    return True, "ok"


def _process_health(process: dict, app_healthy: bool) -> bool:
    if process.get("kind") == "app" and process.get("pid") == process.get("supervisor"):
        return app_healthy  # stage 1: the app is this process, on the public address
    running = process.get("state") == "running" and alive(process.get("pid"))
    if process.get("kind") == "app":
        return running and probes.app_healthy(process["address"])  # its own /healthz, not the load balancer's
    if process.get("kind") == "waf":
        return running and probes.waf_healthy(process["address"])  # the WAF's own health path
    return running


@app.command()
def status(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Show whether the stage in the data directory is running, and each process's health.

    Exits 0 when it runs and every process is healthy, 1 otherwise.
    """
    blueprint = blueprint_or_exit(config, data_dir=data_dir)
    record = state.running(blueprint.data_dir)
    report: dict = {"running": False, "healthy": False, "data_dir": str(blueprint.data_dir.resolve()), "stage": blueprint.stage, "processes": []}
    if record:
        report.update(running=True, pid=record["pid"], url=record["url"], stage=record["stage"], ports=record.get("ports", {}),
                      ready=record.get("ready", False))
        report["uptime_seconds"] = round(time.time() - record.get("started_at", time.time()))
        app_healthy, report["health"] = _healthy(record, blueprint.data_dir.resolve())
        now = time.time()
        layout = Layout(blueprint.data_dir.resolve())
        for process in record.get("processes", []):
            healthy = _process_health({**process, "supervisor": record["pid"]}, app_healthy)
            report["processes"].append({
                "name": process["name"], "kind": process.get("kind"), "role": process.get("role"), "address": process.get("address"),
                "pid": process.get("pid"), "healthy": healthy, "state": process.get("state"),
                "uptime_seconds": round(now - process["started_at"]) if process.get("started_at") else None,
                "restarts": process.get("restarts", 0), "error": process.get("error") or None,
                **({"details": extra} if healthy and (extra := probes.details(process, layout)) else {}),
            })
        report["healthy"] = app_healthy and all(p["healthy"] for p in report["processes"])
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        _print(report)
    raise typer.Exit(0 if report["running"] and report["healthy"] else 1)


def _print(report: dict) -> None:
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
    if report["processes"]:
        processes = Table(title="processes")
        for column in ("name", "kind", "role", "address", "pid", "health", "uptime", "restarts", "details"):
            processes.add_column(column)
        for p in report["processes"]:
            health = "[green]healthy[/green]" if p["healthy"] else f"[red]{p['state']}{': ' + p['error'] if p['error'] else ''}[/red]"
            uptime = f"{p['uptime_seconds']} s" if p["uptime_seconds"] is not None else "-"
            processes.add_row(p["name"], p["kind"] or "", p["role"] or "", p["address"] or "", str(p["pid"] or "-"), health, uptime,
                              str(p["restarts"]), _details(p.get("details", {})))
        console.print(processes)


def _details(details: dict) -> str:
    """One line: HAProxy's servers and their states, or a cache tier's hit ratio."""
    if "servers" in details:
        return ", ".join(f"{name.split('/')[-1]} {state}" for name, state in details["servers"].items())
    if details.get("hit_ratio") is not None:
        return f"hit ratio {details['hit_ratio']:.0%} ({details['hits']:,} hits, {details['misses']:,} misses)"
    if "hits" in details:
        return "no lookups yet"
    if "events" in details:
        return f"{details['events']:,} events (blocked or scored requests)"
    return ""


@app.command()
def logs(
    name: Annotated[str, typer.Argument(help="The process: app, postgres-primary, pgbouncer-primary, ... (see summit status).")],
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    lines: Annotated[int, typer.Option("--lines", "-n", help="How many of the last lines to print.")] = 50,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing what it writes (Ctrl-C stops).")] = False,
) -> None:
    """Print the end of a stage process's log (its output, kept in <data_dir>/logs/)."""
    blueprint = blueprint_or_exit(config, data_dir=data_dir)
    folder = blueprint.data_dir.resolve() / "logs"
    path = folder / f"{name}.log"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.log")) if folder.is_dir() else []
        console.print(f"[red]error:[/red] no log for {name!r} in {folder}" + (f"; the logs are: {', '.join(known)}" if known else " (nothing has run here yet)"))
        raise typer.Exit(2)
    typer.echo(tail(path, lines))
    if follow:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            try:
                while True:
                    chunk = handle.read()
                    if chunk:
                        typer.echo(chunk.decode(errors="replace"), nl=False)
                    else:
                        time.sleep(0.3)
            except KeyboardInterrupt:
                pass


@app.command()
def restart(
    name: Annotated[str, typer.Argument(help="The process to restart: web-1, postgres-replica-1, ... (see summit status).")],
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    drain_timeout: Annotated[float, typer.Option(help="Seconds to wait for an app server's requests in flight to finish.")] = 30.0,
) -> None:
    """Restart one process of the running stage. An app server behind HAProxy (or behind the WAF
    tier), and a WAF process, is drained first (no new request goes to it; those in flight finish),
    stopped, started again by the supervisor, and put back into rotation once it answers: no
    request fails for it."""
    from summit.engines.haproxy import runtime, runtime_socket, sessions

    blueprint = blueprint_or_exit(config, data_dir=data_dir)
    data = blueprint.data_dir.resolve()
    record = state.running(data)
    if record is None:
        console.print(f"[red]error:[/red] nothing is running in {data}")
        raise typer.Exit(1)
    processes = {p["name"]: p for p in record.get("processes", [])}
    if name not in processes or not processes[name].get("pid") or processes[name]["pid"] == record["pid"]:
        console.print(f"[red]error:[/red] no process {name!r} of its own in this stage; the processes are: {', '.join(processes)}")
        raise typer.Exit(2)
    layout = Layout(data)
    balancer = next((p for p in processes.values() if p.get("kind") == "haproxy"), None)
    behind = balancer is not None and processes[name].get("kind") == "app"
    # with the WAF tier on (engines.waf), HAProxy sends the dynamic path to the WAF processes: they drain it
    wafs = [p for p in processes.values() if p.get("kind") == "waf" and p.get("pid")] if behind else []
    # a WAF process is one of HAProxy's servers: drained there like an app server without the WAF tier
    waf_behind = balancer is not None and processes[name].get("kind") == "waf"
    socket_path = (runtime_socket(layout, json.loads((data / "engines" / "ports.json").read_text())["haproxy-stats"])
                   if behind or waf_behind else None)
    front = socket_path
    if wafs:
        _waf_tier(layout, wafs, name, down=True, timeout=drain_timeout, front=front)
        socket_path = None  # the app servers are not HAProxy's servers: the WAF processes are
        console.print(f"summit: {name} drained: the WAF tier sends it no new requests")
    if socket_path is not None:
        runtime(socket_path, f"set server web/{name} state drain")
        console.print(f"summit: {name} drained: no new requests go to it")
        deadline = time.monotonic() + drain_timeout
        while sessions(socket_path, "web", name) and time.monotonic() < deadline:
            time.sleep(0.1)
    old_pid = processes[name]["pid"]
    import os
    import signal

    stop = {"app": signal.SIGINT, "postgres": signal.SIGINT, "waf": signal.SIGQUIT}  # SIGQUIT: nginx finishes what it has
    os.kill(old_pid, stop.get(processes[name].get("kind"), signal.SIGTERM))
    console.print(f"summit: {name} (pid {old_pid}) stopping; the supervisor starts it again")
    deadline = time.monotonic() + 120
    while True:
        current = {p["name"]: p for p in (state.read(data) or {}).get("processes", [])}.get(name, {})
        if current.get("pid") not in (None, old_pid) and current.get("state") == "running":
            if waf_behind and probes.waf_healthy(current["address"]):
                break
            if not waf_behind and (not behind or probes.app_healthy(current["address"])):
                break
        if time.monotonic() > deadline:
            console.print(f"[red]error:[/red] {name} did not come back within 120 s: see `summit logs {name}`")
            raise typer.Exit(1)
        time.sleep(0.2)
    if wafs:
        _waf_tier(layout, wafs, name, down=False, timeout=drain_timeout, front=front)
        console.print(f"summit: {name} back in rotation")
    if socket_path is not None:
        runtime(socket_path, f"set server web/{name} state ready")
        console.print(f"summit: {name} back in rotation")
    console.print(f"summit: {name} restarted (pid {current['pid']})")


def _waf_tier(layout: Layout, wafs: list[dict], app_server: str, *, down: bool, timeout: float, front: Path | None) -> None:
    """Mark an app server down (or up) in every WAF process, each reloaded: the old workers finish
    their requests in flight (up to ``timeout`` s). One WAF process at a time, drained in HAProxy
    (``front``, its runtime socket) around its reload: a reloading nginx closes the idle keep-alive
    connections HAProxy holds to it, and a request HAProxy had just sent on one would be lost (a
    POST is not sent twice; HAProxy closes that client's connection)."""
    from summit.engines.haproxy import runtime, sessions
    from summit.engines.waf import set_down

    for waf in wafs:
        if front is not None:
            runtime(front, f"set server web/{waf['name']} state drain")
            deadline = time.monotonic() + timeout
            while sessions(front, "web", waf["name"]) and time.monotonic() < deadline:
                time.sleep(0.05)
        try:
            if not set_down(layout, waf["name"], app_server, down, waf["pid"], timeout):
                console.print(f"[yellow]warning:[/yellow] {waf['name']}'s old workers still had requests after {timeout:g} s")
        finally:
            if front is not None:
                runtime(front, f"set server web/{waf['name']} state ready")
