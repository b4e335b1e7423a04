"""``summit guard``: threat detection over the audit and access logs (like GuardDuty)."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from summit.cli.audit import parse_time
from summit.cli.main import ConfigOpt, DataDirOpt, app, blueprint_or_exit, console

guard_app = typer.Typer(help="Threat detection (like GuardDuty): findings from the audit and access logs.", no_args_is_help=True)
app.add_typer(guard_app, name="guard")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
_COLOUR = {"high": "red", "medium": "yellow", "low": "cyan"}


def _detector(config, data_dir):  # noqa: ANN001, ANN202
    from summit.security.guard import Detector, GuardError

    try:
        return Detector.for_blueprint(blueprint_or_exit(config, data_dir=data_dir))
    except GuardError as error:  # a setting the guard cannot use (guard.blocking.types)
        console.print(f"[red]error:[/red] {escape(str(error))}")
        raise typer.Exit(2) from None


def _say_blocks(report) -> None:  # noqa: ANN001  (a RunReport)
    """What automatic blocking did in a run (nothing printed when it is off or did nothing)."""
    done = report.blocking
    if done is None:
        return
    for block in done.blocks:
        console.print(f"[red]blocked[/red] {block.source} until {block.as_dict()['until_iso']} ({escape(block.reason)})", highlight=False)
    if done.blocks and done.edge not in ("pushed", "none"):
        console.print(f"[red]error:[/red] the front door did not take the blocklist ({escape(done.edge)})")
    for source, why in done.skipped:
        console.print(f"[dim]not blocked: {source}: {escape(why)}[/dim]", highlight=False)


@guard_app.command("findings")
def findings(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    since: Annotated[Optional[str], typer.Option("--since", help="Last seen at or after this time (ISO 8601, UTC by default) or age (1h, 7d).")] = None,
    types: Annotated[Optional[list[str]], typer.Option("--type", help="Only this type, a glob (CredentialAccess:*); repeatable.")] = None,
    archived: Annotated[bool, typer.Option("--archived", help="Archived (handled) findings too.")] = False,
    no_update: Annotated[bool, typer.Option("--no-update", help="List what is kept without reading the logs first.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Evaluate the rules over what the logs gained since the last run, then list the findings,
    newest first. Findings are kept in <data_dir>/guard/ (one per type and subject: a repeat
    updates its count); `summit guard archive ID` marks one handled."""
    from summit.security.guard import FINDING_TYPES, GuardError

    for pattern in types or []:
        import fnmatch

        if not any(fnmatch.fnmatchcase(name, pattern) for name in FINDING_TYPES):
            raise typer.BadParameter(f"{pattern!r} matches no finding type; the types are: {', '.join(FINDING_TYPES)}", param_hint="--type")
    try:
        since_time = parse_time(since)
    except typer.BadParameter as error:
        raise typer.BadParameter(str(error), param_hint="--since") from None
    detector = _detector(config, data_dir)
    try:
        report = None if no_update else detector.run()
        found = detector.findings(since=since_time, types=types, archived=archived)
    except GuardError as error:
        console.print(f"[red]error:[/red] {escape(str(error))}")
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps({"count": len(found), "run": report.as_dict() if report else None,
                               "findings": [f.as_dict() for f in found]}, indent=2))
        return
    if report is not None:
        logs = ", ".join(report.logs) or f"no access log found, looked for {', '.join(detector.access_logs)}"
        console.print(f"read {report.audit_records} audit record(s) and {report.requests} request(s) (access logs: {escape(logs)}); "
                      f"{len(report.new)} new finding(s), {len(report.updated)} updated", highlight=False)
        _say_blocks(report)
    if not found:
        console.print("no findings" + (" in that time" if since else ""))
        return
    table = Table(title=f"summit guard ({len(found)} finding(s))", show_lines=True)
    for name in ("id", "severity", "count", "last seen"):
        table.add_column(name, no_wrap=True, justify="right" if name == "count" else "left")
    table.add_column("finding")
    for f in found:
        colour = _COLOUR[f.severity_label]
        table.add_row(
            f.id + ("\n[dim]archived[/dim]" if f.archived else ""),
            f"[{colour}]{f.severity_label} {f.severity:.1f}[/{colour}]",
            str(f.count),
            _short(f.last_seen),
            f"[bold]{escape(f.type)}[/bold]\n{escape(f.title)}\n[dim]{escape(f.subject)}; first seen {_short(f.first_seen)}[/dim]",
        )
    console.print(table)


def _short(time: str) -> str:
    """2026-01-01T12:00:00.123Z -> 2026-01-01 12:00:00Z (the JSON keeps the milliseconds)."""
    return time[:19].replace("T", " ") + "Z"


@guard_app.command("watch")
def watch(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    interval: Annotated[float, typer.Option("--interval", min=1.0, help="Seconds between runs.")] = 30.0,
    count: Annotated[int, typer.Option("--count", min=0, help="Stop after this many runs (0: until interrupted).")] = 0,
) -> None:
    """Evaluate the rules every --interval seconds (and block, with guard.blocking.enabled), printing
    each run's new and updated findings: the guard as a service, for a terminal or a systemd unit."""
    import time

    from summit.security.guard import GuardError

    detector = _detector(config, data_dir)
    runs = 0
    try:
        while True:
            started = time.monotonic()
            try:
                report = detector.run()
            except GuardError as error:
                console.print(f"[red]error:[/red] {escape(str(error))}")
                raise typer.Exit(1) from None
            for change, found in (("new", report.new), ("updated", report.updated)):
                for f in found:
                    console.print(f"{_short(f.last_seen)} {change} {f.id} [{_COLOUR[f.severity_label]}]{f.severity_label}"
                                  f"[/{_COLOUR[f.severity_label]}] {escape(f.type)}: {escape(f.title)}", highlight=False)
            _say_blocks(report)
            runs += 1
            if count and runs >= count:
                return
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
    except KeyboardInterrupt:
        return


@guard_app.command("archive")
def archive(
    ids: Annotated[list[str], typer.Argument(help="Finding ids (or unique prefixes), as `summit guard findings` shows them.")],
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Mark findings handled: they leave the list; if their subject acts again, a new finding opens."""
    from summit.security.guard import GuardError

    detector = _detector(config, data_dir)
    failed = False
    for finding_id in ids:
        try:
            finding = detector.archive(finding_id)
        except GuardError as error:
            console.print(f"[red]error:[/red] {escape(str(error))}")
            failed = True
            continue
        console.print(f"archived {finding.id}: {escape(finding.type)} ({escape(finding.subject)})", highlight=False)
    if failed:
        raise typer.Exit(1)


@guard_app.command("types")
def types_() -> None:
    """The finding types and what raises each (thresholds: the blueprint's [guard] section)."""
    from summit.security.guard import FINDING_TYPES

    table = Table("type", "raised by", title="summit guard finding types")
    for name, what in FINDING_TYPES.items():
        table.add_row(escape(name), escape(what))
    console.print(table)
