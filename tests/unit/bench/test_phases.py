"""The phases of ``summit bench run``, each on its own inputs: the raw endpoints' requests, a mix
step's figures, the demands, the counters filled into the report, the stage's blueprint, and the
key figures."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest
from rich.console import Console

from summit.bench import counters, headline, html, loadgen, report
from summit.bench.options import Options
from summit.bench.phases import assemble, demands, mix, raw, stage
from summit.bench.phases.baselines import stage_engines
from summit.bench.phases.seeding import MediaPhoto
from summit.bench.seed import Seeded, SeedPost, SeedUser
from summit.bench.session import Session
from summit.blueprint import load_blueprint

DATA = Seeded("bx", users=[SeedUser("bx_00000", "tok0"), SeedUser("bx_00001", "tok1")], posts=[SeedPost("42", "bx_00000", "/media/p/small.jpg")])
MEDIA = MediaPhoto("/media/p/big.jpg", b"\xff\xd8" + b"x" * 1000)


@pytest.fixture
def session(tmp_path: Path):  # noqa: ANN201
    s = Session(Options(duration=2.0, out=tmp_path), Console(file=io.StringIO()))
    yield s
    s.cleanup()


# ---- raw endpoints ----
def test_every_raw_endpoint_has_a_distinct_short_name_and_a_request() -> None:
    assert len(raw.BY_KEY) == len(raw.ENDPOINTS)
    assert {"healthz", "post", "feed", "media", "photo", "profile", "like", "follow", "comment"} <= set(raw.BY_KEY)
    for endpoint in raw.ENDPOINTS:
        path, headers, body = raw.request_of(endpoint, DATA, MEDIA)
        assert path.startswith("/")
        assert ("Authorization" in headers) == endpoint.auth
        assert (headers.get("Content-Type") == "application/json") == (body is not None)


def test_raw_requests_are_warm_and_the_media_one_needs_the_photo() -> None:
    assert raw.request_of(raw.BY_KEY["healthz"], DATA, None) == ("/healthz", {}, None)
    assert raw.request_of(raw.BY_KEY["feed"], DATA, None) == ("/api/v1/feed", {"Authorization": "Bearer tok0"}, None)
    assert raw.request_of(raw.BY_KEY["post"], DATA, None)[0] == "/api/v1/posts/42"
    assert raw.request_of(raw.BY_KEY["photo"], DATA, None)[0] == "/media/p/small.jpg"
    assert raw.request_of(raw.BY_KEY["media"], DATA, MEDIA)[0] == "/media/p/big.jpg"
    assert raw.request_of(raw.BY_KEY["media"], DATA, None) is None  # no photo posted: the run skips it


# ---- a mix step ----
def results(n: int, *, latency: float = 0.01, failed: int = 0) -> list[loadgen.Result]:
    out = []
    for i in range(n):
        bad = i < failed
        out.append(loadgen.Result("feed", i * 0.1, i * 0.1, i * 0.1 + latency, 0 if bad else 200, not bad, "timeout" if bad else "", i * 0.1))
    return out


def test_a_step_is_summarized_from_its_results_and_cpu(session: Session) -> None:
    workload = load_blueprint(environ={}).workload
    u0 = mix._Usage(busy=10.0, wait=None, client=1.0, server=0.0, wall=100.0)
    u1 = mix._Usage(busy=11.0, wait=None, client=1.2, server=0.0, wall=102.0)
    step = mix.summarize_step(session, 10.0, results(20), 0.0, u0, u1, workload)
    assert set(step) >= set(report.STEP_KEYS)
    assert step["held"] and not step["client_bound"]
    assert step["achieved_rps"] == pytest.approx(10.0) and step["answered"] == 20
    assert step["client_cpu"] == pytest.approx(0.1)
    assert step["server_cpu"] is None and step["server_cpu_seconds"] is None  # no server process seen
    assert step["other_cpu"] == pytest.approx(0.4)
    failing = mix.summarize_step(session, 10.0, results(20, failed=2), 0.0, u0, u1, workload)
    assert not failing["held"] and failing["errors_by_kind"] == {"timeout": 2}


# ---- demands ----
def test_demands_come_from_the_held_steps_and_the_probes() -> None:
    bp = load_blueprint(environ={})
    rows = [{"key": k, "cpu_ms_per_request": v} for k, v in {"feed": 2.0, "photo": 1.0, "profile": 3.0, "like": 5.0, "comment": 7.0, "follow": 6.0}.items()]
    probe = {"upload_web_ms": 40.0, "upload_worker_ms": 100.0, "signup_ms": 150.0}
    cpu = demands.per_scenario_cpu(rows, probe)
    assert cpu["photo"] == 1.0 and cpu["signup"] == 150.0 and cpu["post_photo"] == 140.0
    steps = [
        {"held": True, "server_cpu_seconds": 1.0, "answered": 500},
        {"held": True, "server_cpu_seconds": 3.0, "answered": 1000},
        {"held": False, "server_cpu_seconds": 9.0, "answered": 100},  # not held: not counted
    ]
    found = demands.app_demands(steps, cpu, probe, 300 << 20, bp)
    assert found["app"]["cpu_ms_per_request"] == pytest.approx(4000 / 1500)
    assert found["app"]["cpu_ms_per_read"] == pytest.approx(0.4 * 2 + 0.4 * 1 + 0.2 * 3)
    assert found["app"]["rss_bytes"] == 300 << 20 and set(found["app"]) >= set(report.DEMAND_KEYS)
    assert found["worker"]["cpu_ms_per_upload"] == 100.0 and found["worker"]["in_process"] is True
    assert demands.app_demands([{"held": False, "server_cpu_seconds": 1.0, "answered": 0}], cpu, probe, 0, bp) == {}
    assert "worker" not in demands.app_demands(steps, cpu, {**probe, "upload_worker_ms": None}, 0, bp)


# ---- counters into the report ----
def exposition(scale: int = 1, *, with_new: bool = True) -> counters.Snapshot:
    """A scrape of a server that answered 4 feed reads per ``scale``, 1 of them with 2 SQL
    statements, and 3 cache hits and 1 miss (``scale`` 0: the scrape before the phase)."""
    registry = CollectorRegistry()
    requests = Counter("summit_http_requests", "r", ["method", "route", "status"], registry=registry)
    requests.labels("GET", "/api/v1/feed", "200").inc(4 * scale)
    if with_new:
        cache = Counter("summit_cache_lookups", "c", ["namespace", "result"], registry=registry)
        cache.labels("feed", "hit").inc(3 * scale)
        cache.labels("feed", "miss").inc(1 * scale)
        Counter("summit_sql_statements", "s", ["method", "route"], registry=registry).labels("GET", "/api/v1/feed").inc(2 * scale)
        Counter("summit_http_requests_reaching_sql", "q", ["method", "route"], registry=registry).labels("GET", "/api/v1/feed").inc(scale)
        Counter("summit_port_operations", "o", ["port", "operation"], registry=registry)
    return counters.parse(generate_latest(registry).decode())


def test_the_mix_counters_fill_the_report(session: Session) -> None:
    r = report.empty_report("1", "now", {"cores": 2, "cpu_model": "x", "memory_bytes": 1}, {})
    steps = [counters.delta(exposition(0), exposition(1)), counters.delta(exposition(1), exposition(3))]
    assemble.fill_counters(r, session, steps, [{"name": "feed", "counters": {"sql_statements_per_request": 0.5}}])
    assert r["cache_hit_ratio"] == 0.75 and r["db_read_share"] == 0.25
    assert r["extra"]["counters"]["mix"]["feed_db_share"] == 0.25
    assert r["extra"]["counters"]["raw"]["feed"] == {"sql_statements_per_request": 0.5}
    assert not any("not measured" in n for n in session.notes)


def test_an_older_server_leaves_the_figures_not_measured_and_says_so(session: Session) -> None:
    r = report.empty_report("1", "now", {"cores": 2, "cpu_model": "x", "memory_bytes": 1}, {})
    old = counters.delta(exposition(0, with_new=False), exposition(1, with_new=False))
    assemble.fill_counters(r, session, [old], [])
    assert r["cache_hit_ratio"] is None and r["db_read_share"] is None
    assert any("cache hit ratio" in n and "not measured" in n and "summit_cache_lookups_total" in n for n in session.notes)
    page = html.render(r)
    assert "Cache and database" in page and "not measured" in page


# ---- the stage ----
def test_a_stage_started_here_uses_its_own_data_and_ignores_summit_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SUMMIT_PORTS__MAIL", "smtp://mail.example.com")  # not passed to the server started here
    bp = stage.blueprint_for(Options(start=True), tmp_path / "work")
    assert bp.data_dir == tmp_path / "work" / "data"
    assert bp.port_url("mail") == f"outbox://{tmp_path}/work/data/outbox"
    (tmp_path / "summit.toml").write_text('[workload]\np99_target_ms = 400\n')
    assert stage.blueprint_for(Options(start=True), tmp_path / "work").workload.p99_target_ms == 400  # ./summit.toml is passed on
    assert stage.config_file(Options(start=True)) == tmp_path / "summit.toml"


def test_only_redis_and_postgresql_have_engine_baselines() -> None:
    assert stage_engines(load_blueprint(environ={})) == {}
    bp = load_blueprint(environ={}, overrides={"ports": {"cache": "redis://127.0.0.1:6379/0"}})
    assert stage_engines(bp) == {"redis": "redis://127.0.0.1:6379/0"}


# ---- key figures ----
def test_key_figures_are_ratios_of_the_same_run() -> None:
    r = report.empty_report("1", "now", {"cores": 2, "cpu_model": "x", "memory_bytes": 1}, {})
    r["baselines"]["asgi_hello_rps"] = 10_000.0
    r["capacity_rps"] = 400.0
    r["raw"] = [
        {"name": "healthz", "key": "healthz", "ratio_to_hello": 0.5},
        {"name": "feed", "key": "feed", "ratio_to_hello": 0.1, "counters": {"sql_statements_per_request": 0.0}},
        {"name": "media 200k", "key": "media", "ratio_to_hello": 0.2, "ratio_to_nginx_same_file": 0.35},
    ]
    r["extra"] = {"stage": {"rss_at_rest_bytes": 120_000_000, "first_start_s": 1.5, "restart_s": None}}
    figs = {f.key: f.value for f in headline.figures(r)}
    assert figs["healthz_per_hello"] == 0.5 and figs["feed_per_hello"] == 0.1 and figs["media_per_nginx"] == 0.35
    assert figs["mix_per_hello"] == pytest.approx(0.04)
    assert figs["sql_per_warm_feed"] == 0.0  # measured zero, not "not measured"
    assert figs["rss_at_rest_mb"] == 120.0 and figs["first_start_s"] == 1.5
    assert figs["post_per_hello"] is None and figs["restart_s"] is None and figs["cache_hit_ratio"] is None
    old = report.empty_report("1", "now", {"cores": 2, "cpu_model": "x", "memory_bytes": 1}, {})
    rows = {label: (va, vb, ratio) for label, _, va, vb, ratio in headline.compare(old, r)}
    assert rows["GET /healthz / ASGI hello"] == (None, 0.5, None)


# ---- a stage with engines: its parts, measured apart ----
RECORD = {
    "pid": 100, "ready": True,
    "processes": [
        {"name": "postgres-primary", "kind": "postgres", "pid": 101},
        {"name": "postgres-replica-1", "kind": "postgres", "pid": 102},
        {"name": "pgbouncer-primary", "kind": "pgbouncer", "pid": 103},
        {"name": "pgbouncer-replica-1", "kind": "pgbouncer", "pid": None},  # restarting: no pid now
        {"name": "app", "kind": "app", "pid": 104},
    ],
}


def test_the_parts_of_a_stage_come_from_its_state_record() -> None:
    parts = stage.parts_of(RECORD, 100)
    assert list(parts) == ["app", "database", "supervisor"]
    assert parts["app"].pids == (104,) and parts["app"].recursive  # granian's parent and its worker
    assert parts["database"].pids == (101, 102, 103) and parts["database"].proportional  # backends share buffers: PSS
    assert parts["supervisor"].pids == (100,) and not parts["supervisor"].recursive  # alone: its tree is the whole stage
    assert stage.parts_of({"pid": 100, "processes": []}, 100) == {} and stage.parts_of(None, 100) == {}
    behind = {"processes": [{"kind": "haproxy", "pid": 105}, {"kind": "app", "pid": 106}, {"kind": "app", "pid": 107}, {"kind": "x", "pid": 108}]}
    parts = stage.parts_of(behind, 100)
    assert parts["app"].pids == (106, 107) and parts["proxy"].pids == (105,) and parts["other engines"].pids == (108,)


def test_the_server_note_says_what_the_server_cpu_includes() -> None:
    note = stage.server_note(load_blueprint(environ={}, overrides={"stage": "10k"}))
    assert "supervisor" in note and "PgBouncer" in note and "2 streaming replicas" in note and "demands.database" in note
    assert "replicas" not in stage.server_note(load_blueprint(environ={}, overrides={"stage": "1+"}))


def test_the_engines_user_may_pass_through_the_bench_directory(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir(mode=0o700)
    stage.engines_can_enter(work)
    assert work.stat().st_mode & 0o777 == 0o711  # search, not read: its names stay unlisted


def test_a_step_keeps_the_cpu_of_each_part(session: Session) -> None:
    workload = load_blueprint(environ={}).workload
    u0 = mix._Usage(busy=10.0, wait=None, client=1.0, server=5.0, wall=100.0, parts={"app": 3.0, "database": 1.0, "supervisor": 1.0})
    u1 = mix._Usage(busy=11.0, wait=None, client=1.2, server=6.0, wall=102.0, parts={"app": 3.6, "database": 1.3, "supervisor": 1.0})
    session.server_pid = 100
    step = mix.summarize_step(session, 10.0, results(20), 0.0, u0, u1, workload)
    assert step["server_cpu_seconds"] == pytest.approx(1.0)
    assert step["server_cpu_seconds_by_part"] == pytest.approx({"app": 0.6, "database": 0.3, "supervisor": 0.0})
    assert mix._parts(step) == " (app 30%, database 15%, supervisor 0%)"
    alone = mix.summarize_step(session, 10.0, results(20), 0.0, mix._Usage(10.0, None, 1.0, 5.0, 100.0), mix._Usage(11.0, None, 1.2, 6.0, 102.0), workload)
    assert "server_cpu_seconds_by_part" not in alone and mix._parts(alone) == ""  # stage 1: one process


def test_demands_split_the_app_and_the_database_at_a_stage_with_engines() -> None:
    bp = load_blueprint(environ={}, overrides={"stage": "10k"})
    rows = [
        {"key": k, "cpu_ms_per_request": app + db, "cpu_ms_by_part": {"app": app, "database": db, "supervisor": 0.0}}
        for k, (app, db) in {"feed": (2.0, 0.0), "photo": (1.0, 0.0), "profile": (3.0, 1.0), "like": (5.0, 1.0), "comment": (7.0, 2.0), "follow": (6.0, 1.0)}.items()
    ]
    probe = {"upload_web_ms": 40.0, "upload_worker_ms": 100.0, "signup_ms": 150.0}
    steps = [
        {"held": True, "server_cpu_seconds": 2.0, "server_cpu_seconds_by_part": {"app": 1.5, "database": 0.4, "supervisor": 0.1}, "answered": 500},
        {"held": False, "server_cpu_seconds": 9.0, "server_cpu_seconds_by_part": {"app": 7.0, "database": 2.0}, "answered": 100},
    ]
    app_cpu = demands.per_scenario_cpu(rows, probe, part="app")
    assert app_cpu["profile"] == 3.0 and app_cpu["signup"] == 150.0  # probes: the whole server's
    found = demands.app_demands(steps, app_cpu, probe, 200 << 20, bp, part="app")
    assert found["app"]["cpu_ms_per_request"] == pytest.approx(3.0)  # 1.5 s / 500, the app's tree only
    assert found["app"]["cpu_ms_per_read"] == pytest.approx(0.4 * 2 + 0.4 * 1 + 0.2 * 3)
    assert "database runs apart" in found["app"]["processes"]
    db = demands.database_demands(steps, rows, 90 << 20, bp)["database"]
    assert set(db) >= set(report.DEMAND_KEYS)
    assert db["cpu_ms_per_request"] == pytest.approx(0.8) and db["cpu_ms_per_read"] is None
    assert db["cpu_ms_per_write"] == pytest.approx((0.6 * 1 + 0.2 * 2 + 0.15 * 1) / 0.95)  # sign-ups: no raw run
    assert db["rss_bytes"] == 90 << 20 and "2 streaming replicas" in db["processes"]
    assert demands.database_demands([{"held": False, "server_cpu_seconds_by_part": {}, "answered": 0}], rows, 0, bp) == {}


def test_the_post_read_is_set_against_pgbench(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    from summit.bench import wrk
    from summit.bench.phases.baselines import Baselines

    ticks = iter([{"app": 1.0, "database": 0.5}, {"app": 3.0, "database": 0.6}])
    monkeypatch.setattr(session, "part_cpu", lambda: next(ticks))
    monkeypatch.setattr(raw.baselines, "measure_wrk", lambda *a, **k: (wrk.WrkResult(2000, 1.0, 0, 1.0, 2.0, 3.0), 1.2))
    base = Baselines(values={"asgi_hello_rps": 20_000.0, "pgbench_tps": 8_000.0})
    row = raw.measure_one(session, "http://127.0.0.1:9", raw.BY_KEY["post"], raw.request_of(raw.BY_KEY["post"], DATA, None), base)
    assert row["ratio_to_hello"] == 0.1 and row["ratio_to_pgbench"] == 0.25
    assert row["cpu_ms_by_part"] == pytest.approx({"app": 1.0, "database": 0.05})
    assert row["counters"]["sql_statements_per_request"] is None  # no /metrics at that address: not measured
    r = report.empty_report("1+", "now", {"cores": 2, "cpu_model": "x", "memory_bytes": 1}, {})
    r["raw"] = [row]
    assert {f.key: f.value for f in headline.figures(r)}["post_per_pgbench"] == 0.25


# ---- from stage 1k: several app servers, HAProxy in front, the content tier at 10k ----
RECORD_10K = {
    "pid": 200, "ready": True,
    "processes": [
        {"name": "postgres-primary", "kind": "postgres", "pid": 201, "address": "127.0.0.1:21001"},
        {"name": "pgbouncer-primary", "kind": "pgbouncer", "pid": 202, "address": "127.0.0.1:21002"},
        {"name": "redis", "kind": "redis", "pid": 203, "address": "127.0.0.1:21003"},
        {"name": "seaweedfs", "kind": "seaweedfs", "pid": 204, "address": "127.0.0.1:21004"},
        {"name": "web-1", "kind": "app", "pid": 205, "address": "127.0.0.1:21005"},
        {"name": "web-2", "kind": "app", "pid": 206, "address": "127.0.0.1:21006"},
        {"name": "varnish-regional", "kind": "varnish", "pid": 207, "address": "127.0.0.1:21007"},
        {"name": "varnish-edge", "kind": "varnish", "pid": 208, "address": "127.0.0.1:21008"},
        {"name": "haproxy", "kind": "haproxy", "pid": 209, "address": "127.0.0.1:8000"},
        {"name": "waf-1", "kind": "waf", "pid": 210, "address": "127.0.0.1:21010"},
        {"name": "waf-2", "kind": "waf", "pid": 211, "address": "127.0.0.1:21011"},
    ],
}


def test_every_engine_of_stage_10k_is_a_part_of_the_server() -> None:
    parts = stage.parts_of(RECORD_10K, 200)
    assert list(parts) == ["app", "database", "cache", "objects", "proxy", "cdn", "waf", "supervisor"]
    assert parts["app"].pids == (205, 206)  # both app servers, each with its granian worker
    assert parts["database"].pids == (201, 202) and parts["database"].proportional
    assert parts["cache"].pids == (203,) and parts["objects"].pids == (204,) and parts["proxy"].pids == (209,)
    assert parts["cdn"].pids == (207, 208) and not parts["cdn"].proportional  # both tiers
    assert parts["waf"].pids == (210, 211)  # every WAF process
    note = stage.server_note(load_blueprint(environ={}, overrides={"stage": "10k"}), parts)
    for name in ("Redis", "SeaweedFS", "HAProxy", "Varnish", "PgBouncer", "2 streaming replicas", "supervisor", "ModSecurity"):
        assert name in note, name


def test_each_app_server_is_scraped_on_its_own_port() -> None:
    assert stage.app_server_urls(RECORD_10K) == ["http://127.0.0.1:21005", "http://127.0.0.1:21006"]  # not HAProxy's :8000
    assert stage.app_server_urls(RECORD) == []  # no addresses recorded: the public URL's counters
    assert stage.app_server_urls(None) == []


def test_the_parts_a_stage_runs_before_it_runs() -> None:
    assert stage.default_parts(load_blueprint(environ={}, overrides={"stage": "1+"})) == ["app", "database", "supervisor"]
    assert stage.default_parts(load_blueprint(environ={}, overrides={"stage": "1k"})) == ["app", "database", "proxy", "waf", "supervisor"]
    assert stage.default_parts(load_blueprint(environ={}, overrides={"stage": "10k"})) == [
        "app", "database", "cache", "objects", "proxy", "cdn", "waf", "supervisor",
    ]


def test_the_report_says_the_engines_float(session: Session) -> None:
    session.o.start = True
    session.server_core, session.client_core = 0, 1
    note = stage.pinning_note(session, load_blueprint(environ={}, overrides={"stage": "10k"}))
    assert "web-1, web-2" in note and "pinned to CPU 0" in note and "to CPU 1" in note and "float" in note
    assert stage.pinning_note(session, load_blueprint(environ={})) is None  # stage 1: one process, pinned from the start
    session.server_core = None
    assert stage.pinning_note(session, load_blueprint(environ={}, overrides={"stage": "10k"})) is None


def test_haproxy_requests_in_progress_come_from_its_statistics(tmp_path: Path) -> None:
    from summit.bench import frontdoor

    csv = (
        "# pxname,svname,qcur,qmax,scur,smax\n"
        "public,FRONTEND,,,3,10\n"
        "web,web-1,0,0,2,5\nweb,web-2,0,0,1,5\nweb,BACKEND,0,0,3,9\n"
        "cdn,varnish-edge,0,0,1,1\ncdn,BACKEND,0,0,1,1\n"
        "stats,FRONTEND,,,1,1\n"
    )
    assert frontdoor.in_flight_from_csv(csv) == 4  # the backends' streams, not the front end's connections
    assert frontdoor.stats_url(tmp_path) is None
    (tmp_path / "engines").mkdir()
    (tmp_path / "engines" / "ports.json").write_text('{"haproxy-stats": 23456, "web-1": 23457}')
    assert frontdoor.stats_url(tmp_path) == "http://127.0.0.1:23456"


def test_raw_reads_are_set_against_the_same_trip_through_the_front_door(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    from summit.bench import wrk
    from summit.bench.phases.baselines import Baselines

    monkeypatch.setattr(raw.baselines, "measure_wrk", lambda *a, **k: (wrk.WrkResult(4000, 2.0, 0, 1.0, 2.0, 3.0), 2.5))
    monkeypatch.setattr(raw, "cdn_check", lambda url, path: {"x_cache": "HIT", "tier": "edge", "status": 200})
    monkeypatch.setattr(session, "wait_idle", lambda **k: True)
    base = Baselines(values={"asgi_hello_rps": 20_000.0, "hello_front_door_rps": 10_000.0, "nginx_photo_rps": 8_000.0, "nginx_front_door_photo_rps": 2_500.0})
    feed = raw.measure_one(session, "http://127.0.0.1:9", raw.BY_KEY["feed"], raw.request_of(raw.BY_KEY["feed"], DATA, None), base)
    assert feed["ratio_to_hello"] == 0.1 and feed["ratio_to_hello_front_door"] == 0.2
    assert "cdn" not in feed and "ratio_to_nginx_front_door" not in feed
    media = raw.measure_one(session, "http://127.0.0.1:9", raw.BY_KEY["media"], raw.request_of(raw.BY_KEY["media"], DATA, MEDIA), base)
    assert media["ratio_to_nginx_same_file"] == 0.25 and media["ratio_to_nginx_front_door"] == 0.8
    assert media["cdn"] == {"x_cache": "HIT", "tier": "edge", "status": 200}
    r = report.empty_report("10k", "now", {"cores": 2, "cpu_model": "x", "memory_bytes": 1}, {})
    r["raw"] = [feed, media]
    figs = {f.key: f for f in headline.figures(r)}
    assert figs["feed_per_hello_front_door"].value == 0.2 and figs["feed_per_hello_front_door"].met is False  # >= 0.5
    assert figs["media_per_nginx_front_door"].value == 0.8 and figs["media_per_nginx_front_door"].met is True  # >= 0.8
    assert figs["cpu_ms_per_feed_read"].value == 2.5 and figs["cpu_ms_per_feed_read"].met is None  # no target: 10k against 1
    stage1 = report.empty_report("1", "now", {"cores": 2, "cpu_model": "x", "memory_bytes": 1}, {})
    stage1["raw"] = [{"name": "feed", "key": "feed", "ratio_to_hello": 0.04, "cpu_ms_per_request": 1.0}]
    assert {f.key: f.value for f in headline.figures(stage1)}["feed_per_hello_front_door"] is None  # no front door at stage 1
    rows = {label: (va, vb, ratio) for label, _, va, vb, ratio in headline.compare(stage1, r)}
    assert rows["server CPU ms per warm feed read (every process of the stage)"] == (1.0, 2.5, 2.5)  # 10k against 1


def test_the_warm_cache_share_of_feed_reads_has_a_target(session: Session) -> None:
    r = report.empty_report("10k", "now", {"cores": 2, "cpu_model": "x", "memory_bytes": 1}, {})
    r["extra"] = {"counters": {"mix": {"feed_db_share": 0.04}}}
    figs = {f.key: f for f in headline.figures(r)}
    assert figs["feed_db_share"].target == "< 0.1" and figs["feed_db_share"].met is True
    entry = headline.as_dict(r)["feed_db_share"]
    assert entry["met"] is True and entry["value"] == 0.04
    assert "met" in html.render(r)


def test_targets_are_read_from_their_text() -> None:
    assert headline.meets(0.5, ">= 0.5") is True and headline.meets(0.49, ">= 0.5") is False
    assert headline.meets(0.09, "< 0.1") is True and headline.meets(0.1, "< 0.1") is False
    assert headline.meets(0.0, "0") is True and headline.meets(0.001, "0") is False
    assert headline.meets(1.9, "< 2") is True and headline.meets(None, ">= 0.4") is None and headline.meets(3.0, "-") is None


def test_only_the_raw_endpoints_asked_for_run(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[str] = []
    monkeypatch.setattr(raw, "measure_one", lambda s, url, endpoint, request, base: ran.append(endpoint.key))
    session.o.raw_only = ("feed", "media")
    raw.measure(session, "http://127.0.0.1:9", DATA, MEDIA, None)
    assert ran == ["feed", "media"]


def test_settling_after_a_raw_run_is_bounded() -> None:
    s = Session(Options(), Console(file=io.StringIO()))
    try:
        assert raw.settle(s, "http://127.0.0.1:9", timeout=5) < 2  # nothing listening: no queue to wait for
        s.haproxy_stats = "http://127.0.0.1:9"  # a front door whose statistics do not answer: nothing to wait for
        assert raw.settle(s, "http://127.0.0.1:9", timeout=5) < 2
    finally:
        s.cleanup()


def test_reads_are_made_once_before_their_run_so_it_starts_warm(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    from summit.bench import wrk
    from summit.bench.phases.baselines import Baselines

    primed: list[str] = []
    checked: list[str] = []
    monkeypatch.setattr(raw, "prime", lambda url, path, headers: primed.append(path))
    monkeypatch.setattr(raw, "cdn_check", lambda url, path: checked.append(path))
    monkeypatch.setattr(raw.baselines, "measure_wrk", lambda *a, **k: (wrk.WrkResult(100, 1.0, 0, 1.0, 2.0, 3.0), 1.0))
    monkeypatch.setattr(session, "wait_idle", lambda **k: True)
    for key in ("feed", "post", "photo", "like", "comment"):
        raw.measure_one(session, "http://127.0.0.1:9", raw.BY_KEY[key], raw.request_of(raw.BY_KEY[key], DATA, MEDIA), Baselines())
    assert primed == ["/api/v1/feed", "/api/v1/posts/42"]  # the writes are not made twice
    assert checked == ["/media/p/small.jpg"]  # a photo is fetched twice to see whether a CDN has it
