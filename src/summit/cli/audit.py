"""``summit audit``: verify the audit log's chains, search its records."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta, timezone
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from summit.cli.main import ConfigOpt, DataDirOpt, app, blueprint_or_exit, console

audit_app = typer.Typer(help="The audit log (like CloudTrail): verify its chains, search its records.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
_STYLE = {"error": "red", "warning": "yellow", "note": "dim"}


@audit_app.command("verify")
def verify(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
    public_key: Annotated[
        Optional[Path],
        typer.Option("--public-key", help="Verify against this PEM public key, kept apart from the data directory."),
    ] = None,
) -> None:
    """Check every chain: file hashes, digest signatures and links, nothing missing, reordered or extra.

    Exits 0 when the log is intact (warnings, such as a file left unsealed by a crash, allowed),
    1 when a problem is found, 2 when the blueprint or the given public key cannot be read.
    """
    from summit.security.audit import verify as verify_log

    blueprint = blueprint_or_exit(config, data_dir=data_dir)
    try:
        report = verify_log(blueprint.data_dir, public_key=public_key)
    except ValueError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
        raise typer.Exit(0 if report.ok else 1)
    for finding in report.findings:
        text = escape(f"({finding.code}) " + (f"chain {finding.chain}: " if finding.chain else "") + finding.message)
        console.print(f"[{_STYLE[finding.level]}]{finding.level}[/] {text}", highlight=False)
    summary = report.summary()
    table = Table(show_header=False, title="summit audit verify")
    table.add_row("result", "[green]intact[/green]" if report.ok else f"[red]{len(report.errors)} problem(s)[/red]")
    table.add_row("key", report.key_id or "(none)")
    table.add_row("chains", ", ".join(f"{summary[s]} {s}" for s in ("closed", "live", "unsealed", "broken") if summary[s]) or "0")
    for name in ("files", "records", "first_time", "last_time"):
        table.add_row(name.replace("_", " "), str(summary[name] if summary[name] is not None else "-"))
    if report.warnings:
        table.add_row("warnings", str(len(report.warnings)))
    console.print(table)
    raise typer.Exit(0 if report.ok else 1)


class ResultChoice(str, Enum):
    success = "success"
    failure = "failure"


_AGE = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_time(text: str | None, *, now: float | None = None) -> str | None:
    """An ISO 8601 time (UTC unless it says otherwise) or an age like ``30m``, ``2h``, ``7d``,
    as the records write times."""
    from summit.security.audit.format import iso_ms

    if text is None:
        return None
    if m := _AGE.match(text.strip()):
        moment = datetime.fromtimestamp(time.time() if now is None else now, tz=timezone.utc)
        moment -= timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    else:
        try:
            moment = datetime.fromisoformat(text.strip())
        except ValueError:
            raise typer.BadParameter(f"{text!r} is not a time: use ISO 8601 (2025-05-01T12:00:00Z) or an age (30m, 2h, 7d)") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
    return iso_ms(int(moment.timestamp() * 1000))


@audit_app.command("search")
def search(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    user: Annotated[Optional[str], typer.Option("--user", help="User ID.")] = None,
    action: Annotated[Optional[str], typer.Option("--action", help="Action, a glob: auth:*, posts:Delete.")] = None,
    resource: Annotated[Optional[str], typer.Option("--resource", help="Resource, a glob: arn:summit:photos:::post/*.")] = None,
    since: Annotated[Optional[str], typer.Option("--since", help="From this time (ISO 8601, UTC by default) or age (2h, 7d).")] = None,
    until: Annotated[Optional[str], typer.Option("--until", help="Before this time or age.")] = None,
    result: Annotated[Optional[ResultChoice], typer.Option("--result", help="success or failure.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many records.")] = 1000,
    newest_first: Annotated[bool, typer.Option("--newest-first", help="Newest first (with --limit: the latest ones).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Find records across every chain, ordered by time (oldest first).

    Search reads records without verifying them: run ``summit audit verify`` for that.
    """
    from summit.security.audit import Query
    from summit.security.audit import search as search_log

    blueprint = blueprint_or_exit(config, data_dir=data_dir)
    query = Query(
        user_id=user,
        action=action,
        resource=resource,
        since=_option_time("--since", since),
        until=_option_time("--until", until),
        result=result.value if result else None,
    )
    found = search_log(blueprint.data_dir, query, limit=limit + 1, newest_first=newest_first)
    truncated, found = len(found) > limit, found[:limit]
    if as_json:
        typer.echo(json.dumps({"count": len(found), "truncated": truncated, "records": [e.as_dict() for e in found]}, indent=2))
        return
    for event in found:
        outcome = f"{event.result} {event.status or ''}".strip() + (f" ({event.reason})" if event.reason else "")
        fields = [
            event.time,
            event.action,
            f"user={event.user_id or '-'}",
            event.resource or "-",
            outcome,
            f"ip={event.source_ip or '-'}",
            f"request={event.request_id or '-'}",
        ]
        typer.echo("  ".join(fields))
    note = f"{len(found)} record(s)" + (f"; more match: raise --limit (now {limit})" if truncated else "")
    console.print(note if found else "no matching records")


def _option_time(name: str, text: str | None) -> str | None:
    try:
        return parse_time(text)
    except typer.BadParameter as error:
        raise typer.BadParameter(str(error), param_hint=name) from None
