"""The shield at the edge: HAProxy as the control plane runs it, with rate limits per source address,
in front of a small real server, on loopback. Floods come from a process of their own bound to
127.0.0.2 (raw keep-alive sockets: bounded in requests and in seconds); other clients from other
loopback addresses. A flood gets 429s (then drops, past the flood threshold) while another address
keeps its answers and its latency; exempt sources are never counted; ``summit shield`` shows who is
limited and clears a source."""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

import summit.cli.shield  # noqa: F401  (registers the commands)
from summit.blueprint import load_blueprint
from summit.cli.main import app as cli
from summit.engines import Layout, Supervisor
from summit.engines.haproxy import HAProxy
from summit.engines.shield import BEGIN, END, Shield, blocklist_map, key_of, parse_table, rules, source_of, table
from summit.engines.stage import plan
from summit.security.blocks import Blocklist
from summit.testing.engines import EchoServer
from summit.testing.http import assert_error_body

FLOODER, VICTIM = "127.0.0.2", "127.0.0.3"

# a bounded flood from one source: CONNS keep-alive connections, COUNT requests at most, SECONDS at
# most, RATE requests a second at most (0: as fast as it goes); a connection that is reset, refused or
# silent for 0.5 s counts as a drop (and is reopened)
FLOOD = r"""
import json, socket, sys, threading, time
host, port, source, count, seconds, conns, rate, extra = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7]), sys.argv[8]
request = ("GET /flood HTTP/1.1\r\nHost: " + host + "\r\n" + extra + "\r\n").encode()
lock, counts, sample, sent = threading.Lock(), {}, {}, [0]
deadline = time.monotonic() + seconds
def take():
    with lock:
        if sent[0] >= count or time.monotonic() > deadline:
            return False
        sent[0] += 1
        return True
def note(key, head=None, body=None):
    with lock:
        counts[key] = counts.get(key, 0) + 1
        if head is not None and key not in sample:
            sample[key] = {"headers": head, "body": body}
def response(sock, buf):
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", 0))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        rest += chunk
    return int(lines[0].split()[1]), headers, rest[:length].decode("utf-8", "replace"), rest[length:]
def worker():
    sock, buf = None, b""
    gap, due = (conns / rate if rate else 0.0), time.monotonic()
    while take():
        if gap:
            due += gap
            time.sleep(max(0.0, due - time.monotonic()))
        try:
            if sock is None:
                sock = socket.socket()
                sock.settimeout(0.5)
                sock.bind((source, 0))
                sock.connect((host, port))
                buf = b""
            sock.sendall(request)
            status, headers, body, buf = response(sock, buf)
            note(str(status), headers, body)
        except OSError:
            note("dropped")
            if sock is not None:
                sock.close()
            sock = None
    if sock is not None:
        sock.close()
threads = [threading.Thread(target=worker) for _ in range(conns)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps({"counts": counts, "sample": sample, "sent": sent[0]}))
"""


def flood(port: int, source: str, *, count: int, seconds: float, conns: int = 4, rate: float = 0, header: str = "") -> subprocess.Popen:
    """Start a flood in a process of its own (its CPU is not the measured client's)."""
    extra = header + "\r\n" if header else ""
    return subprocess.Popen([sys.executable, "-c", FLOOD, "127.0.0.1", str(port), source, str(count), str(seconds), str(conns), str(rate), extra],
                            stdout=subprocess.PIPE, text=True)


def result(process: subprocess.Popen, timeout: float = 30) -> dict:
    out, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, out
    return json.loads(out)


def client(url: str, source: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=5, transport=httpx.HTTPTransport(local_address=source))


def p50_ms(http: httpx.Client, count: int) -> float:
    """The median latency of ``count`` GETs in a row on one keep-alive connection; each must be a 200."""
    times = []
    for _ in range(count):
        started = time.perf_counter()
        response = http.get("/victim")
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
    return statistics.median(times) * 1000


