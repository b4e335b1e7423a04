"""The guard on the WAF tier's events: HAProxy in front of a real nginx + ModSecurity + CRS process
(the control plane's units, as a 1k stage with the WAF runs them) in front of a small server. A
scanner on 127.0.0.2 sends SQL injection and path traversal probes through the front door; the
WAF blocks them (403) and logs each as an event; the guard reads its event log as scanning, with the
CRS's rule ids as evidence, and with automatic blocking on, the front door then refuses the
scanner's every request while 127.0.0.3 keeps being served."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from summit.blueprint.model import Guard, GuardBlocking
from summit.engines import Layout, Supervisor
from summit.engines.haproxy import HAProxy
from summit.engines.layout import free_port
from summit.engines.shield import Shield
from summit.engines.waf import Waf, WafSettings
from summit.security.guard import Detector
from summit.security.guard.blocking import Blocker
from summit.security.guard.sources import default_access_logs, parse_access_line
from summit.testing.engines import EchoServer

pytestmark = [
    pytest.mark.haproxy,
    pytest.mark.skipif(not shutil.which("haproxy") and not Path("/usr/sbin/haproxy").exists(), reason="needs HAProxy"),
    pytest.mark.skipif(not Path("/usr/sbin/nginx").exists() or not Path("/usr/share/modsecurity-crs/rules").is_dir(),
                       reason="nginx, libnginx-mod-http-modsecurity and modsecurity-crs are not installed "
                              "(scripts/install.sh --test installs them)"),
]

SCANNER, OTHER = "127.0.0.2", "127.0.0.3"
PROBES = ["/item?id=' OR 1=1--", "/file?name=../../etc/passwd"]  # the CRS's 942xxx and 930xxx


@dataclass
class Stage:
    proxy: HAProxy
    waf: Waf
    layout: Layout

    def get(self, source: str, path: str) -> httpx.Response:
        with httpx.Client(base_url=f"http://127.0.0.1:{self.proxy.port}", timeout=10,
                          transport=httpx.HTTPTransport(local_address=source)) as http:
            return http.get(path)


@pytest.fixture(scope="module")
def stage() -> Iterator[Stage]:
    root = Path(tempfile.mkdtemp(prefix="summit-guard-waf-", dir="/tmp"))
    root.chmod(0o755)  # nginx's workers (www-data, under root) must reach their files
    layout = Layout(root)
    ports = layout.ports(["haproxy", "haproxy-stats"])
    web = EchoServer("web-1")
    waf = Waf("waf-1", free_port(), [web], WafSettings())
    proxy = HAProxy("haproxy", "127.0.0.1", ports["haproxy"], ports["haproxy-stats"], [waf], check_interval_ms=200, shield=Shield())
    supervisor = Supervisor(layout, [web, waf, proxy], on_event=lambda text: None)
    asyncio.run(supervisor.start())
    try:
        deadline = time.monotonic() + 15
        while proxy.server_states() != {"waf-1": "UP"}:
            assert time.monotonic() < deadline, proxy.server_states()
            time.sleep(0.05)
        yield Stage(proxy, waf, layout)
    finally:
        asyncio.run(supervisor.stop())
        shutil.rmtree(root, ignore_errors=True)


def test_a_burst_of_waf_blocks_is_scanning_with_the_rule_ids_and_blocks_the_source_at_the_edge(stage: Stage) -> None:
    data = stage.layout.data_dir
    assert stage.get(OTHER, "/photos?page=2").status_code == 200
    statuses = [stage.get(SCANNER, PROBES[n % 2] + f"&n={n}").status_code for n in range(30)]
    assert statuses == [403] * 30
    assert [stage.get(OTHER, f"/item?id={n}").status_code for n in range(3)] == [200] * 3
    events = stage.waf.events_log(stage.layout)
    deadline = time.monotonic() + 10
    while events.read_text().count('"client_ip":"127.0.0.2"') < 30:
        assert time.monotonic() < deadline, "the WAF did not log 30 events"
        time.sleep(0.1)

    blocking = GuardBlocking(enabled=True, seconds=60, never=[])
    # a stage behind HAProxy reads its log and the WAF's events by default
    detector = Detector(data, Guard(blocking=blocking), access_logs=default_access_logs(True), blocker=Blocker(data, blocking, protected=[]))
    report = detector.run()
    assert "logs/waf-1-events.log" in report.logs
    [finding] = detector.findings()
    assert (finding.type, finding.source, finding.count) == ("Recon:Network/Scanning", SCANNER, 30)
    assert finding.details["waf_blocks"] == 30 and finding.details["blocked"] == 0  # the 403s in HAProxy's log are not counted twice
    assert {"942100", "930100"} <= set(finding.details["waf_rules"]) and "949110" not in finding.details["waf_rules"]
    first = finding.evidence[0]
    assert first["log"] == "logs/waf-1-events.log" and first["request"] == "GET /item" and "942100" in first["waf_rules"]
    assert first["request_id"] and first["source_ip"] == SCANNER
    assert "30 blocked by the WAF" in finding.title

    assert report.blocking is not None and [b.source for b in report.blocking.blocks] == [SCANNER]
    assert report.blocking.edge == "pushed"
    assert stage.get(SCANNER, "/photos").status_code == 403  # a harmless request: the front door refuses it now
    assert stage.get(OTHER, "/photos").status_code == 200


def test_waf_events_that_passed_are_not_probes_and_bad_lines_are_skipped() -> None:
    passed = (b'{"transaction":{"client_ip":"192.0.2.9","time_stamp":"Sun Dec  6 21:42:55 2026","unique_id":"a1",'
              b'"request":{"method":"GET","uri":"/x?q=1"},"response":{"http_code":200},"messages":[{"details":{"ruleId":"920350"}}]}}\n')
    assert parse_access_line(passed, "logs/waf-1-events.log", 1) is None
    blocked = passed.replace(b'"http_code":200', b'"http_code":418')
    request = parse_access_line(blocked, "logs/waf-1-events.log", 2)
    assert request is not None and (request.source, request.path, request.status, request.blocked) == ("192.0.2.9", "/x", 403, True)
    assert request.waf_rules == ("920350",) and request.evidence["request_id"] == "a1"
    assert parse_access_line(b'{"transaction":{"client_ip":"192.0.2.9"}}\n', "logs/waf-1-events.log", 3) is None
    assert parse_access_line(b'{"transaction": not json\n', "logs/waf-1-events.log", 4) is None
