"""The web tier of stage 1k on real processes: `summit up --stage 1k --detach` as the preset runs it:
HAProxy with TLS at the front door, two WAF processes (nginx + ModSecurity + CRS) in its `web`
backend, each proxying to the two app servers; PostgreSQL behind PgBouncer. Under a steady, bounded
load through the front door (HTTPS, trusting the stage's exported CA), an app server is killed, a
WAF process is killed, and an app server and a WAF process are restarted with `summit restart`:
no request fails, and each comes back into rotation."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from summit.bench.counters import scrape
from summit.testing.stage import RunningStage, detached_stage

pytestmark = [pytest.mark.postgres, pytest.mark.haproxy, pytest.mark.slow,
              pytest.mark.skipif(not Path("/usr/share/modsecurity-crs/rules").is_dir(), reason="modsecurity-crs is not installed")]
WAFS = {"waf-1": "UP", "waf-2": "UP"}


@pytest.fixture(scope="module")
def stage_1k() -> Iterator[RunningStage]:
    with detached_stage("1k") as stage:
        yield stage


def _wait(what: str, check, timeout: float = 60) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"{what}: {result}"
        time.sleep(0.2)


def _served(stage: RunningStage, app_server: str) -> float:
    """How many `GET /healthz` the app server has answered (its own /metrics, on its own port)."""
    snapshot = scrape(f"http://{stage.processes()[app_server]['address']}")
    assert snapshot is not None, f"{app_server}'s /metrics cannot be read"
    return sum(v for labels, v in snapshot.series("summit_http_requests_total") if labels.get("route") == "/healthz")


def _both_app_servers_get_requests(stage: RunningStage, requests: int = 60) -> dict[str, float]:
    """Send ``requests`` GETs through the front door; what each app server answered of them (about half each)."""
    before = {name: _served(stage, name) for name in ("web-1", "web-2")}
    with stage.client(timeout=10) as http:
        for _ in range(requests):
            assert http.get("/healthz").status_code == 200
    return {name: _served(stage, name) - before[name] for name in before}


def _up_in_every_waf(stage: RunningStage, app_server: str) -> bool:
    """No WAF process's upstream marks the app server down (`summit restart` marks it while it drains)."""
    confs = sorted(Path(stage.data_dir, "engines").glob("waf-*/nginx.conf"))
    line = re.compile(rf"^\s*server \S+ max_fails=\S+ fail_timeout=\S+?( down)?;\s*# {re.escape(app_server)}$", re.M)
    found = [line.search(conf.read_text()) for conf in confs]
    return len(found) == 2 and all(m is not None and not m.group(1) for m in found)


def _load(stage: RunningStage, seconds: float, fault, *, clients: int = 4, limit: int = 3000) -> list[int]:  # noqa: ANN001
    """``clients`` keep-alive HTTPS clients sending GET /healthz for ``seconds`` (``limit`` requests
    at most); ``fault()`` runs a second in. The status of every request (0: no answer)."""
    deadline = time.monotonic() + seconds
    statuses: list[int] = []

    def client() -> None:
        with stage.client(timeout=10) as http:
            while time.monotonic() < deadline and len(statuses) < limit:
                try:
                    statuses.append(http.get("/healthz").status_code)
                except httpx.HTTPError:
                    statuses.append(0)

    with ThreadPoolExecutor(clients) as pool:
        running = [pool.submit(client) for _ in range(clients)]
        time.sleep(1.0)
        fault()
        for future in running:
            future.result()
    return statuses


def test_the_front_door_speaks_https_and_sends_requests_through_the_waf_tier_to_both_app_servers(stage_1k) -> None:  # noqa: ANN001
    stage = stage_1k
    assert stage.url.startswith("https://127.0.0.1:") and stage.ca is not None
    _wait("HAProxy's web backend is the WAF tier, both UP", lambda: stage.backend("web") == WAFS or stage.backend("web"), 20)
    with stage.client(timeout=10) as http:
        health = http.get("/healthz")
        assert health.status_code == 200 and health.json()["stage"] == "1k"
        assert health.headers["strict-transport-security"].startswith("max-age=")
        assert http.get("/api/v1/nothing-here").status_code == 404  # through the WAF, to the app
        attack = http.get("/", params={"id": "1' UNION SELECT password FROM users--"})
        assert attack.status_code == 403 and attack.headers["x-request-id"]  # the WAF blocks it before the app
    with httpx.Client(timeout=10) as plain:  # the plain port: a redirect to HTTPS, but /healthz for local checks
        moved = plain.get(stage.http_url + "/login?next=/")
        assert moved.status_code == 301 and moved.headers["location"] == stage.url + "/login?next=/"
        assert plain.get(stage.http_url + "/healthz").status_code == 200
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):  # the stage's CA is in no default trust store
        httpx.get(stage.url + "/healthz", timeout=5)
    for name in ("web-1", "web-2"):  # the app servers: reached by the WAF processes only, on loopback ports of their own
        assert httpx.get(f"http://{stage.processes()[name]['address']}/healthz", timeout=5).status_code == 200
        assert _up_in_every_waf(stage, name)
    served = _both_app_servers_get_requests(stage)
    assert all(count >= 10 for count in served.values()), served


