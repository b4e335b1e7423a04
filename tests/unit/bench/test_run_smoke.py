"""A whole ``summit bench run --start`` and ``summit bench profile``, as small as they go: a real
stage started here, seeded through its API (codes read through its mail port), measured, stopped.
Bounded to tens of seconds; no figure is asserted, only that each is there or says why not."""

from __future__ import annotations

import io
import os
from pathlib import Path

import psutil
import pytest
from rich.console import Console

from summit.bench import report as rep
from summit.bench.options import Options
from summit.bench.profile import ProfileOptions, profile, py_spy
from summit.bench.runner import run

pytestmark = pytest.mark.slow


def test_a_tiny_run_writes_a_valid_report(tmp_path: Path) -> None:
    options = Options(
        start=True, skip_raw=True, users=2, posts=2, probes=1, duration=1, rates=[2.0], refine=0, max_steps=1,
        photo_bytes=20_000, out=tmp_path, command="pytest",
    )
    report, json_path, html_path = run(options, Console(file=io.StringIO()))
    assert rep.load(json_path)["stage"] == "1"
    assert "<svg" in html_path.read_text()
    assert report["extra"]["seed"]["users"] == 2  # confirmed with the codes read back through the mail port
    assert any("mail port (outbox://" in note for note in report["notes"])
    assert report["extra"]["media_photo_bytes"] > 0
    stage = report["extra"]["stage"]
    assert stage["first_start_s"] > 0 and stage["restart_s"] > 0 and stage["rss_at_rest_bytes"] > 0
    assert len(report["steps"]) == 1 and "counters" in report["steps"][0]
    assert set(report["extra"]["headline"]) >= {"healthz_per_hello", "sql_per_warm_feed", "rss_at_rest_mb", "first_start_s"}
    assert "raw endpoints and baselines skipped (--skip-raw)" in report["notes"]


@pytest.mark.skipif(py_spy() is None or os.geteuid() != 0, reason="py-spy and root (ptrace) are needed to profile a server")
def test_a_tiny_profile_saves_a_flame_graph(tmp_path: Path) -> None:
    result = profile(ProfileOptions(route="healthz", seconds=1, max_requests=200, connections=2, users=2, posts=1, out=tmp_path), Console(file=io.StringIO()))
    assert result.profiler == "py-spy"
    assert 0 < result.requests <= 200
    assert result.svg_path.parent == tmp_path and result.svg_path.name.startswith("profile-healthz-")
    assert result.svg_path.read_text().startswith("<svg")
    assert result.stacks_path.exists()


def _engines_installed(stage: str) -> bool:
    from summit.blueprint import load_blueprint
    from summit.engines import install

    return all(status.present for status in install.check(install.needed(load_blueprint(environ={}, overrides={"stage": stage}))))


@pytest.mark.postgres
@pytest.mark.timeout(180)
@pytest.mark.skipif(not _engines_installed("1+"), reason="stage 1+ needs PostgreSQL and PgBouncer (summit engines install --stage 1+)")
def test_a_tiny_run_at_stage_1_plus_measures_the_app_and_the_database_apart(tmp_path: Path) -> None:
    """The stage under its supervisor: started, stopped and started again on the same data and
    port; pgbench -S through the primary's PgBouncer; the server's CPU and memory by part; the
    database figures from the app's counters, as at stage 1."""
    options = Options(
        start=True, stage="1+", users=2, posts=2, probes=1, duration=1, rates=[2.0], refine=0, max_steps=1, raw_seconds=1, media_bytes=20_000,
        photo_bytes=20_000, out=tmp_path, command="pytest",
    )
    report, json_path, _ = run(options, Console(file=io.StringIO()))
    assert rep.load(json_path)["stage"] == "1+"
    stage = report["extra"]["stage"]
    assert stage["first_start_s"] > 0 and stage["restart_s"] > 0
    assert set(stage["rss_at_rest_by_part"]) == {"app", "database", "supervisor"} and stage["rss_at_rest_bytes"] == stage["rss_at_rest_by_part"]["app"]
    assert report["baselines"]["pgbench_tps"] > 0, report["notes"]
    post = next(row for row in report["raw"] if row["key"] == "post")
    assert post["ratio_to_pgbench"] > 0 and set(post["cpu_ms_by_part"]) == {"app", "database", "supervisor"}
    assert set(report["steps"][0]["server_cpu_seconds_by_part"]) == {"app", "database", "supervisor"}
    assert {"app", "database"} <= set(report["demands"])
    assert report["extra"]["counters"]["mix"]["measured"]  # /metrics read from the app under the supervisor
    assert report["steps"][0]["counters"]["sql_statements_per_request"] is not None
    assert any(note.startswith("the server is the stage's whole process tree") for note in report["notes"])
    assert not any(p.info["cmdline"] and str(tmp_path) in " ".join(p.info["cmdline"]) for p in psutil.process_iter(["cmdline"]))


