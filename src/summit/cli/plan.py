"""``summit plan``: what the service needs at N users; ``summit plan check``: the model against a
measured capacity."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from summit.bench.plan import PlanError, apply_settings, load_inputs, load_report, make_plans, parse_users, sweep
from summit.bench.plan import chart as plan_chart
from summit.bench.plan.check import check as check_report
from summit.bench.plan import render as plan_render
from summit.cli.main import ConfigOpt, app, console

plan_app = typer.Typer(
    name="plan",
    help="What the service needs at N users: processes, databases, cache, storage, CDN, and its seed stage.",
    add_completion=False,
    rich_markup_mode="rich",
)
app.add_typer(plan_app, name="plan")
out = Console(highlight=False)

BenchOpt = Annotated[Optional[Path], typer.Option("--bench", "-b", help="A `summit bench` report (JSON): measured demands replace published ones.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _fail(error: Exception) -> typer.Exit:
    console.print(f"[red]error:[/red] {escape(str(error))}")
    return typer.Exit(2)


def _dumps(value: Any) -> str:
    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        return v

    return json.dumps(clean(value), indent=2)


@plan_app.callback(invoke_without_command=True)
def plan(
    ctx: typer.Context,
    users: Annotated[Optional[str], typer.Option("--users", "-u", help="Users to plan for: 10000000, 10M, 1e7, or several: 1k,1M,10M.")] = None,
    bench: BenchOpt = None,
    as_json: JsonOpt = False,
    chart: Annotated[Optional[Path], typer.Option("--chart", help="Also write a chart of resources against users (1 to 10^8): FILE.svg or FILE.html.")] = None,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the plans side by side as Markdown, with the ceilings and the demands' sources.")] = False,
    settings: Annotated[Optional[list[str]], typer.Option("--set", help="Override a workload field or a plan assumption: NAME=VALUE (repeatable).")] = None,
    config: ConfigOpt = None,
) -> None:
    """Plan the service for N users from the blueprint's user model and per-request demands.

    Exits 2 on bad input (users, report, blueprint, --set)."""
    if ctx.invoked_subcommand:
        return
    if users is None:
        raise _fail(PlanError("give --users N (e.g. --users 10M), or run `summit plan check --bench REPORT.json`"))
    try:
        counts = parse_users(users)
        workload, assumptions, origin = load_inputs(config)
        workload, assumptions = apply_settings(workload, assumptions, settings or [])
        report = load_report(bench) if bench else None
        plans = make_plans(counts, workload, assumptions, report, bench)
        if chart:
            plan_chart.write(chart, sweep(workload, assumptions, report), plans)
    except PlanError as error:
        raise _fail(error) from None
    if as_json:
        body: Any = plans[0] if len(plans) == 1 else {"plans": plans}
        if chart:
            body = {**body, "chart": str(chart)}
        typer.echo(_dumps(body))
    elif markdown:
        typer.echo(plan_render.markdown_ladder(plans))
        typer.echo("\nCeilings (where one of something stops being enough):\n")
        typer.echo(plan_render.markdown_ceilings(plans[0]["ceilings"]))
        typer.echo("\nService demands and their sources:\n")
        typer.echo(plan_render.markdown_sources(plans[0]))
    else:
        for p in plans:
            measured = f"measured: {bench}" if bench else "published and assumed figures"
            table = Table(title=f"summit plan: {p['users']:,} users ({escape(measured)}; user model from {escape(origin)})", show_lines=False)
            table.add_column("what")
            table.add_column("needs", justify="right", no_wrap=True)
            table.add_column("how it was computed", overflow="fold")
            for name, value, note in plan_render.rows(p):
                table.add_row(name, f"[bold]{escape(value)}[/bold]", escape(note))
            out.print(table)
        for note in plans[-1]["notes"]:
            out.print(f"[dim]- {escape(note)}[/dim]")
    if chart and not as_json:
        console.print(f"chart written to {escape(str(chart))}")


@plan_app.command("check")
def check(
    bench: Annotated[Path, typer.Option("--bench", "-b", help="The `summit bench` report of the stage to check (JSON).")],
    cores: Annotated[Optional[int], typer.Option("--cores", help="Cores the server had (default: the report's, else 1: bench pins it to one core).")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 when the error is over 25%.")] = False,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Predict the measured stage's capacity from its measured demands (M/M/c with the p99 target)
    and compare with the capacity the bench measured. Target: within 25%."""
    try:
        workload, _, _ = load_inputs(config)
        result = check_report(load_report(bench), bench, workload=workload, cores=cores)
    except PlanError as error:
        raise _fail(error) from None
    if as_json:
        typer.echo(_dumps(result))
    else:
        table = Table(title=f"summit plan check: stage {escape(str(result['stage']))} ({escape(str(bench))})", show_header=False)
        table.add_row("server cores", str(result["server_cores"]))
        for tier, ms in result["demands_ms"].items():
            table.add_row(f"demand: {tier}", f"{ms:.3f} ms CPU/request (mix-weighted)")
        table.add_row("demand per request", f"{result['cpu_ms_per_request']:.3f} ms")
        table.add_row("utilisation-law ceiling", f"{result['utilisation_law_rps']:,.1f} req/s")
        table.add_row("predicted capacity", f"[bold]{result['predicted_capacity_rps']:,.1f} req/s[/bold] (p99 under {result['p99_target_ms']:g} ms, M/M/c)")
        table.add_row("measured capacity", f"[bold]{result['measured_capacity_rps']:,.1f} req/s[/bold]")
        colour = "green" if result["within_tolerance"] else "red"
        table.add_row("error", f"[{colour}]{result['error']:+.1%}[/{colour}] (target: within {result['tolerance']:.0%})")
        out.print(table)
        if result["steps"]:
            steps = Table(title="per step: p99 measured vs predicted")
            for column in ("rate", "measured p99 ms", "predicted p99 ms", "held", "predicted held"):
                steps.add_column(column, justify="right")
            for s in result["steps"]:
                steps.add_row(f"{s['rate']:g}", plan_render.num(s["measured_p99_ms"]), plan_render.num(s["predicted_p99_ms"]), str(s["held"]), str(s["predicted_held"]))
            out.print(steps)
        for note in result["notes"]:
            out.print(f"[yellow]- {escape(note)}[/yellow]")
    if strict and not result["within_tolerance"]:
        raise typer.Exit(1)