def test_killing_an_app_server_under_load_fails_no_request_and_it_comes_back(stage_1k) -> None:  # noqa: ANN001
    """Each WAF process sends a GET that its app server dropped to the other one (passive checks)."""
    stage = stage_1k
    victim = stage.processes()["web-1"]
    statuses = _load(stage, 4.0, lambda: os.killpg(victim["pid"], signal.SIGKILL))
    failed = [s for s in statuses if s != 200]
    assert len(statuses) > 100 and failed == [], f"{len(failed)} of {len(statuses)} requests failed: {set(failed)}"
    # the supervisor restarts it (backoff 1 s); the WAF processes try it again after fail_timeout (2 s)
    _wait("web-1 restarted and answering", lambda: (p := stage.processes()["web-1"])["restarts"] >= 1 and p["state"] == "running"
          and httpx.get(f"http://{p['address']}/healthz", timeout=2).status_code == 200)
    _wait("web-1 back in rotation behind the WAF tier", lambda: _both_app_servers_get_requests(stage, 20)["web-1"] >= 3)


def test_killing_a_waf_process_under_load_fails_no_request_and_it_comes_back(stage_1k) -> None:  # noqa: ANN001
    """HAProxy retries a GET that a dead WAF process dropped on the other one, and its checks take
    it out; the supervisor starts it again and the checks put it back."""
    stage = stage_1k
    _wait("both WAF processes UP", lambda: stage.backend("web") == WAFS or stage.backend("web"), 20)
    victim = stage.processes()["waf-1"]
    statuses = _load(stage, 4.0, lambda: os.killpg(victim["pid"], signal.SIGKILL))
    failed = [s for s in statuses if s != 200]
    assert len(statuses) > 100 and failed == [], f"{len(failed)} of {len(statuses)} requests failed: {set(failed)}"
    _wait("waf-1 restarted and UP in HAProxy's web backend",
          lambda: stage.processes()["waf-1"]["restarts"] >= 1 and stage.processes()["waf-1"]["pid"] != victim["pid"]
          and stage.backend("web") == WAFS)


def _posts_during(stage: RunningStage, action) -> tuple[list[int], object]:  # noqa: ANN001
    """Three keep-alive HTTPS clients sending POSTs (never sent twice by HAProxy or nginx, so a
    single one lost would show) while ``action()`` runs, for 30 s and 5,000 requests at most; the
    statuses (0: no answer) and what ``action`` returned."""
    deadline = time.monotonic() + 30
    statuses: list[int] = []
    done = False

    def client() -> None:
        with stage.client(timeout=10) as http:
            while not done and time.monotonic() < deadline and len(statuses) < 5000:
                try:  # answers 202 whether or not the account exists (and mails nobody here)
                    statuses.append(http.post("/api/v1/accounts/password-reset", json={"login": "nobody_at_all"}).status_code)
                except httpx.HTTPError:
                    statuses.append(0)

    with ThreadPoolExecutor(3) as pool:
        running = [pool.submit(client) for _ in range(3)]
        time.sleep(0.5)
        try:
            result = action()
            time.sleep(0.5)
        finally:
            done = True
        for future in running:
            future.result()
    return statuses, result


def test_restarting_an_app_server_drains_it_first_so_not_even_a_post_fails(stage_1k) -> None:  # noqa: ANN001
    """`summit restart web-2`: every WAF process, drained in HAProxy in turn, marks it down and
    reloads (no new request goes to it; those in flight finish), it stops and comes back, and
    returns to rotation."""
    stage = stage_1k
    old_pid = stage.processes()["web-2"]["pid"]
    statuses, restart = _posts_during(stage, lambda: stage.summit("restart", "web-2"))
    assert restart.returncode == 0, restart.stdout + restart.stderr
    assert "drained: the WAF tier sends it no new requests" in restart.stderr and "back in rotation" in restart.stderr
    failed = [s for s in statuses if s != 202]
    assert len(statuses) > 50 and failed == [], f"{len(failed)} of {len(statuses)} requests failed: {set(failed)}"
    assert stage.processes()["web-2"]["pid"] != old_pid
    assert _up_in_every_waf(stage, "web-2")
    _wait("web-2 back in rotation behind the WAF tier", lambda: _both_app_servers_get_requests(stage, 20)["web-2"] >= 3)


def test_restarting_a_waf_process_drains_it_in_haproxy_so_not_even_a_post_fails(stage_1k) -> None:  # noqa: ANN001
    """`summit restart waf-2`: HAProxy sends it nothing new, it finishes what it has (SIGQUIT), the
    supervisor starts it again, and HAProxy takes it back."""
    stage = stage_1k
    _wait("both WAF processes UP", lambda: stage.backend("web") == WAFS or stage.backend("web"), 20)
    old_pid = stage.processes()["waf-2"]["pid"]
    statuses, restart = _posts_during(stage, lambda: stage.summit("restart", "waf-2"))
    assert restart.returncode == 0, restart.stdout + restart.stderr
    assert "waf-2 drained: no new requests go to it" in restart.stderr and "waf-2 back in rotation" in restart.stderr
    failed = [s for s in statuses if s != 202]
    assert len(statuses) > 50 and failed == [], f"{len(failed)} of {len(statuses)} requests failed: {set(failed)}"
    assert stage.processes()["waf-2"]["pid"] != old_pid
    _wait("waf-2 UP in HAProxy's web backend", lambda: stage.backend("web") == WAFS or stage.backend("web"), 20)
