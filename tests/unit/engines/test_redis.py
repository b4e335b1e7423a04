"""Redis as the control plane runs it: planned at 10k with its endpoint, rendered to loopback with a
password, a memory bound and no persistence, started and probed by the supervisor, stopped cleanly;
its password never on a command line, in ``summit status`` or in a file others can read."""

from __future__ import annotations

import asyncio
import json
import socket
import stat

import pytest

from summit.blueprint import load_blueprint
from summit.engines import plan, publish
from summit.engines import state as stage_state
from summit.engines.redis import RedisServer, ping
from summit.testing.engines import running_redis

pytestmark = pytest.mark.redis


def test_stage_10k_runs_redis_and_its_app_servers_wait_for_it(tmp_path) -> None:  # noqa: ANN001
    blueprint = load_blueprint(environ={}, overrides={"stage": "10k", "data_dir": str(tmp_path), "engines": {"redis": {"maxmemory_mb": 96}}})
    stage = plan(blueprint)
    (redis,) = stage.of_kind("redis")
    assert isinstance(redis, RedisServer) and redis.host == "127.0.0.1"
    assert all("redis" in web.needs for web in stage.of_kind("app"))
    password = redis.password(stage.layout)
    assert stage.endpoints["redis"] == f"redis://:{password}@127.0.0.1:{redis.port}/0"
    publish(stage)
    endpoints = tmp_path / "run" / "endpoints.json"
    assert stat.S_IMODE(endpoints.stat().st_mode) == 0o600  # the URL carries the password
    assert blueprint.ports.cache == "{redis}" and blueprint.port_url("cache") == json.loads(endpoints.read_text())["redis"]
    shown = stage_state.port_urls(blueprint)["cache"]  # what summit status prints
    assert password not in shown and shown == f"redis://:***@127.0.0.1:{redis.port}/0"
    assert stat.S_IMODE((tmp_path / "secrets" / "redis").stat().st_mode) == 0o600
    assert plan(blueprint).engine("redis").port == redis.port  # kept for the next start


def test_stages_before_10k_run_no_redis(tmp_path) -> None:  # noqa: ANN001
    for name in ("1", "1+", "1k"):
        blueprint = load_blueprint(environ={}, overrides={"stage": name, "data_dir": str(tmp_path / name)})
        assert not blueprint.engines.redis.enabled and not plan(blueprint).of_kind("redis")
        assert blueprint.ports.cache.startswith("memory://")


def test_config_is_loopback_with_a_password_a_memory_bound_and_no_persistence(tmp_path) -> None:  # noqa: ANN001
    blueprint = load_blueprint(environ={}, overrides={"data_dir": str(tmp_path), "engines": {"redis": {"enabled": True, "maxmemory_mb": 48}}})
    stage = plan(blueprint, with_app=False)
    redis = stage.engine("redis")
    redis.prepare(stage.layout)
    config = redis.config_path(stage.layout)
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    lines = config.read_text().splitlines()
    password = redis.password(stage.layout)
    for expected in ("bind 127.0.0.1", f"port {redis.port}", "protected-mode yes", f'requirepass "{password}"', "maxmemory 48mb",
                     "maxmemory-policy allkeys-lru", 'save ""', "appendonly no", f'dir "{stage.layout.engine_dir("redis")}"'):
        assert expected in lines, expected
    assert not any(line.startswith("unixsocket") for line in lines)
    command = redis.command(stage.layout)
    assert password not in " ".join(command.argv) and command.user is None  # runs as the caller
    assert command.stop_signal == 15


def test_the_supervisor_starts_probes_and_stops_it() -> None:
    with running_redis(maxmemory_mb=16) as running:
        server, layout = running.server, running.stage.layout
        assert server.ready(layout)
        assert not ping(server.host, server.port, "not the password")
        with socket.create_connection((server.host, server.port), timeout=2) as sock:  # no password: refused
            sock.sendall(b"*1\r\n$6\r\nDBSIZE\r\n")
            assert sock.recv(100).startswith(b"-NOAUTH")
        process = running.supervisor.unit("redis").process
        asyncio.run(running.supervisor.stop())
        assert process.poll() == 0  # SIGTERM: a clean exit (nothing to save)
        assert not server.ready(layout)
        assert not list(layout.engine_dir("redis").glob("*.rdb")) and not list(layout.engine_dir("redis").glob("appendonly*"))