class Front:
    def __init__(self, proxy: HAProxy, layout: Layout):
        self.proxy, self.layout = proxy, layout

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.proxy.port}"

    def sources(self) -> dict[str, dict]:
        return {entry["source"]: entry for entry in table(self.proxy.socket_path(self.layout))}


@pytest.fixture
async def front(tmp_path: Path) -> AsyncIterator[Callable]:
    """``await front(shield)``: HAProxy with this shield in front of an echo server, ports kept in
    the data directory as a stage keeps them (so ``summit shield --data-dir`` finds it)."""
    supervisors = []

    async def start(shield: Shield) -> Front:
        layout = Layout(tmp_path)
        ports = layout.ports(["haproxy", "haproxy-stats"])
        web = EchoServer("web-1")
        proxy = HAProxy("haproxy", "127.0.0.1", ports["haproxy"], ports["haproxy-stats"], [web], check_interval_ms=200, shield=shield)
        supervisor = Supervisor(layout, [web, proxy], on_event=lambda text: None)
        supervisors.append(supervisor)
        await supervisor.start()
        deadline = time.monotonic() + 10
        while proxy.server_states() != {"web-1": "UP"}:
            assert time.monotonic() < deadline, proxy.server_states()
            time.sleep(0.05)
        return Front(proxy, layout)

    try:
        yield start
    finally:
        for supervisor in supervisors:
            await supervisor.stop()


# ---- the configuration ----------------------------------------------------------------------------

