"""The report contract, the HTML page, compare, capacity selection and the client-bottleneck rule."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from summit.bench import html, report
from summit.bench.phases.demands import weighted
from summit.bench.phases.mix import client_bound, overall_client_bottleneck, planned_rates


def step(rate: float, p99: float, errors: float = 0.0, *, target: float = 250, max_err: float = 0.001, **kw) -> dict:  # noqa: ANN003
    s = {"rate": rate, "achieved_rps": rate, "p50_ms": p99 / 4, "p95_ms": p99 / 2, "p99_ms": p99, "error_ratio": errors, "client_cpu": 0.1, "server_cpu": 0.5, "held": False}
    s.update(kw)
    s["held"] = report.step_held(s, target, max_err)
    return s


def synthetic() -> dict:
    r = report.empty_report("1", "2026-01-01T00:00:00+00:00", {"cores": 2, "cpu_model": "Test CPU", "memory_bytes": 8 << 30}, {"p99_target_ms": 250, "max_error_ratio": 0.001})
    r["baselines"].update(asgi_hello_rps=10000.0, nginx_static_rps=20000.0)
    r["raw"] = [
        {"name": "feed", "method": "GET", "path": "/api/v1/feed", "rps": 500.0, "p50_ms": 10.0, "p99_ms": 90.0, "ratio_to_hello": 0.05},
        {"name": "media photo", "method": "GET", "path": "/media/p/x.jpg", "rps": 2000.0, "p50_ms": 3.0, "p99_ms": 20.0, "ratio_to_hello": 0.2},
    ]
    r["steps"] = [step(50, 40), step(100, 80), step(200, 900)]
    r["capacity_rps"] = report.capacity(r["steps"])
    r["demands"] = {"app": {"cpu_ms_per_request": 3.0, "cpu_ms_per_read": 2.5, "cpu_ms_per_write": 6.0, "cpu_ms_per_upload": 40.0, "rss_bytes": 200 << 20}}
    r["scenarios"] = {"feed": {"count": 100, "p50_ms": 9.0, "p95_ms": 30.0, "p99_ms": 60.0, "errors": 0}, "post_photo": {"count": 1, "p50_ms": 150.0, "p95_ms": 150.0, "p99_ms": 150.0, "errors": 0}}
    r["notes"] = ["stage 1 runs no Redis <and> no PostgreSQL"]
    r["extra"] = {
        "series": [{"t": float(i), "rps": 50.0, "p50_ms": 5.0, "p95_ms": 9.0, "p99_ms": 20.0, "errors": 0, "rate": 50.0} for i in range(10)],
        "step_bounds": [{"t": 0.0, "rate": 50.0}],
        "processes": {"t": [0.5, 1.0, 1.5], "cpu": {"app": [0.2, 0.5, 0.4], "bench client": [0.05, 0.1, 0.1]}, "rss": {"app": [1 << 27] * 3, "bench client": [1 << 26] * 3}},
        "phases": [{"name": "mix", "t": 0.5}],
        "mix_weights": {"feed": 0.99, "post_photo": 0.01},
        "scenario_class": {"feed": "read", "post_photo": "upload"},
    }
    return r


# ---- the JSON contract ----
def test_empty_report_has_every_contract_key() -> None:
    r = report.empty_report("1", "now", {"cores": 1, "cpu_model": "x", "memory_bytes": 1}, {})
    assert tuple(k for k in r if k != report.EXTRA_KEY) == report.TOP_KEYS
    assert set(r["baselines"]) == {"asgi_hello_rps", "nginx_static_rps", "redis_ops", "pgbench_tps"}
    assert r["version"] == 1
    assert report.validate(r) == []


def test_synthetic_report_validates_and_round_trips(tmp_path) -> None:  # noqa: ANN001
    r = synthetic()
    assert report.validate(r) == []
    path = tmp_path / "r.json"
    report.write(r, path)
    loaded = report.load(path)
    assert loaded["capacity_rps"] == 100.0
    assert set(loaded["steps"][0]) >= set(report.STEP_KEYS)
    assert set(loaded["raw"][0]) >= set(report.RAW_KEYS)
    assert set(loaded["demands"]["app"]) >= set(report.DEMAND_KEYS)


def test_validate_names_what_is_missing() -> None:
    r = synthetic()
    del r["capacity_rps"]
    assert report.validate(r) == ["missing key 'capacity_rps'"]
    r = synthetic()
    del r["steps"][1]["p99_ms"]
    del r["demands"]["app"]["rss_bytes"]
    problems = report.validate(r)
    assert "steps[1]: missing key 'p99_ms'" in problems
    assert "demands['app']: missing key 'rss_bytes'" in problems
    assert report.validate([]) == ["the report is not a JSON object"]


def test_load_refuses_what_is_not_a_report(tmp_path) -> None:  # noqa: ANN001
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": 1}')
    with pytest.raises(report.ReportError, match="not a summit bench report"):
        report.load(bad)
    with pytest.raises(report.ReportError, match="no such file"):
        report.load(tmp_path / "missing.json")


def test_json_has_no_nan() -> None:
    r = synthetic()
    r["raw"][0]["p99_ms"] = float("nan")
    r["capacity_rps"] = float("inf")
    data = json.loads(report.dumps(r))
    assert data["raw"][0]["p99_ms"] is None and data["capacity_rps"] is None


# ---- capacity ----
def test_capacity_is_the_highest_rate_held() -> None:
    assert report.capacity([step(50, 40), step(100, 80), step(200, 900)]) == 100
    assert report.capacity([step(50, 40), step(100, 200)]) == 100
    assert report.capacity([step(200, 900), step(50, 40), step(100, 80)]) == 100  # order run does not matter


def test_capacity_needs_every_lower_rate_held() -> None:
    assert report.capacity([step(50, 40), step(100, 300), step(150, 100)]) == 50  # a lucky step above a failure
    assert report.capacity([step(50, 400)]) is None
    assert report.capacity([]) is None


def test_errors_fail_a_step() -> None:
    assert not step(50, 10, errors=0.002)["held"]
    assert step(50, 10, errors=0.001)["held"]
    assert not step(50, 250.1)["held"]


def test_next_rates_stop_at_the_first_failure_then_bisect() -> None:
    planned = [50.0, 100.0, 200.0, 400.0]
    assert report.next_rates([], planned, refine=2, min_gap=2) == planned
    steps = [step(50, 40), step(100, 80)]
    assert report.next_rates(steps, planned, refine=2, min_gap=2) == [200.0, 400.0]
    steps.append(step(200, 900))
    assert report.next_rates(steps, planned, refine=2, min_gap=2) == [150.0]
    steps.append(step(150, 100))
    assert report.next_rates(steps, planned, refine=2, min_gap=2) == [175.0]
    steps.append(step(175, 300))
    assert report.next_rates(steps, planned, refine=2, min_gap=2) == []  # two refinements done
    # nothing held: halve the rate, three times at most
    assert report.next_rates([step(50, 900)], planned, refine=2, min_gap=2) == [25.0]
    low = [step(50, 900), step(25, 900), step(12.5, 900)]
    assert report.next_rates(low, planned, refine=2, min_gap=2) == [6.2]
    assert report.next_rates([*low, step(6.2, 900)], planned, refine=2, min_gap=2) == []


def test_planned_rates_ramp_around_the_estimate() -> None:
    rates = planned_rates(200)
    assert rates == sorted(rates) and rates[0] < 200 < rates[-1]
    assert planned_rates(None) == [10, 25, 50, 100, 200, 400]


def test_weighted_mean_skips_missing_values() -> None:
    assert weighted({"a": 2.0, "b": None, "c": 4.0}, {"a": 1, "b": 5, "c": 1}) == pytest.approx(3.0)
    assert weighted({"a": None}, {"a": 1}) is None


# ---- the client-bottleneck rule ----
def test_client_bound_when_the_client_uses_half_its_core() -> None:
    assert client_bound({"rate": 100, "achieved_rps": 100, "client_cpu": 0.6, "server_cpu": 0.9, "p99_ms": 50})
    assert not client_bound({"rate": 100, "achieved_rps": 99, "client_cpu": 0.2, "server_cpu": 0.9, "p99_ms": 50})


def test_client_bound_when_short_of_rate_while_the_server_idles() -> None:
    assert client_bound({"rate": 100, "achieved_rps": 80, "client_cpu": 0.3, "server_cpu": 0.3, "p99_ms": 50})
    assert not client_bound({"rate": 100, "achieved_rps": 80, "client_cpu": 0.3, "server_cpu": 0.98, "p99_ms": 50})  # the server is the limit
    # short of rate with long latencies: the server's queue, not the client
    assert not client_bound({"rate": 100, "achieved_rps": 80, "client_cpu": 0.1, "server_cpu": 0.4, "p99_ms": 2900})


def test_client_bound_when_its_dispatch_lags() -> None:
    assert client_bound({"rate": 100, "achieved_rps": 100, "client_cpu": 0.2, "server_cpu": 0.5, "p99_ms": 50, "dispatch_lag_p99_ms": 45})
    assert not client_bound({"rate": 100, "achieved_rps": 100, "client_cpu": 0.2, "server_cpu": 0.5, "p99_ms": 50, "dispatch_lag_p99_ms": 2})


def test_overall_bottleneck_only_counts_deciding_steps() -> None:
    a, b, c = step(50, 40, client_bound=False), step(100, 900, client_bound=False), step(200, 900, client_bound=True)
    assert not overall_client_bottleneck([a, b, c])
    b["client_bound"] = True
    assert overall_client_bottleneck([a, b, c])


# ---- HTML ----
def test_html_renders_plots_and_tables() -> None:
    page = html.render(synthetic())
    assert page.startswith("<!doctype html>")
    assert page.count("<svg") >= 8
    for title in ("Throughput over time", "Latency over time", "Latency per scenario", "Errors over time", "CPU (% of one core)", "Resident memory"):
        assert title in page
    assert "not measured at this stage" in page  # cache hit ratio, database share, redis, pgbench
    assert "&lt;and&gt;" in page  # notes are escaped
    assert not re.search(r"(src|href)=\"https?://", page)  # nothing from the network
    assert "<script" not in page


def test_html_survives_an_empty_run() -> None:
    r = report.empty_report("1", "now", {"cores": 1, "cpu_model": "x", "memory_bytes": 1}, {"p99_target_ms": 250})
    page = html.render(r)
    assert "no data" in page


# ---- compare ----
def test_compare_rows_have_ratios() -> None:
    a, b = synthetic(), synthetic()
    b["stage"] = "10k"
    b["capacity_rps"] = 300.0
    b["demands"]["app"]["cpu_ms_per_request"] = 1.5
    rows = {label: (va, vb, ratio) for label, va, vb, ratio in report.compare_rows(a, b)}
    assert rows["stage"] == ("1", "10k", None)
    assert rows["capacity (req/s)"] == (100.0, 300.0, 3.0)
    assert rows["app cpu_ms_per_request"][2] == pytest.approx(0.5)
    assert rows["capacity / hello"][2] == pytest.approx(3.0)
    assert rows["baseline redis_ops"] == (None, None, None)


def test_compare_command(tmp_path) -> None:  # noqa: ANN001
    from summit.cli import bench, main  # noqa: F401  (registers the sub-app)

    a, b = synthetic(), synthetic()
    b["capacity_rps"] = 50.0
    report.write(a, tmp_path / "a.json")
    report.write(b, tmp_path / "b.json")
    result = CliRunner().invoke(main.app, ["bench", "compare", str(tmp_path / "a.json"), str(tmp_path / "b.json")], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if "capacity (req/s)" in x)
    assert re.search(r"\b100\b.*\b50\b.*\b0\.5\b", line), line
    (tmp_path / "c.json").write_text("{}")
    result = CliRunner().invoke(main.app, ["bench", "compare", str(tmp_path / "a.json"), str(tmp_path / "c.json")])
    assert result.exit_code == 2


def test_html_command(tmp_path) -> None:  # noqa: ANN001
    from summit.cli import bench, main  # noqa: F401

    report.write(synthetic(), tmp_path / "a.json")
    result = CliRunner().invoke(main.app, ["bench", "html", str(tmp_path / "a.json")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "a.html").read_text().count("<svg") >= 8
