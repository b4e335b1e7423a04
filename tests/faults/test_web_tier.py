"""The web tier of stage 1k on real processes: `summit up --stage 1k --detach` (HAProxy in front of
two app servers, PostgreSQL behind PgBouncer). One app server is killed under a steady, bounded
load through the front door: no request fails, and the supervisor brings it back into rotation."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from summit.engines.layout import free_port as _free_port

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
SUMMIT = str(Path(sys.executable).with_name("summit"))


@pytest.fixture(scope="module")
def stage_1k() -> Iterator[tuple[str, Path]]:
    root = Path(tempfile.mkdtemp(prefix="summit-1k-", dir="/tmp"))
    root.chmod(0o755)  # the engines' user (postgres, under root) must reach the data directory
    data_dir, port = root / "data", _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUMMIT_")}
    up = subprocess.run([SUMMIT, "up", "--stage", "1k", "--detach", "--port", str(port), "--data-dir", str(data_dir)],
                        capture_output=True, text=True, env=env, timeout=180)
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        yield f"http://127.0.0.1:{port}", data_dir
    finally:
        subprocess.run([SUMMIT, "down", "--data-dir", str(data_dir)], capture_output=True, env=env, timeout=120)
        shutil.rmtree(root, ignore_errors=True)


def _processes(data_dir: Path) -> dict[str, dict]:
    return {p["name"]: p for p in json.loads((data_dir / "summit.json").read_text())["processes"]}


def _backend_states(data_dir: Path) -> dict[str, str]:
    stats_port = json.loads((data_dir / "engines" / "ports.json").read_text())["haproxy-stats"]
    with urllib.request.urlopen(f"http://127.0.0.1:{stats_port}/stats;csv", timeout=2) as response:  # noqa: S310 (loopback)
        lines = response.read().decode().lstrip("# ").splitlines()
    header = lines[0].split(",")
    rows = [dict(zip(header, line.split(","))) for line in lines[1:]]
    return {r["svname"]: r["status"] for r in rows if r["pxname"] == "web" and r["svname"].startswith("web-")}


def test_both_app_servers_answer_behind_the_front_door(stage_1k) -> None:  # noqa: ANN001
    url, data_dir = stage_1k
    deadline = time.monotonic() + 20  # a check may fail once on a busy machine ("UP 1/2"): steady UP soon
    while (states := _backend_states(data_dir)) != {"web-1": "UP", "web-2": "UP"}:
        assert time.monotonic() < deadline, states
        time.sleep(0.2)
    health = httpx.get(url + "/healthz", timeout=5)
    assert health.status_code == 200 and health.json()["stage"] == "1k"


def test_killing_an_app_server_under_load_fails_no_request_and_it_comes_back(stage_1k) -> None:  # noqa: ANN001
    url, data_dir = stage_1k
    victim = _processes(data_dir)["web-1"]
    deadline = time.monotonic() + 4.0
    statuses: list[int] = []

    def client() -> None:
        with httpx.Client(base_url=url, timeout=10) as http:
            while time.monotonic() < deadline and len(statuses) < 3000:
                try:
                    statuses.append(http.get("/healthz").status_code)
                except httpx.HTTPError:
                    statuses.append(0)

    with ThreadPoolExecutor(4) as pool:
        running = [pool.submit(client) for _ in range(4)]
        time.sleep(1.0)
        os.killpg(victim["pid"], signal.SIGKILL)
        for future in running:
            future.result()
    failed = [s for s in statuses if s != 200]
    assert len(statuses) > 100 and failed == [], f"{len(failed)} of {len(statuses)} requests failed: {set(failed)}"
    deadline = time.monotonic() + 60  # the supervisor restarts it (backoff 1 s), HAProxy's checks see it UP
    while not (_processes(data_dir)["web-1"]["restarts"] >= 1 and _backend_states(data_dir).get("web-1") == "UP"):
        assert time.monotonic() < deadline, f"web-1 did not come back: {_processes(data_dir)['web-1']}, {_backend_states(data_dir)}"
        time.sleep(0.2)


def test_restarting_an_app_server_drains_it_first_so_not_even_a_post_fails(stage_1k) -> None:  # noqa: ANN001
    """`summit restart web-2`: HAProxy sends it no new request, those in flight finish, it stops and
    comes back, and returns to rotation. POSTs are never retried by HAProxy, so a single one lost
    to the restart would show."""
    url, data_dir = stage_1k
    old_pid = _processes(data_dir)["web-2"]["pid"]
    deadline = time.monotonic() + 30
    statuses: list[int] = []
    done = False

    def client() -> None:
        with httpx.Client(base_url=url, timeout=10) as http:
            while not done and time.monotonic() < deadline and len(statuses) < 5000:
                try:  # answers 202 whether or not the account exists (and mails nobody here)
                    statuses.append(http.post("/api/v1/accounts/password-reset", json={"login": "nobody_at_all"}).status_code)
                except httpx.HTTPError:
                    statuses.append(0)

    with ThreadPoolExecutor(3) as pool:
        running = [pool.submit(client) for _ in range(3)]
        time.sleep(0.5)
        restart = subprocess.run([SUMMIT, "restart", "web-2", "--data-dir", str(data_dir)], capture_output=True, text=True, timeout=180)
        time.sleep(0.5)
        done = True
        for future in running:
            future.result()
    assert restart.returncode == 0, restart.stdout + restart.stderr
    assert "drained" in restart.stderr and "back in rotation" in restart.stderr
    failed = [s for s in statuses if s != 202]
    assert len(statuses) > 50 and failed == [], f"{len(failed)} of {len(statuses)} requests failed: {set(failed)}"
    assert _processes(data_dir)["web-2"]["pid"] != old_pid
    assert _backend_states(data_dir)["web-2"].startswith("UP")