@pytest.mark.postgres
@pytest.mark.haproxy
@pytest.mark.timeout(180)
@pytest.mark.skipif(not _engines_installed("1k"), reason="stage 1k needs PostgreSQL, PgBouncer and HAProxy (summit engines install --stage 1k)")
def test_a_tiny_run_at_stage_1k_goes_through_the_front_door(tmp_path: Path) -> None:
    """HAProxy on the public port (HTTPS, the preset's TLS), two WAF processes, two app servers: each
    server's counters scraped on its own port and added up, HAProxy and the WAF tier parts of the
    server, the front-door baselines beside the raw reads."""
    options = Options(
        start=True, stage="1k", users=2, posts=2, probes=1, duration=1, rates=[2.0], refine=0, max_steps=1, raw_seconds=1, media_bytes=20_000,
        photo_bytes=20_000, raw_only=("feed", "media"), out=tmp_path, command="pytest",
    )
    report, json_path, _ = run(options, Console(file=io.StringIO()))
    assert rep.load(json_path)["stage"] == "1k"
    assert set(report["extra"]["stage"]["rss_at_rest_by_part"]) == {"app", "database", "proxy", "waf", "supervisor"}
    assert any(note.startswith("the front door speaks HTTPS") for note in report["notes"])  # the load went over TLS
    assert any("speaks plain HTTP, with no WAF tier" in note for note in report["notes"])  # the baselines' HAProxy
    assert report["baselines"]["hello_front_door_rps"] > 0 and report["baselines"]["nginx_front_door_photo_rps"] > 0, report["notes"]
    feed = next(row for row in report["raw"] if row["key"] == "feed")
    media = next(row for row in report["raw"] if row["key"] == "media")
    assert feed["ratio_to_hello_front_door"] > 0 and media["ratio_to_nginx_front_door"] > 0
    assert set(feed["cpu_ms_by_part"]) == {"app", "database", "proxy", "waf", "supervisor"} and feed["cpu_ms_by_part"]["waf"] > 0
    # the two app servers' counters, added up: every feed read wrk saw answered is counted once
    assert feed["counters"]["requests"] >= feed["rps"] * 0.9 and feed["counters"]["sql_statements_per_request"] > 0  # no shared cache at 1k
    headline = report["extra"]["headline"]
    assert headline["feed_per_hello_front_door"]["target"] == ">= 0.5" and headline["feed_per_hello_front_door"]["value"] > 0
    assert any("float over every core" in note for note in report["notes"])


def test_only_names_raw_endpoints_and_refuses_others() -> None:
    from typer.testing import CliRunner

    from summit.cli.bench import _only
    from summit.cli.main import app

    assert _only(None) is None
    assert _only(" feed, healthz,feed ") == ("feed", "healthz")  # trimmed, once each, in the order given
    result = CliRunner().invoke(app, ["bench", "run", "--start", "--only", "feed,bogus"])
    assert result.exit_code == 2
    assert "--only takes raw endpoint names" in result.output and "not bogus" in result.output
