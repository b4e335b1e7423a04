"""HAProxy: the stage's one public address and its application load balancer (L7).

It sends photo and static paths to the CDN's edge tier where the stage runs one (Varnish), and
spreads the rest over the app servers (``web-1``, ``web-2`` ...) by least connections, checks
each one actively (``GET /healthz`` every ``check_interval_ms``; two failures take it out, two
successes put it back), and retries only what is safe: a request that could not be sent at all
(connection failure) is always sent to another server, and a request that was sent is tried again
only when it is idempotent (GET, HEAD, OPTIONS, PUT, DELETE) or carries an ``Idempotency-Key``,
which the app honours. It adds ``X-Forwarded-For`` (the app believes it from this address only:
``server.trusted_proxies``) and an ``X-Request-Id`` when the client sent none, and logs each
request. A second listener on loopback serves its statistics (``/stats``, ``/stats;csv``) and
Prometheus metrics (``/metrics``); the runtime API (drain, weights, server states) is on a unix
socket.
"""

from __future__ import annotations

import shutil
import signal
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from summit.engines.layout import Engine, EngineError, Layout, owned_dir, tcp_open
from summit.engines.process import Command

# requests whose retry cannot do anything twice: RFC 9110's idempotent methods, or a POST with the
# Idempotency-Key the app replays
_RETRYABLE = "{ method GET HEAD OPTIONS PUT DELETE } || { req.hdr(idempotency-key) -m found }"


def binary() -> str:
    found = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)
    if found is None:
        raise EngineError("HAProxy is not installed: run `summit engines install` (Debian's haproxy)")
    return found


