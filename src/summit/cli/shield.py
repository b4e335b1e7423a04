"""``summit shield``: who the front door rate-limits now (like AWS Shield's and WAF's rate-based
rules): the sources in HAProxy's stick table with their rates, refusals and state, read through its
runtime API, and the sources blocked outright (``summit.security.blocks``: by ``summit guard``'s
automatic blocking or by ``summit shield block``); ``summit shield unblock`` lifts a block and
``summit shield clear`` forgets a source's counters (and lifts its block)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from summit.cli.main import ConfigOpt, DataDirOpt, app, blueprint_or_exit, console

shield_app = typer.Typer(help="Rate limits at the front door (like AWS Shield): who is counted and limited now.",
                         invoke_without_command=True)
app.add_typer(shield_app, name="shield")
out = Console(highlight=False)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _edge(config: Path | None, data_dir: Path | None, blueprint: Any = None) -> tuple[Any, Any, Path]:
    """(blueprint, the edge's Shield, HAProxy's runtime socket), or exit 1 saying why there is none."""
    from summit.engines import Layout
    from summit.engines.haproxy import runtime_socket
    from summit.engines.shield import Shield

    blueprint = blueprint or blueprint_or_exit(config, data_dir=data_dir)
    if not blueprint.engines.haproxy.enabled:
        console.print(f"[yellow]stage {blueprint.stage} has no front door[/yellow] (HAProxy runs from stage 1k): only the app's "
                      "own limits apply there (docs/shield.md)")
        raise typer.Exit(1)
    shield = Shield.for_blueprint(blueprint)
    if shield is None:
        console.print("[yellow]the edge's limits are off[/yellow] (shield.edge.enabled = false)")
        raise typer.Exit(1)
    layout = Layout(blueprint.data_dir.resolve())
    try:
        port = json.loads((layout.data_dir / "engines" / "ports.json").read_text())["haproxy-stats"]
    except (OSError, ValueError, KeyError):
        port = None
    path = runtime_socket(layout, int(port)) if port else None
    if path is None or not path.exists():
        console.print(f"[red]error:[/red] HAProxy is not running in {layout.data_dir}: start the stage with `summit up --stage {blueprint.stage}`")
        raise typer.Exit(1)
    return blueprint, shield, path


def _read(path: Path) -> list[dict[str, Any]]:
    from summit.engines.shield import table

    try:
        return table(path)
    except OSError as error:
        console.print(f"[red]error:[/red] HAProxy's runtime API ({path}) does not answer: {error}")
        raise typer.Exit(1) from None


@shield_app.callback()
def shield(ctx: typer.Context, config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Rate limits at the front door. Without a command: `summit shield show`."""
    if ctx.invoked_subcommand is None:
        show(config=config, data_dir=data_dir, top=20, limited=False, as_json=False)