def test_the_block_is_delimited_valid_and_absent_without_a_shield(tmp_path: Path) -> None:
    web = EchoServer("web-1")
    exempt = tuple(f"10.0.{n}.0/24" for n in range(70)) + ("2001:db8::/64",)  # more than one acl line holds
    shielded = HAProxy("haproxy", "127.0.0.1", 18080, 18081, [web], shield=Shield(exempt=exempt)).render(Layout(tmp_path))
    plain = HAProxy("haproxy", "127.0.0.1", 18080, 18081, [web]).render(Layout(tmp_path))
    block = rules(Shield(exempt=exempt), blocklist_map(tmp_path))  # with the blocklist's 403s (test_haproxy_blocks.py)
    assert block.startswith(BEGIN) and block.endswith(END) and block in shielded
    assert shielded.replace(block, "") == plain  # the block is all the shield adds
    assert rules(None) == "" and "shield" not in plain
    assert shielded.index(block) < shielded.index("http-request del-header X-Forwarded-For") < shielded.index("backend web")
    assert "track-sc0 src,ipmask(32,64) unless shield_exempt" in block and block.count("acl shield_exempt src") == 3
    config = tmp_path / "haproxy.cfg"
    config.write_text(shielded)
    Blocklist(tmp_path).ensure_map()  # HAProxy loads the blocklist's map (prepare() writes it before a start)
    check = subprocess.run(["haproxy", "-c", "-f", str(config)], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_stage_takes_its_limits_from_the_blueprint(tmp_path: Path) -> None:
    overrides = {"stage": "1k", "data_dir": str(tmp_path / "data"),
                 "shield": {"exempt": ["192.0.2.0/24"], "edge": {"request_rate": 700, "drop_request_rate": 7000}}}
    haproxy = plan(load_blueprint(environ={}, overrides=overrides)).engine("haproxy")
    assert haproxy.shield == Shield(request_rate=700, drop_request_rate=7000, exempt=("192.0.2.0/24",))
    overrides["shield"]["edge"]["enabled"] = False
    assert plan(load_blueprint(environ={}, overrides=overrides)).engine("haproxy").shield is None


def test_table_keys_read_as_people_write_addresses() -> None:
    text = ("# table: public, type: ipv6, size:100000, used:2\n"
            "0x55d0: key=::ffff:192.0.2.7 use=1 exp=59000 gpc0=12 gpc0_rate(10000)=3 conn_rate(10000)=5 conn_cur=2 http_req_rate(10000)=900\n"
            "0x55d1: key=2001:db8:1:2:: use=0 exp=1000 gpc0=0 gpc0_rate(10000)=0 conn_rate(10000)=1 conn_cur=0 http_req_rate(10000)=1\n")
    first, second = parse_table(text)
    assert first == {"source": "192.0.2.7", "requests": 900, "connections": 2, "connection_rate": 5, "refused": 12, "refused_rate": 3,
                     "expires_in_ms": 59000}
    assert second["source"] == "2001:db8:1:2::/64"
    assert key_of("192.0.2.7") == "::ffff:192.0.2.7" and source_of(key_of("192.0.2.7")) == "192.0.2.7"
    assert key_of("2001:db8:1:2:abcd::9") == "2001:db8:1:2::"
    with pytest.raises(ValueError, match="not an address"):
        key_of("example.org")


# ---- floods ---------------------------------------------------------------------------------------

async def test_a_flood_from_one_address_gets_429s_while_another_keeps_its_answers_and_latency(front) -> None:  # noqa: ANN001
    """The flood claims to be the victim (X-Forwarded-For): the edge counts the connection's source.
    It runs at 1,500 requests a second, 50 times its limit (30 a second), paced so that its own
    client's CPU (on this machine's two cores) is not what the victim's latency measures."""
    edge = await front(Shield(request_rate=300, drop_request_rate=1_000_000, drop_connection_rate=1_000_000))
    with client(edge.url, VICTIM) as victim:
        p50_ms(victim, 10)  # warm: the connection is open
        unloaded = p50_ms(victim, 100)
        flooding = flood(edge.proxy.port, FLOODER, count=6000, seconds=4, rate=1500, header=f"X-Forwarded-For: {VICTIM}")
        time.sleep(0.5)  # the flood is past its limit
        loaded = p50_ms(victim, 100)
        assert flooding.poll() is None, "the flood ended before the loaded measurement did"
        seen = victim.get("/who").json()["headers"]["x-forwarded-for"]
    report = result(flooding)
    counts = report["counts"]
    assert counts.get("429", 0) >= 1000 and counts.get("200", 0) <= 330 and "dropped" not in counts, counts
    refused = report["sample"]["429"]
    assert refused["headers"]["retry-after"] == "10" and refused["headers"]["content-type"] == "application/json"
    body = json.loads(refused["body"])
    assert_error_body(body)  # the API's error shape
    assert body["error"]["code"] == "rate_limited" and "(edge limit requests): more than 300 in 10 s" in body["error"]["message"]
    assert body["request_id"] == refused["headers"]["x-request-id"]
    assert json.loads(report["sample"]["200"]["body"])["headers"]["x-forwarded-for"] == FLOODER  # not the claim
    assert seen == VICTIM
    assert loaded <= 2 * unloaded, f"p50 {loaded:.2f} ms under the flood, {unloaded:.2f} ms before"
    sources = edge.sources()
    assert sources[FLOODER]["refused"] == counts["429"] and Shield(request_rate=300).state_of(sources[FLOODER]) == ["requests"]
    assert sources[VICTIM]["refused"] == 0 and sources[VICTIM]["requests"] <= 215


async def test_a_gross_flood_is_dropped_and_the_others_still_served(front) -> None:  # noqa: ANN001
    edge = await front(Shield(request_rate=100, drop_request_rate=300))
    report = result(flood(edge.proxy.port, FLOODER, count=3000, seconds=6))
    counts = report["counts"]
    assert counts.get("200", 0) <= 110 and counts.get("429", 0) >= 150 and counts.get("dropped", 0) >= 100, counts
    entry = edge.sources()[FLOODER]
    assert Shield(request_rate=100, drop_request_rate=300).state_of(entry) == ["dropped"] and entry["refused"] >= counts["429"]
    with client(edge.url, VICTIM) as victim:
        assert [victim.get("/").status_code for _ in range(20)] == [200] * 20
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", edge.proxy.port), timeout=2, source_address=(FLOODER, 0)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # refused while its rate stays above the threshold
        if not sock.recv(100):
            raise ConnectionResetError("closed without an answer")


async def test_too_many_open_connections_get_429_a_page_for_pages_json_for_the_api(front) -> None:  # noqa: ANN001
    edge = await front(Shield(connections=5))
    source = "127.0.0.6"
    opened = [socket.create_connection(("127.0.0.1", edge.proxy.port), timeout=5, source_address=(source, 0)) for _ in range(6)]
    try:
        with client(edge.url, source) as http:
            page = http.get("/p/1", headers={"accept": "text/html,application/xhtml+xml"})
            api = http.get("/api/v1/feed", headers={"accept": "text/html"})
    finally:
        for sock in opened:
            sock.close()
    assert page.status_code == 429 and page.headers["content-type"].startswith("text/html") and page.headers["retry-after"] == "10"
    assert "<h1>Too many requests</h1>" in page.text and "more than 5 at once" in page.text
    assert api.status_code == 429 and "(edge limit connections)" in api.json()["error"]["message"]
    deadline = time.monotonic() + 5
    while edge.sources()[source]["connections"] > 0:  # HAProxy sees them closed
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with client(edge.url, source) as http:
        assert http.get("/").status_code == 200


# ---- exemptions and summit shield --------------------------------------------------------------

def shield_cli(data: Path, *args: str) -> object:
    return CliRunner().invoke(cli, ["shield", *args, "--data-dir", str(data)])


async def test_exempt_sources_are_never_limited_and_summit_shield_shows_who_is(front, tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    exempt, limited = "127.0.0.4", "127.0.0.5"
    edge = await front(Shield(request_rate=50, drop_request_rate=100_000, exempt=(f"{exempt}/32",)))
    free = result(flood(edge.proxy.port, exempt, count=400, seconds=10))
    held = result(flood(edge.proxy.port, limited, count=400, seconds=10))
    assert free["counts"] == {"200": 400}
    assert held["counts"].get("429", 0) >= 300, held["counts"]
    sources = edge.sources()
    assert exempt not in sources and sources[limited]["refused"] == held["counts"]["429"]

    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("SUMMIT_")]:
        monkeypatch.delenv(name)
    for name, value in {"STAGE": "1k", "SHIELD__EXEMPT": exempt, "SHIELD__EDGE__REQUEST_RATE": "50", "SHIELD__EDGE__DROP_REQUEST_RATE": "100000"}.items():
        monkeypatch.setenv(f"SUMMIT_{name}", value)
    shown = shield_cli(tmp_path, "show", "--json")
    assert shown.exit_code == 0, shown.output
    report = json.loads(shown.output)
    assert report["limited"] == [limited] and report["exempt"] == [f"{exempt}/32"] and report["limits"]["request_rate"] == 50
    top = report["sources"][0]
    assert top["source"] == limited and top["over"] == ["requests"] and top["refused"] == held["counts"]["429"]
    text = shield_cli(tmp_path, "show", "--limited")
    assert text.exit_code == 0 and limited in text.output and "429: requests" in text.output and "1 limited now" in " ".join(text.output.split())
    cleared = shield_cli(tmp_path, "clear", limited)
    assert cleared.exit_code == 0 and f"cleared {limited}" in cleared.output
    with client(edge.url, limited) as http:
        assert http.get("/").status_code == 200  # counted afresh
    assert shield_cli(tmp_path, "clear", "example.org").exit_code == 2


def test_summit_shield_says_why_it_has_nothing_to_show(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("SUMMIT_")]:
        monkeypatch.delenv(name)
    stage_1 = shield_cli(tmp_path)  # the blocks are all there is to show (the app refuses them there)
    assert stage_1.exit_code == 0 and "has no front door" in stage_1.output and "no source blocked" in stage_1.output
    assert shield_cli(tmp_path, "clear", "192.0.2.7").exit_code == 1  # no block to lift, no counters to clear
    monkeypatch.setenv("SUMMIT_STAGE", "1k")
    idle = shield_cli(tmp_path, "show")
    assert idle.exit_code == 1 and "HAProxy is not running" in " ".join(idle.output.split())
    monkeypatch.setenv("SUMMIT_SHIELD__EDGE__ENABLED", "false")
    off = shield_cli(tmp_path, "show")
    assert off.exit_code == 1 and "shield.edge.enabled = false" in off.output
