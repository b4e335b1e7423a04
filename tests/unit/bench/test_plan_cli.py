"""``summit plan`` and ``summit plan check`` end to end (JSON, chart, errors), bench reports as
input, and the blueprint's ``[plan]`` table."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

import summit.cli.plan  # noqa: F401  (registers `plan`)
from summit.bench.plan import SERIES, PlanError, load_inputs, load_report, make_plans, resolve
from summit.bench.plan.check import check, measured_capacity
from summit.blueprint.model import Workload
from summit.cli import main

def run(*args: str):  # noqa: ANN201
    return CliRunner().invoke(main.app, ["plan", *args], env={"COLUMNS": "200"})


def report(tmp_path: Path, **changes) -> Path:  # noqa: ANN003
    body = {
        "version": 1, "stage": "1", "machine": {"cores": 2, "cpu_model": "test", "memory_bytes": 1}, "workload": {"p99_target_ms": 250},
        "capacity_rps": 450, "client_bottleneck": False, "db_read_share": None, "cache_hit_ratio": None,
        "demands": {"app": {"cpu_ms_per_request": 2.0, "cpu_ms_per_read": None, "cpu_ms_per_write": None, "cpu_ms_per_upload": None, "rss_bytes": 100_000_000}},
        "steps": [{"rate": 100, "p99_ms": 10, "held": True}, {"rate": 450, "p99_ms": 200, "held": True}, {"rate": 500, "p99_ms": 900, "held": False}],
    }
    body.update(changes)
    path = tmp_path / "report.json"
    path.write_text(json.dumps(body))
    return path


@pytest.fixture(autouse=True)
def _no_blueprint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no ./summit.toml: the blueprint's defaults
    for name in [n for n in os.environ if n.startswith("SUMMIT_")]:
        monkeypatch.delenv(name)


def test_plan_json_has_every_tier_and_its_sources() -> None:
    result = run("--users", "10M", "--json")
    assert result.exit_code == 0, result.output
    p = json.loads(result.stdout)
    assert p["users"] == 10_000_000
    assert set(p["stage"]) >= {"stage", "talk", "structure", "adds", "why"}
    assert set(p["peak_rps"]) >= {"total", "reads", "writes", "uploads", "images"}
    assert set(p["web"]) >= {"processes", "cores", "nodes", "busy_cores", "predicted_p99_ms", "memory_bytes"}
    assert set(p["worker"]) >= {"processes", "cores", "thumbnail_cpu_ms"}
    assert set(p["db"]) >= {"primaries", "shards", "replicas", "replicas_per_shard", "read_qps", "write_tps", "data_bytes"}
    assert set(p["cache"]) >= {"memory_bytes", "nodes", "ops_per_s"}
    assert set(p["objects"]) >= {"stored_bytes", "growth_bytes_per_day", "growth_bytes_per_year"}
    assert set(p["cdn"]) >= {"egress_bytes_per_s", "offload_bytes_per_s", "origin_bytes_per_s", "hit_ratio"}
    assert set(p["queue"]) >= {"messages_per_s", "brokers"}
    assert set(p["next_bottleneck"]) >= {"name", "users", "stage", "action"}
    assert {c["name"] for c in p["ceilings"]} >= {"one web process", "one database for the data"}
    for tier, kinds in p["demands"].items():
        for kind, entry in kinds.items():
            assert entry["source"].startswith(("published: ", "assumed: ")), (tier, kind)
    assert all("source" in a and "doc" in a for a in p["assumptions"].values())


def test_plan_table_and_markdown() -> None:
    result = run("--users", "1M")
    assert result.exit_code == 0, result.output
    assert "web processes" in result.stdout and "next bottleneck" in result.stdout and "1,000,000" in result.stdout
    result = run("--users", "1,10k,10M", "--markdown")
    assert result.exit_code == 0
    assert result.stdout.startswith("| users | 1 | 10,000 | 10,000,000 |")


def test_several_users_in_json() -> None:
    result = run("--users", "1k,1M", "--json")
    assert [p["users"] for p in json.loads(result.stdout)["plans"]] == [1_000, 1_000_000]


def test_measured_demands_replace_published_ones(tmp_path: Path) -> None:
    path = report(tmp_path)
    result = run("--users", "1M", "--bench", str(path), "--json")
    assert result.exit_code == 0, result.output
    p = json.loads(result.stdout)
    web = p["demands"]["web"]
    assert web["read"]["cpu_ms"] == 2.0 and web["read"]["source"].startswith(f"measured: {path}")
    assert p["demands"]["db"]["read"]["source"].startswith("assumed: ")  # not measured: stays published/assumed
    assert p["web"]["rss_bytes_per_process"] == 100_000_000
    assert p["bench"]["capacity_rps"] == 450
    assert any("stage 1 runs the database" in n for n in p["notes"])


def test_report_nulls_text_and_db_share_are_handled() -> None:
    rep = {"stage": "10k", "db_read_share": 0.25, "demands": {
        "app": {"cpu_ms_per_read": 5, "cpu_ms_per_write": None, "cpu_ms_per_upload": "fast"},
        "postgres": {"cpu_ms_per_read": 0.5, "cpu_ms_per_write": 2},
        "mystery": {"cpu_ms_per_request": 1}}}
    values, sources, warnings = resolve(rep, "r.json")
    assert values["web"]["read"] == 5 and values["web"]["write"] == 8.0  # null: published
    assert values["web"]["upload"] == 300.0 and any("cpu_ms_per_upload" in w for w in warnings)
    assert values["db"]["read"] == pytest.approx(2.0)  # 0.5 ms per read request / 0.25 of reads reaching the DB
    assert values["db"]["write"] == 2
    assert any("mystery" in w for w in warnings)


def test_chart_svg_and_html_have_every_series(tmp_path: Path) -> None:
    for name in ("plan.svg", "plan.html"):
        result = run("--users", "10M", "--chart", str(tmp_path / name))
        assert result.exit_code == 0, result.output
        text = (tmp_path / name).read_text()
        for key, *_ in SERIES:
            assert f'data-series="{key}"' in text
        assert "<script" not in text and "href=" not in text and "src=" not in text
        assert "10,000,000 users" in text and 'data-stage="10k"' in text
    assert (tmp_path / "plan.svg").read_text().startswith("<?xml")
    assert (tmp_path / "plan.html").read_text().startswith("<!doctype html>")


def test_chart_series_rise_with_users(tmp_path: Path) -> None:
    from summit.bench.plan import sweep

    data = sweep(Workload())
    assert data["users"][0] == 1 and data["users"][-1] == 10**8
    assert data["peak_rps"][-1] == pytest.approx(data["peak_rps"][0] * 10**8, rel=1e-9)


# ---- check --------------------------------------------------------------------------------------


def test_check_error_on_a_synthetic_report(tmp_path: Path) -> None:
    result = check(load_report(report(tmp_path)), "r.json")
    # one core, 2 ms per request: M/M/1 holds p99 <= 250 ms up to mu - ln(100)/0.25 s = 481.58/s
    predicted = 500 - 1000 * math.log(100) / 250
    assert result["predicted_capacity_rps"] == pytest.approx(predicted, rel=1e-6)
    assert result["utilisation_law_rps"] == pytest.approx(500)
    assert result["error"] == pytest.approx((predicted - 450) / 450, rel=1e-6)  # +7.0%
    assert result["within_tolerance"]
    assert [s["predicted_held"] for s in result["steps"]] == [True, True, False]


def test_check_mixes_per_class_demands_and_sums_tiers(tmp_path: Path) -> None:
    rep = load_report(report(tmp_path, workload={"reads_per_write": 99, "uploads_per_dau": 0.3, "sessions_per_day": 8, "requests_per_session": 15},
                             demands={"app": {"cpu_ms_per_read": 1.0, "cpu_ms_per_write": 2.0, "cpu_ms_per_upload": 101.0},
                                      "postgres": {"cpu_ms_per_request": 0.5}}))
    result = check(rep, cores=2)
    # shares: reads 118.8/120, writes 0.9/120, uploads 0.3/120
    app = (118.8 * 1 + 0.9 * 2 + 0.3 * 101) / 120
    assert result["demands_ms"]["web"] == pytest.approx(app)
    assert result["cpu_ms_per_request"] == pytest.approx(app + 0.5)
    assert result["server_cores"] == 2


def test_check_uses_steps_when_capacity_is_missing(tmp_path: Path) -> None:
    rep = load_report(report(tmp_path, capacity_rps=None))
    assert measured_capacity(rep) == 450
    rep["steps"][0]["held"] = False
    assert measured_capacity(rep) is None
    with pytest.raises(PlanError, match="capacity"):
        check(rep)


def test_check_command_exit_codes(tmp_path: Path) -> None:
    good = report(tmp_path)
    result = CliRunner().invoke(main.app, ["plan", "check", "--bench", str(good)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "+7.0%" in result.stdout
    far = tmp_path / "far.json"
    far.write_text(good.read_text().replace('"capacity_rps": 450', '"capacity_rps": 200'))
    assert CliRunner().invoke(main.app, ["plan", "check", "--bench", str(far)]).exit_code == 0
    result = CliRunner().invoke(main.app, ["plan", "check", "--bench", str(far), "--strict", "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"] == pytest.approx((500 - 1000 * math.log(100) / 250 - 200) / 200, rel=1e-6)


# ---- bad input: a clear message and exit code 2 ---------------------------------------------------


@pytest.mark.parametrize("users", ["0", "-3", "lots", "2.5"])
def test_bad_users_exit_2(users: str) -> None:
    result = run("--users", users)
    assert result.exit_code == 2
    assert "users" in result.stderr


@pytest.mark.parametrize(("content", "message"), [("{not json", "not valid JSON"), ("[1, 2]", "not a JSON object"), ('{"demands": [1]}', "'demands' must be an object")])
def test_malformed_report_exits_2(tmp_path: Path, content: str, message: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    for args in (["--users", "10M", "--bench", str(bad)], ["check", "--bench", str(bad)]):
        result = run(*args)
        assert result.exit_code == 2, args
        assert message in result.stderr


def test_missing_report_exits_2(tmp_path: Path) -> None:
    for args in (["--users", "10M", "--bench", str(tmp_path / "none.json")], ["check", "--bench", str(tmp_path / "none.json")]):
        result = run(*args)
        assert result.exit_code == 2
        assert "no such file" in result.stderr


def test_report_without_demands_cannot_be_checked(tmp_path: Path) -> None:
    result = run("check", "--bench", str(report(tmp_path, demands={})))
    assert result.exit_code == 2 and "no usable demands" in result.stderr


def test_no_users_bad_set_and_bad_chart_exit_2(tmp_path: Path) -> None:
    assert run().exit_code == 2
    result = run("--users", "10M", "--set", "cache_hit_ratio=2")
    assert result.exit_code == 2 and "cache_hit_ratio" in result.stderr
    result = run("--users", "10M", "--chart", str(tmp_path / "plan.png"))
    assert result.exit_code == 2 and ".svg or .html" in result.stderr
    assert not (tmp_path / "plan.png").exists()


# ---- the blueprint's [plan] table ---------------------------------------------------------------


def test_plan_table_in_the_blueprint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "summit.toml").write_text('[workload]\nsessions_per_day = 10\n\n[plan]\ncache_hit_ratio = 0.5\n')
    workload, assumed, origin = load_inputs()
    assert workload.sessions_per_day == 10 and assumed.cache_hit_ratio == 0.5 and "[plan]" in origin
    monkeypatch.setenv("SUMMIT_WORKLOAD__SESSIONS_PER_DAY", "12")  # the environment still wins over the file
    assert load_inputs()[0].sessions_per_day == 12
    result = run("--users", "1M", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["assumptions"]["cache_hit_ratio"]["value"] == 0.5


def test_blueprint_without_plan_table_and_bad_ones(tmp_path: Path) -> None:
    (tmp_path / "summit.toml").write_text("[workload]\nuploads_per_dau = 1\n")
    assert load_inputs()[0].uploads_per_dau == 1
    (tmp_path / "summit.toml").write_text("[plan]\ncache_hitratio = 0.5\n")
    result = run("--users", "1M")
    assert result.exit_code == 2 and "cache_hitratio" in result.stderr
    (tmp_path / "summit.toml").write_text("[workload]\nsessions_per_day = -1\n[plan]\ncdn_hit_ratio = 0.9\n")
    result = run("--users", "1M")
    assert result.exit_code == 2 and "sessions_per_day" in result.stderr
    with pytest.raises(PlanError, match="does not exist"):
        load_inputs(tmp_path / "nope.toml")


def test_make_plans_shares_its_ceilings() -> None:
    plans = make_plans([1, 10**7], Workload())
    assert plans[0]["ceilings"] == plans[1]["ceilings"]
    assert plans[1]["stage"]["stage"] == "5m"


def test_check_skips_in_process_tiers_and_notes_a_lower_bound(tmp_path: Path) -> None:
    rep = load_report(report(tmp_path, steps=[{"rate": 100, "p99_ms": 10, "held": True}, {"rate": 450, "p99_ms": 20, "held": True}],
                             demands={"app": {"cpu_ms_per_request": 2.0, "cpu_ms_per_read": 1.0},
                                      "worker": {"cpu_ms_per_upload": 80.0, "cpu_ms_per_request": 80.0, "in_process": True}}))
    result = check(rep)
    assert result["demands_ms"] == {"web": 2.0}  # the mix figure wins; the in-process worker is inside it
    assert any("lower bound" in n for n in result["notes"])


def test_upload_demands_scale_with_the_photo_size(tmp_path: Path) -> None:
    rep = load_report(report(tmp_path, extra={"photo_bytes": 100_000}, workload={"photo_bytes": 2_000_000},
                             demands={"app": {"cpu_ms_per_read": 4.0, "cpu_ms_per_write": 10.0, "cpu_ms_per_upload": 25.0},
                                      "worker": {"cpu_ms_per_upload": 80.0, "in_process": True}}))
    values, _, warnings = resolve(rep, "r.json")
    assert values["web"]["upload_photo_bytes"] == 100_000
    assert any("100,000-byte photos" in w for w in warnings)
    p = make_plans([1_000_000], Workload(photo_bytes=2_000_000), report=rep)[0]
    assert p["web"]["upload_cpu_ms"] == pytest.approx(25.0 * 20)
    assert p["worker"]["thumbnail_cpu_ms"] == pytest.approx(80.0 * 20)
    published = make_plans([1_000_000], Workload(photo_bytes=1_000_000))[0]
    assert published["worker"]["thumbnail_cpu_ms"] == pytest.approx(590 / 2)