@shield_app.command("show")
def show(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    top: Annotated[int, typer.Option("--top", "-n", min=1, help="How many sources to list, busiest first.")] = 20,
    limited: Annotated[bool, typer.Option("--limited", help="Only the sources over a limit now, or refused within the window.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List the sources the front door counts, busiest first: requests and new connections within
    the window, open connections, refusals (429s and drops), and the limits each is over now.

    Read from HAProxy's stick table through its runtime API (`show table public`). Exempt sources
    (shield.exempt) are not counted, so never listed. The sources blocked now are listed first (at
    every stage: where there is no front door, the app refuses them)."""
    blueprint = blueprint_or_exit(config, data_dir=data_dir)
    blocks = [b.as_dict() for b in _blocklist(blueprint).active().values()]
    if not blueprint.engines.haproxy.enabled:
        if as_json:
            typer.echo(json.dumps({"limits": None, "exempt": list(blueprint.shield.exempt), "tracked": 0, "limited": [],
                                   "sources": [], "blocked": blocks}, indent=2))
            return
        _print_blocks(blocks)
        console.print(f"[yellow]stage {blueprint.stage} has no front door[/yellow] (HAProxy runs from stage 1k): only the app's "
                      "own limits and blocks apply there (docs/shield.md)")
        return
    blueprint, shield, path = _edge(config, data_dir, blueprint)
    entries = _read(path)
    for entry in entries:
        entry["over"] = shield.state_of(entry)
        entry["limited"] = bool(entry["over"]) or entry["refused_rate"] > 0
    chosen = [e for e in entries if e["limited"] or not limited]
    chosen.sort(key=lambda e: (e["limited"], e["requests"], e["connections"]), reverse=True)
    w = shield.window_seconds
    limits = {"window_seconds": w, "request_rate": shield.request_rate, "connections": shield.connections,
              "connection_rate": shield.connection_rate, "drop_request_rate": shield.drop_request_rate,
              "drop_connection_rate": shield.drop_connection_rate}
    if as_json:
        typer.echo(json.dumps({"limits": limits, "exempt": list(shield.exempt), "tracked": len(entries),
                               "limited": sorted(e["source"] for e in entries if e["limited"]), "sources": chosen[:top],
                               "blocked": blocks}, indent=2))
        return
    _print_blocks(blocks)
    out.print(f"edge limits per source: {shield.request_rate} requests and {shield.connection_rate} new connections per {w} s, "
              f"{shield.connections} open connections (429 above); dropped above {shield.drop_request_rate} requests or "
              f"{shield.drop_connection_rate} new connections per {w} s; exempt: {', '.join(shield.exempt) or 'none'}")
    limited_now = sum(e["limited"] for e in entries)
    out.print(f"{len(entries)} source(s) counted, {limited_now} limited now")
    if not chosen:
        return
    table = Table(title=f"summit shield (top {min(top, len(chosen))})", box=box.SIMPLE_HEAD)
    table.add_column("source", no_wrap=False, overflow="fold", min_width=15)
    for name in (f"req/{w}s", "open", f"conn/{w}s", f"refused {w}s/all"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("state", overflow="fold")
    for e in chosen[:top]:
        state = "[red]dropped[/red]" if "dropped" in e["over"] else (
            f"[yellow]429: {', '.join(e['over'])}[/yellow]" if e["over"] else ("[yellow]refused lately[/yellow]" if e["limited"] else "ok"))
        table.add_row(e["source"], str(e["requests"]), str(e["connections"]), str(e["connection_rate"]),
                      f"{e['refused_rate']}/{e['refused']}", state)
    out.print(table)


@shield_app.command("clear")
def clear(
    source: Annotated[str, typer.Argument(help="The source to forget: an IPv4 address, or an IPv6 address (its /64).")],
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Forget a source's counters at the front door now: it is counted afresh from its next request
    (to lift a limit early; the app's own limits are not touched). A block of the source is lifted too."""
    from summit.engines.shield import clear as clear_source

    blueprint = blueprint_or_exit(config, data_dir=data_dir)
    if _lift(blueprint, source) and not blueprint.engines.haproxy.enabled:
        return
    _, _, path = _edge(config, data_dir, blueprint)
    try:
        known = clear_source(path, source)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="SOURCE") from None
    except OSError as error:
        console.print(f"[red]error:[/red] HAProxy's runtime API ({path}) does not answer: {error}")
        raise typer.Exit(1) from None
    console.print(f"cleared {source}" if known else f"{source} was not in the table (nothing to clear)")


# ---- blocks -------------------------------------------------------------------------------------

_DURATION = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _seconds(text: str) -> int:
    """``900``, ``90s``, ``15m``, ``2h``, ``1d`` as seconds."""
    value = text.strip().lower()
    unit = _DURATION.get(value[-1:], None)
    number = value[:-1] if unit else value
    if not number.isdigit() or int(number) <= 0:
        raise typer.BadParameter(f"{text!r} is not a duration: write seconds (900) or 90s, 15m, 2h, 1d", param_hint="--for")
    return int(number) * (unit or 1)


def _blocklist(blueprint: Any) -> Any:
    from summit.security.blocks import Blocklist

    return Blocklist(blueprint.data_dir)


def _print_blocks(blocks: list[dict[str, Any]]) -> None:
    if not blocks:
        out.print("no source blocked")
        return
    table = Table(title=f"blocked ({len(blocks)})", box=box.SIMPLE_HEAD)
    for name in ("source", "until", "left", "by", "why"):
        table.add_column(name, overflow="fold")
    for b in sorted(blocks, key=lambda b: b["until"]):
        table.add_row(b["source"], b["until_iso"], f"{b['remaining_seconds']} s", b["by"], b["reason"])
    out.print(table)


def _push(blueprint: Any) -> None:
    """The blocklist into the running front door, saying what happened."""
    from summit.security.guard.blocking import has_edge, sync_edge

    if not has_edge(blueprint):
        out.print("no front door refuses blocks at this stage (or shield.edge is off): the app refuses blocked sources (within a second)")
        return
    done = sync_edge(blueprint.data_dir)
    if done == "pushed":
        out.print("the front door has the new blocklist")
    elif done == "none":
        out.print("HAProxy is not running: it loads the blocklist when it starts")
    else:
        console.print(f"[red]error:[/red] the front door did not take the blocklist ({done}); the app refuses blocked sources meanwhile")
        raise typer.Exit(1)


def _lift(blueprint: Any, source: str) -> bool:
    """Lift the block of ``source`` (file, front door, audit); whether it had one."""
    from summit.security.blocks import BlockError
    from summit.security.guard.blocking import record_blocks

    try:
        lifted = _blocklist(blueprint).remove(source)
    except BlockError as error:
        raise typer.BadParameter(str(error), param_hint="SOURCE") from None
    if lifted is None:
        return False
    out.print(f"unblocked {lifted.source} (was blocked until {lifted.as_dict()['until_iso']}: {lifted.reason})")
    record_blocks(blueprint.data_dir, "shield:Unblock", [lifted])
    _push(blueprint)
    return True


@shield_app.command("block")
def block(
    source: Annotated[str, typer.Argument(help="The source to block: an IPv4 address, or an IPv6 address (its /64).")],
    seconds: Annotated[str, typer.Option("--for", help="How long: seconds, or 90s, 15m, 2h, 1d.")] = "15m",
    reason: Annotated[str, typer.Option("--reason", help="Why (kept with the block and shown).")] = "blocked by an operator",
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Block a source now: the front door (and the app) answer its every request 403 until the time
    is up. Sources in shield.exempt cannot be blocked."""
    import time

    from summit.security.blocks import Block, BlockError, covers
    from summit.security.guard.blocking import record_blocks

    blueprint = blueprint_or_exit(config, data_dir=data_dir)
    duration = _seconds(seconds)
    try:
        wanted = Block.make(source, until=time.time() + duration, reason=reason, by="operator")
    except BlockError as error:
        raise typer.BadParameter(str(error), param_hint="SOURCE") from None
    if covers(blueprint.shield.exempt, wanted.source):
        raise typer.BadParameter(f"{wanted.source} is exempt (shield.exempt): it is never blocked", param_hint="SOURCE")
    made, changed = _blocklist(blueprint).add(wanted)
    if not changed:
        out.print(f"{made.source} is already blocked until {made.as_dict()['until_iso']} ({made.reason})")
        return
    out.print(f"blocked {made.source} until {made.as_dict()['until_iso']} ({duration} s)")
    record_blocks(blueprint.data_dir, "shield:Block", [made])
    _push(blueprint)


@shield_app.command("unblock")
def unblock(
    source: Annotated[str, typer.Argument(help="The blocked source: an IPv4 address, or an IPv6 address (its /64).")],
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Lift a source's block now (`summit shield show` lists the blocks); exit 1 if it had none."""
    blueprint = blueprint_or_exit(config, data_dir=data_dir)
    if not _lift(blueprint, source):
        console.print(f"{source} is not blocked (nothing to lift)")
        raise typer.Exit(1)
