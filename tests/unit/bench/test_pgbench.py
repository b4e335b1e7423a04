"""The pgbench -S baseline at a stage whose PostgreSQL summit runs: where it connects (the
primary's PgBouncer as the app's role, with the stage's passfile; the scratch database made by the
superuser straight on the primary), its arguments (one client), and pgbench's report read back."""

from __future__ import annotations

import json
from pathlib import Path

from summit.bench import baselines
from summit.bench.phases.baselines import stage_engines
from summit.blueprint import load_blueprint

URL = "postgresql://summit@127.0.0.1:26001/summit?passfile={d}/secrets/pgpass&reader=summit_reader&replica=127.0.0.1:26002&prepared_statements=off"


def a_stage_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    (data / "engines").mkdir(parents=True)
    (data / "secrets").mkdir()
    (data / "engines" / "ports.json").write_text(json.dumps({"postgres-primary": 25001, "pgbouncer-primary": 26001}))
    (data / "secrets" / "postgres-postgres").write_text("s3cret\n")
    return data


def test_the_target_is_the_primarys_pgbouncer_as_the_app_and_the_primary_as_superuser(tmp_path: Path) -> None:
    data = a_stage_dir(tmp_path)
    target = baselines.pg_target(URL.format(d=data), data)
    assert isinstance(target, baselines.PgTarget)
    assert (target.host, target.port, target.user) == ("127.0.0.1", 26001, "summit")  # through PgBouncer, as the app
    assert target.passfile == data / "secrets" / "pgpass"
    assert (target.admin_port, target.admin_password) == (25001, "s3cret")  # straight on the primary
    assert target.database == "summit_bench"  # a scratch database, never the app's


def test_no_target_says_why(tmp_path: Path) -> None:
    data = a_stage_dir(tmp_path)
    assert "names no passfile" in baselines.pg_target("postgresql://app:pw@db.internal:5432/app", data)
    assert "names no postgres-primary" in baselines.pg_target(URL.format(d=tmp_path), tmp_path)
    (data / "secrets" / "postgres-postgres").unlink()
    assert "superuser's password" in baselines.pg_target(URL.format(d=data), data)


def test_pgbench_runs_one_client_select_only_through_pgbouncer(tmp_path: Path) -> None:
    target = baselines.pg_target(URL.format(d=a_stage_dir(tmp_path)), tmp_path / "data")
    assert isinstance(target, baselines.PgTarget)
    args = baselines.pgbench_args(target, seconds=5)
    assert args[:2] == ["-S", "-n"]
    assert args[args.index("-c") + 1] == "1" and args[args.index("-j") + 1] == "1" and args[args.index("-T") + 1] == "5"
    assert args[args.index("-p") + 1] == "26001" and args[args.index("-U") + 1] == "summit" and args[-1] == "summit_bench"
    assert baselines.pgbench_args(target, seconds=0.2)[args.index("-T") + 1] == "1"  # at least a second


def test_pgbenchs_report_is_read_back() -> None:
    out = """pgbench (15.14 (Debian 15.14-0+deb12u1))
transaction type: <builtin: select only>
scaling factor: 1
number of clients: 1
number of threads: 1
duration: 5 s
number of transactions actually processed: 38932
number of failed transactions: 0 (0.000%)
latency average = 0.128 ms
initial connection time = 3.512 ms
tps = 7786.488001 (without initial connection time)
"""
    assert baselines.parse_pgbench(out) == (7786.488001, 38932)
    assert baselines.parse_pgbench("") == (None, None)


def test_a_stage_with_postgresql_has_its_baseline_once_it_runs(tmp_path: Path) -> None:
    bp = load_blueprint(environ={}, overrides={"stage": "1+", "data_dir": str(tmp_path)})
    assert stage_engines(bp) == {}  # not running: {postgres} names nothing yet, and that is no error
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "endpoints.json").write_text(json.dumps({"postgres": URL.format(d=tmp_path)}))
    assert stage_engines(bp) == {"postgresql": URL.format(d=tmp_path)}
