"""``summit bench``: measure a stage (load, baselines, service demands) and compare two runs."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from summit.cli.main import ConfigOpt, StageOpt, app, console

bench_app = typer.Typer(help="Measure a stage: user-journey load, raw throughput, baselines, service demands.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")


def _rates(text: str | None) -> list[float] | None:
    if not text:
        return None
    try:
        rates = sorted({float(part) for part in text.split(",") if part.strip()})
    except ValueError:
        console.print(f"[red]error:[/red] --rates {text!r}: give requests per second separated by commas, e.g. 50,100,200")
        raise typer.Exit(2) from None
    if not rates or rates[0] <= 0 or rates[-1] > 100_000:
        console.print("[red]error:[/red] --rates: each rate must be above 0 and at most 100000 requests per second")
        raise typer.Exit(2)
    return rates


def _only(text: str | None) -> tuple[str, ...] | None:
    from summit.bench.phases.raw import ENDPOINTS

    if text is None:
        return None
    names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    known = [e.key for e in ENDPOINTS]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        console.print(f"[red]error:[/red] --only takes raw endpoint names, comma-separated: {', '.join(known)}" + (f" (not {', '.join(unknown)})" if unknown else ""))
        raise typer.Exit(2)
    return names


@bench_app.command("run")
def run(
    url: Annotated[Optional[str], typer.Option(help="A running stage on loopback, e.g. http://127.0.0.1:8000.")] = None,
    data_dir: Annotated[Optional[Path], typer.Option("--data-dir", "-d", help="With --url: the stage's data directory, where its mail port keeps the seeded users' confirmation codes (default: the blueprint's).")] = None,
    start: Annotated[bool, typer.Option("--start", help="Start the stage here (fresh temporary data, free port), stop it at the end.")] = False,
    stage: StageOpt = None,
    config: ConfigOpt = None,
    duration: Annotated[float, typer.Option(min=1, max=600, help="Seconds per arrival-rate step.")] = 10.0,
    rates: Annotated[Optional[str], typer.Option(help="Arrival rates to step through (req/s, comma-separated); default: planned from the raw demands.")] = None,
    out: Annotated[Path, typer.Option(help="Where to write the JSON and HTML reports.")] = Path("bench/results"),
    raw_seconds: Annotated[float, typer.Option(min=1, max=120, help="Seconds per wrk run (raw endpoints and baselines).")] = 5.0,
    photo_bytes: Annotated[Optional[int], typer.Option(min=10_000, max=20_000_000, help="Upload size in bytes (default: the blueprint's workload.photo_bytes).")] = None,
    users: Annotated[int, typer.Option(min=2, max=10_000, help="Users to seed.")] = 200,
    posts: Annotated[int, typer.Option(min=1, max=100_000, help="Posts to seed.")] = 500,
    refine: Annotated[int, typer.Option(min=0, max=6, help="Bisections between the last rate held and the first not held.")] = 2,
    probes: Annotated[int, typer.Option(min=1, max=100, help="Sequential uploads and sign-ups to measure their CPU.")] = 6,
    skip_raw: Annotated[bool, typer.Option("--skip-raw", help="No wrk runs (raw endpoints, baselines).")] = False,
    only: Annotated[Optional[str], typer.Option(help="Raw endpoints to run, by name, comma-separated (healthz, profile, feed, post, photo, media, like, follow, comment); default: all.")] = None,
    keep: Annotated[bool, typer.Option("--keep", help="Keep the temporary directory (data, server logs).")] = False,
    nice: Annotated[Optional[int], typer.Option(min=-20, max=19, help="Niceness of every process of the bench (negative needs root): keeps other work on a shared machine from skewing the figures.")] = None,
) -> None:
    """Benchmark a stage and write a report (JSON for `summit plan`, HTML to read).

    With --start, the stage runs here pinned to one core, and the load generators to the other.
    """
    from summit.bench.net import NotLoopback
    from summit.bench.options import BenchError, Options
    from summit.bench.runner import run as run_bench
    from summit.blueprint import BlueprintError

    if start == bool(url):
        console.print("[red]error:[/red] give either --url URL (a running stage on loopback) or --start (start one here)")
        raise typer.Exit(2)
    options = Options(
        url=url, data_dir=data_dir, start=start, stage=stage, config=config, duration=duration, rates=_rates(rates), out=out,
        raw_seconds=raw_seconds, photo_bytes=photo_bytes, users=users, posts=posts, refine=refine, probes=probes,
        skip_raw=skip_raw, raw_only=_only(only), keep=keep, nice=nice, command="summit bench " + shlex.join(sys.argv[sys.argv.index("run"):] if "run" in sys.argv else sys.argv[1:]),
    )
    try:
        report, json_path, html_path = run_bench(options, console)
    except (NotLoopback, BenchError, BlueprintError) as error:
        console.print(f"[red]error:[/red] {escape(str(error))}")
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/yellow]: every process the bench started was stopped")
        raise typer.Exit(130) from None
    _summary(report)
    console.print(f"report: {json_path}\n        {html_path}")


def _summary(report: dict) -> None:
    from summit.bench import headline
    from summit.bench.report import fmt

    hello = report["baselines"].get("asgi_hello_rps")
    cap = report["capacity_rps"]
    table = Table(title=f"stage {report['stage']}", show_header=True)
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("/ ASGI hello", justify="right")
    table.add_row("capacity, user mix (req/s)", fmt(cap), fmt(cap / hello) if cap and hello else "-")
    for key, value in report["baselines"].items():
        table.add_row(f"baseline {key}", fmt(value) if value is not None else "not measured", fmt(value / hello) if value and hello else "-")
    for row in report["raw"]:
        table.add_row(f"raw {row['name']} (req/s)", fmt(row["rps"]), fmt(row["ratio_to_hello"]))
    for tier, demand in report["demands"].items():
        table.add_row(f"{tier}: CPU ms per request", fmt(demand["cpu_ms_per_request"]), "")
    table.add_row("client was the bottleneck", fmt(report["client_bottleneck"]), "")
    console.print(table)
    key = Table(title="key figures", show_header=True)
    key.add_column("figure")
    key.add_column("value", justify="right")
    key.add_column("stage-1 target", justify="right")
    for figure in headline.figures(report):
        key.add_row(figure.label, "not measured" if figure.value is None else fmt(figure.value), figure.target)
    console.print(key)


@bench_app.command("compare")
def compare(
    a: Annotated[Path, typer.Argument(help="First report (JSON).")],
    b: Annotated[Path, typer.Argument(help="Second report (JSON).")],
) -> None:
    """Two runs side by side (e.g. stage 1 against stage 10k), with B/A ratios."""
    from summit.bench import headline
    from summit.bench.report import ReportError, compare_rows, fmt, load

    try:
        ra, rb = load(a), load(b)
    except ReportError as error:
        console.print(f"[red]error:[/red] {escape(str(error))}")
        raise typer.Exit(2) from None
    table = Table(title=f"{a.name}  vs  {b.name}")
    table.add_column("figure")
    table.add_column(f"A: stage {ra['stage']}", justify="right")
    table.add_column(f"B: stage {rb['stage']}", justify="right")
    table.add_column("B / A", justify="right")
    for label, va, vb, ratio in compare_rows(ra, rb):
        table.add_row(label, fmt(va), fmt(vb), fmt(ratio))
    key = Table(title="key figures (ratios against baselines of the same run)")
    key.add_column("figure")
    key.add_column("stage-1 target", justify="right")
    key.add_column(f"A: stage {ra['stage']}", justify="right")
    key.add_column(f"B: stage {rb['stage']}", justify="right")
    key.add_column("B / A", justify="right")
    for label, target, va, vb, ratio in headline.compare(ra, rb):
        key.add_row(label, target, "not measured" if va is None else fmt(va), "not measured" if vb is None else fmt(vb), fmt(ratio))
    from rich.console import Console

    out = Console()
    out.print(table)
    out.print(key)


@bench_app.command("html")
def html(
    report_path: Annotated[Path, typer.Argument(help="A report (JSON).")],
    out: Annotated[Optional[Path], typer.Option(help="HTML file to write (default: beside the JSON).")] = None,
) -> None:
    """Render (again) the HTML page of a JSON report."""
    from summit.bench import html as html_report
    from summit.bench.report import ReportError, load

    try:
        report = load(report_path)
    except ReportError as error:
        console.print(f"[red]error:[/red] {escape(str(error))}")
        raise typer.Exit(2) from None
    target = out or report_path.with_suffix(".html")
    target.write_text(html_report.render(report))
    console.print(f"wrote {target}")


@bench_app.command("profile")
def profile(
    route: Annotated[str, typer.Argument(help="What to profile, by the raw endpoints' names: healthz, post, feed, media, profile, photo, like, follow, comment.")],
    url: Annotated[Optional[str], typer.Option(help="A running stage on loopback (default: start one here).")] = None,
    data_dir: Annotated[Optional[Path], typer.Option("--data-dir", "-d", help="With --url: the stage's data directory, where its mail port keeps the seeded users' confirmation codes (default: the blueprint's).")] = None,
    stage: StageOpt = None,
    config: ConfigOpt = None,
    seconds: Annotated[float, typer.Option(min=1, max=300, help="At most this long under load (and profiled).")] = 10.0,
    requests: Annotated[int, typer.Option(min=1, max=10_000_000, help="At most this many requests.")] = 20_000,
    connections: Annotated[int, typer.Option(min=1, max=512, help="Connections sending requests back to back.")] = 16,
    top: Annotated[int, typer.Option(min=1, max=100, help="Functions to list by their own time.")] = 12,
    out: Annotated[Path, typer.Option(help="Where to save the flame graph (SVG) and the collapsed stacks.")] = Path("bench/results"),
    keep: Annotated[bool, typer.Option("--keep", help="Keep the temporary directory (data, server and py-spy logs).")] = False,
) -> None:
    """Profile one route under a bounded load (py-spy on the server) and save a flame graph.

    Starts the stage here (or uses --url), seeds it lightly, sends ROUTE's request from a closed
    loop, and prints where the flame graph is and the functions with the most time of their own.
    """
    from summit.bench.net import NotLoopback
    from summit.bench.options import BenchError
    from summit.bench.profile import ROUTES, ProfileOptions
    from summit.bench.profile import profile as run_profile
    from summit.blueprint import BlueprintError

    if route not in ROUTES:
        console.print(f"[red]error:[/red] unknown route {escape(repr(route))}; the routes are: {', '.join(ROUTES)}")
        raise typer.Exit(2)
    options = ProfileOptions(
        route=route, url=url, data_dir=data_dir, stage=stage, config=config, seconds=seconds,
        max_requests=requests, connections=connections, top=top, out=out, keep=keep,
    )
    try:
        result = run_profile(options, console)
    except (NotLoopback, BenchError, BlueprintError) as error:
        console.print(f"[red]error:[/red] {escape(str(error))}")
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/yellow]: every process the bench started was stopped")
        raise typer.Exit(130) from None
    rate = result.requests / result.seconds if result.seconds else 0.0
    console.print(
        f"profiled with {result.profiler}: {result.requests:,} requests in {result.seconds:.1f} s ({rate:,.0f} req/s, "
        f"{result.errors} errors), {result.samples:,} samples of the server"
    )
    table = Table(title=f"{route}: functions by their own time", show_header=True)
    table.add_column("own samples", justify="right")
    table.add_column("share", justify="right")
    table.add_column("function")
    for name, samples, share in result.top:
        table.add_row(f"{samples:,}", f"{share * 100:.1f}%", name)
    console.print(table)
    console.print(f"flame graph: {result.svg_path}\nstacks:      {result.stacks_path}")
