"""Blocks at the edge: HAProxy as the control plane runs it (with the Shield's blocklist map), in
front of a small real server that answers 404 for ``/media/gone...``, or of the real app. A scanner
on 127.0.0.2 is found in HAProxy's real log by ``summit guard`` with automatic blocking on, and
blocked at the front door (403, every request) while 127.0.0.3 keeps its 200s; the block expires by
itself. Credential stuffing from 127.0.0.2 against the app behind HAProxy gets it blocked the same way.
``summit shield block``/``unblock``/``clear``/``show`` drive the same list; a HAProxy started
while a block holds loads it from the file; exempt sources are never blocked; each block and lift
is an audit record."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

import summit.cli.shield  # noqa: F401  (registers the commands)
from summit.blueprint.model import Guard, GuardBlocking
from summit.cli.main import app as cli
from summit.engines import Layout, Supervisor
from summit.engines.haproxy import HAProxy
from summit.engines.shield import Shield, blocklist_map, rules, served_blocks
from summit.security.audit import Query, search
from summit.security.blocks import Block, Blocklist
from summit.security.guard import Detector
from summit.security.guard.blocking import Blocker
from summit.testing.engines import SmallOrigin
from summit.testing.http import assert_error_body

pytestmark = [
    pytest.mark.haproxy,
    pytest.mark.skipif(not (shutil.which("haproxy") or Path("/usr/sbin/haproxy").exists()), reason="needs HAProxy"),
]

SCANNER, OTHER = "127.0.0.2", "127.0.0.3"


class Front:
    def __init__(self, proxy: HAProxy, layout: Layout):
        self.proxy, self.layout = proxy, layout

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.proxy.port}"

    def get(self, source: str, path: str = "/", **headers: str) -> httpx.Response:
        with httpx.Client(base_url=self.url, transport=httpx.HTTPTransport(local_address=source), timeout=10) as http:
            return http.get(path, headers=headers)

    def served(self) -> dict[str, int]:
        return served_blocks(self.proxy.socket_path(self.layout), blocklist_map(self.layout.data_dir))


@pytest.fixture
async def front(tmp_path: Path) -> AsyncIterator[Callable]:
    """``await front(shield)``: HAProxy in front of a small origin, its ports kept in the data
    directory as a stage keeps them (so `summit shield --data-dir` and the guard find it)."""
    supervisors = []

    async def start(shield: Shield | None = None) -> Front:
        layout = Layout(tmp_path)
        ports = layout.ports(["haproxy", "haproxy-stats"])
        web = SmallOrigin("web-1")
        proxy = HAProxy("haproxy", "127.0.0.1", ports["haproxy"], ports["haproxy-stats"], [web], check_interval_ms=200,
                        shield=shield or Shield())
        supervisor = Supervisor(layout, [web, proxy], on_event=lambda text: None)
        supervisors.append(supervisor)
        await supervisor.start()
        deadline = time.monotonic() + 10
        while proxy.server_states() != {"web-1": "UP"}:
            assert time.monotonic() < deadline, proxy.server_states()
            await asyncio.sleep(0.05)
        return Front(proxy, layout)

    try:
        yield start
    finally:
        for supervisor in supervisors:
            await supervisor.stop()


def wait_for(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        time.sleep(0.1)


def test_the_blocklist_rules_are_valid_and_only_with_a_shield(tmp_path: Path) -> None:
    web = SmallOrigin("web-1")
    layout = Layout(tmp_path)
    proxy = HAProxy("haproxy", "127.0.0.1", 18080, 18081, [web], shield=Shield(exempt=("10.0.0.0/8",)))
    proxy.prepare(layout)
    config = layout.engine_dir("haproxy") / "haproxy.cfg"
    text = config.read_text()
    assert f"map_ip_int({blocklist_map(tmp_path)},0)" in text and "unless shield_exempt  # seconds left" in text
    assert blocklist_map(tmp_path).read_text().startswith("# summit shield blocklist")  # there before HAProxy loads it
    check = subprocess.run(["haproxy", "-c", "-f", str(config)], capture_output=True, text=True, timeout=30, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "shield_blocked" not in HAProxy("haproxy", "127.0.0.1", 18080, 18081, [web]).render(layout)
    with pytest.raises(ValueError, match="absolute"):
        rules(Shield(), Path("relative/blocked.map"))

    spaced = Layout(tmp_path / "my stage")  # a path HAProxy's syntax cannot hold: a link to the map names it
    proxy.prepare(spaced)
    named = blocklist_map(spaced.data_dir)
    assert named.is_symlink() and named.resolve() == (spaced.data_dir / "shield" / "blocked.map").resolve()
    config = spaced.engine_dir("haproxy") / "haproxy.cfg"
    check = subprocess.run(["haproxy", "-c", "-f", str(config)], capture_output=True, text=True, timeout=30, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    named.unlink()


async def test_a_scanner_found_by_the_guard_is_blocked_at_the_edge_until_its_block_expires(front, tmp_path: Path) -> None:  # noqa: ANN001
    edge = await front()
    assert edge.get(OTHER).status_code == 200
    assert [edge.get(SCANNER, f"/media/gone-{n}.php").status_code for n in range(30)] == [404] * 30
    log = tmp_path / "logs" / "haproxy.log"
    wait_for(lambda: log.read_text().count("/media/gone-") >= 30, 5, "HAProxy logged the probes")

    seconds = 6
    blocking = GuardBlocking(enabled=True, seconds=seconds, never=[])
    blocker = Blocker(tmp_path, blocking, protected=[])
    detector = Detector(tmp_path, Guard(blocking=blocking), access_logs=["logs/haproxy.log"], blocker=blocker)
    report = detector.run()
    [finding] = detector.findings()
    assert (finding.type, finding.source) == ("Recon:Network/Scanning", SCANNER)
    assert report.blocking is not None and report.blocking.edge == "pushed", report.blocking
    [block] = report.blocking.blocks
    assert (block.source, block.finding, block.by, block.type) == (SCANNER, finding.id, "guard", finding.type)
    assert edge.served() == {SCANNER: int(block.until)}  # the running HAProxy took it, no reload

    refused = edge.get(SCANNER, "/")
    assert refused.status_code == 403 and refused.headers["cache-control"] == "no-store"
    assert 1 <= int(refused.headers["retry-after"]) <= seconds + 1  # whole seconds, rounded up
    assert_error_body(refused.json())
    assert refused.json()["error"]["code"] == "forbidden" and "blocked" in refused.json()["error"]["message"]
    assert refused.json()["request_id"] == refused.headers["x-request-id"]
    page = edge.get(SCANNER, "/photos", accept="text/html")
    assert page.status_code == 403 and page.headers["content-type"].startswith("text/html") and "Blocked" in page.text
    assert [edge.get(OTHER).status_code for _ in range(5)] == [200] * 5  # everyone else is served

    again = detector.run()  # the refusals are the edge's own answers (403, LR), not probes: nothing grows
    assert again.blocking is not None and again.blocking.blocks == [] and detector.findings()[0].count == 30

    [record] = search(tmp_path, Query(action="shield:Block"))
    assert record.resource == f"arn:summit:shield:::source/{SCANNER}" and record.details["finding"] == finding.id
    assert record.details["until"] == int(block.until) and record.reason == "guard"

    wait_for(lambda: edge.get(SCANNER, "/").status_code == 200, seconds + 3, "the block expired at the edge")
    wait_for(lambda: Blocklist(tmp_path).active() == {}, 1.5, "the blocklist's own expiry agrees with the edge's")


def shield_cli(data: Path, *args: str) -> object:
    return CliRunner().invoke(cli, ["shield", *args, "--data-dir", str(data)])


@pytest.fixture
def stage_1k(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("SUMMIT_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("SUMMIT_STAGE", "1k")
    monkeypatch.setenv("SUMMIT_SHIELD__EXEMPT", "127.0.0.4")
    return tmp_path


async def test_summit_shield_blocks_lifts_and_shows_and_a_restarted_edge_loads_the_list(front, stage_1k: Path) -> None:  # noqa: ANN001
    held = Block.make(OTHER, until=time.time() + 300, reason="blocked before the front door started", by="operator")
    Blocklist(stage_1k).add(held)
    edge = await front(Shield(exempt=("127.0.0.4/32",)))
    assert edge.get(OTHER).status_code == 403  # from the file, at start
    assert edge.get(SCANNER).status_code == 200

    made = shield_cli(stage_1k, "block", SCANNER, "--for", "2m", "--reason", "seen in the logs")
    assert made.exit_code == 0 and f"blocked {SCANNER}" in made.output and "front door has the new blocklist" in made.output, made.output
    assert edge.get(SCANNER).status_code == 403 and edge.get(OTHER).status_code == 403
    shown = shield_cli(stage_1k, "show", "--json")
    assert shown.exit_code == 0, shown.output
    blocked = {b["source"]: b for b in json.loads(shown.output)["blocked"]}
    assert set(blocked) == {SCANNER, OTHER} and blocked[SCANNER]["reason"] == "seen in the logs"
    assert 100 < blocked[SCANNER]["remaining_seconds"] <= 120 and blocked[SCANNER]["by"] == "operator"
    text = shield_cli(stage_1k, "show")
    assert text.exit_code == 0 and "blocked (2)" in text.output and "seen in the logs" in " ".join(text.output.split())

    lifted = shield_cli(stage_1k, "unblock", SCANNER)
    assert lifted.exit_code == 0 and f"unblocked {SCANNER}" in lifted.output
    assert edge.get(SCANNER).status_code == 200 and edge.get(OTHER).status_code == 403
    assert shield_cli(stage_1k, "unblock", SCANNER).exit_code == 1  # nothing left to lift
    cleared = shield_cli(stage_1k, "clear", OTHER)  # clear lifts a block too
    assert cleared.exit_code == 0 and f"unblocked {OTHER}" in cleared.output
    assert edge.get(OTHER).status_code == 200 and edge.served() == {}

    exempt = shield_cli(stage_1k, "block", "127.0.0.4")
    assert exempt.exit_code == 2 and "exempt" in exempt.output
    assert shield_cli(stage_1k, "block", "example.org").exit_code == 2
    assert shield_cli(stage_1k, "block", SCANNER, "--for", "soon").exit_code == 2
    actions = [(e.action, e.details["source"]) for e in search(stage_1k, Query(action="shield:*"))]
    assert actions == [("shield:Block", SCANNER), ("shield:Unblock", SCANNER), ("shield:Unblock", OTHER)]


async def test_credential_stuffing_against_the_app_behind_haproxy_blocks_the_source_at_the_edge(tmp_path: Path,
                                                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole path: the app (``summit serve``, stage 1 on SQLite) behind the front door, which it
    trusts for the client address; its audit log names 127.0.0.2 as the stuffer; the guard's run
    blocks it at the edge, before the app."""
    from summit.blueprint import load_blueprint
    from summit.engines.app import AppServer

    for name in [n for n in os.environ if n.startswith("SUMMIT_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("SUMMIT_AUTH__ARGON2_TIME_COST", "1")  # the app server's environment: cheap hashes
    monkeypatch.setenv("SUMMIT_AUTH__ARGON2_MEMORY_KIB", "1024")
    layout = Layout(tmp_path)
    ports = layout.ports(["haproxy", "haproxy-stats", "web-1"])
    blueprint = load_blueprint(environ={}, overrides={"data_dir": str(tmp_path), "server": {"trusted_proxies": "127.0.0.1"}})
    web = AppServer("web-1", blueprint, port=ports["web-1"])
    proxy = HAProxy("haproxy", "127.0.0.1", ports["haproxy"], ports["haproxy-stats"], [web], check_interval_ms=200, shield=Shield())
    supervisor = Supervisor(layout, [web, proxy], on_event=lambda text: None)
    await supervisor.start()
    try:
        edge = Front(proxy, layout)
        deadline = time.monotonic() + 30
        while proxy.server_states() != {"web-1": "UP"}:
            assert time.monotonic() < deadline, proxy.server_states()
            await asyncio.sleep(0.1)
        with httpx.Client(base_url=edge.url, transport=httpx.HTTPTransport(local_address=SCANNER), timeout=30) as attacker:
            statuses = [attacker.post("/api/v1/sessions", json={"login": f"nobody{n}@example.com", "password": "Password123!"}).status_code
                        for n in range(10)]
        assert statuses == [401] * 10

        blocking = GuardBlocking(enabled=True, seconds=8, never=[])
        detector = Detector(tmp_path, Guard(blocking=blocking), access_logs=["logs/haproxy.log"],
                            blocker=Blocker(tmp_path, blocking, protected=[]))
        report = detector.run()
        assert [(f.type, f.source) for f in report.new] == [("CredentialAccess:User/CredentialStuffing", SCANNER)]
        assert report.blocking is not None and [b.source for b in report.blocking.blocks] == [SCANNER]
        assert report.blocking.edge == "pushed"

        refused = edge.get(SCANNER, "/api/v1/users/someone")
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
        assert set(edge.served()) == {SCANNER}

        def logged() -> list[str]:
            lines = (tmp_path / "logs" / "haproxy.log").read_text().splitlines()
            return [x for x in lines if x.startswith(f"{SCANNER}:") and "/api/v1/users/someone" in x]

        wait_for(lambda: bool(logged()), 5, "HAProxy logged the refusal")
        [line] = logged()
        assert "<NOSRV>" in line and " 403 " in line  # answered by the edge: the app never saw it
        assert edge.get(OTHER, "/healthz").status_code == 200
        assert edge.get(OTHER, "/api/v1/users/someone").status_code == 404
        wait_for(lambda: edge.get(SCANNER, "/healthz").status_code == 200, 12, "the block expired at the edge")
    finally:
        await supervisor.stop()