class HAProxy(Engine):
    kind = "haproxy"

    def __init__(self, name: str, host: str, port: int, stats_port: int, servers: list[Engine], *,
                 cdn: Engine | None = None, internal: dict[str, tuple[int, Engine]] | None = None, check_interval_ms: int = 500):
        """``cdn``: the CDN's edge tier, where photo and static paths go (None: to the app too).
        ``internal``: name -> (listening port, service) for the L4 listeners in front of internal
        services; then HAProxy starts before the app servers, which reach those through it."""
        self.internal = internal or {}
        if self.internal:
            needs = tuple(engine.name for _, engine in self.internal.values())
        else:
            needs = tuple(s.name for s in servers)
        needs += (cdn.name,) if cdn else ()
        super().__init__(name, "front door, L7 load balancer" + (", internal L4" if self.internal else ""), port, needs=needs)
        self.host = host
        self.stats_port = stats_port
        self.servers = servers
        self.cdn = cdn
        self.check_interval_ms = check_interval_ms

    @property
    def stats_url(self) -> str:
        return f"http://127.0.0.1:{self.stats_port}"

    def socket_path(self, layout: Layout) -> Path:
        return runtime_socket(layout, self.stats_port)

    def render(self, layout: Layout) -> str:
        check = self.check_interval_ms
        servers = "\n".join(f"    server {s.name} {s.host}:{s.port}" for s in self.servers)
        listeners = "".join(f"""
listen l4-{name}
    mode tcp
    bind 127.0.0.1:{port}
    option tcplog
    timeout client 1h
    timeout server 1h
    server {name} {engine.host}:{engine.port} check inter {check}ms fall 2 rise 2
""" for name, (port, engine) in self.internal.items())
        to_cdn, cdn_backend = "", ""
        if self.cdn is not None:
            to_cdn = "    use_backend cdn if { path_beg /media/ /static/ }\n"
            cdn_backend = f"""
backend cdn
    option httpchk GET /healthz
    http-check expect status 200
    default-server check inter {check}ms fall 2 rise 2
    retries 3
    retry-on conn-failure empty-response response-timeout 502 503
    server {self.cdn.name} {self.cdn.host}:{self.cdn.port}
"""
        return f"""# rendered by summit before each start: edit the blueprint, not this file
global
    log stdout format raw local0 info
    stats socket {self.socket_path(layout)} mode 600 level admin
    maxconn 4096

defaults
    mode http
    log global
    option httplog
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout http-request 10s
    timeout http-keep-alive 10s
    timeout check 2s

frontend public
    bind {self.host}:{self.port}
    http-request del-header X-Forwarded-For  # the front door is the edge: what a client claims proves nothing
    option forwardfor
    unique-id-format %{{+X}}o%ci_%cp_%Ts_%rt_%pid  # hex, in the app's request-id alphabet: one id in both logs
    http-request set-header X-Request-Id %[unique-id] unless {{ req.hdr(x-request-id) -m found }}
{to_cdn}    default_backend web

backend web
    balance leastconn
    option httpchk GET /healthz
    http-check expect status 200
    default-server check inter {check}ms fastinter {max(100, check // 2)}ms fall 2 rise 2
    retries 3
    option redispatch
    option http-buffer-request
    retry-on conn-failure empty-response response-timeout 502 503
    http-request disable-l7-retry unless {_RETRYABLE}
{servers}
{cdn_backend}{listeners}
frontend stats
    bind 127.0.0.1:{self.stats_port}
    http-request use-service prometheus-exporter if {{ path /metrics }}
    stats enable
    stats uri /stats
    stats refresh 5s
"""

    def prepare(self, layout: Layout) -> None:
        home = owned_dir(layout.engine_dir(self.name), None)
        layout.run_dir.mkdir(parents=True, exist_ok=True)
        self.socket_path(layout).unlink(missing_ok=True)
        (home / "haproxy.cfg").write_text(self.render(layout))

    def command(self, layout: Layout) -> Command:
        config = layout.engine_dir(self.name) / "haproxy.cfg"
        return Command([binary(), "-db", "-f", str(config)], stop_signal=signal.SIGUSR1, grace=10.0)  # SIGUSR1: soft stop

    def ready(self, layout: Layout) -> bool:
        if not tcp_open(self.host, self.port):
            return False
        try:
            with urllib.request.urlopen(self.stats_url + "/stats;csv", timeout=2) as response:  # noqa: S310 (loopback)
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def server_states(self) -> dict[str, str]:
        """Each app server's state as HAProxy sees it (UP, DOWN, DRAIN, MAINT ...), from its stats."""
        import csv
        import io

        with urllib.request.urlopen(self.stats_url + "/stats;csv", timeout=2) as response:  # noqa: S310 (loopback)
            rows = csv.DictReader(io.StringIO(response.read().decode().lstrip("# ")))
            return {row["svname"]: row["status"] for row in rows if row["pxname"] == "web" and row["svname"] not in ("FRONTEND", "BACKEND")}


def runtime_socket(layout: Layout, stats_port: int) -> Path:
    """The runtime API's unix socket (a short path: unix socket paths stop at 107 bytes)."""
    path = layout.run_dir / "haproxy.sock"
    if len(str(path)) > 100:
        path = Path(tempfile.gettempdir()) / f"summit-haproxy-{stats_port}.sock"
    return path


def runtime(socket_path: Path, command: str, timeout: float = 5.0) -> str:
    """One command to HAProxy's runtime API (``set server web/web-1 state drain``, ``show stat``)."""
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(socket_path))
        sock.sendall(command.encode() + b"\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


def sessions(socket_path: Path, backend: str, server: str) -> int:
    """Requests HAProxy has in flight on ``backend/server`` now (``scur`` of ``show stat``)."""
    lines = runtime(socket_path, "show stat").lstrip("# ").splitlines()
    header = lines[0].split(",")
    for line in lines[1:]:
        row = dict(zip(header, line.split(",")))
        if row.get("pxname") == backend and row.get("svname") == server:
            return int(row.get("scur") or 0)
    raise EngineError(f"HAProxy has no server {backend}/{server}")
