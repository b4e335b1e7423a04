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
Prometheus metrics (``/metrics``); the runtime API (drain, weights, server states, certificates)
is on a unix socket.

With TLS (``engines.haproxy.tls``) it also listens for HTTPS on ``https_port`` with the stage's
certificate (``summit.engines.certs``; TLS 1.2 and 1.3 only, AEAD ciphers with forward secrecy,
ALPN h2 and http/1.1), answers plain HTTP with a 301 to HTTPS (except ``/healthz``, for local
checks), adds HSTS to every HTTPS answer and tells the app ``X-Forwarded-Proto: https``. The
certificate is checked before each start and every ``certs.check_interval_seconds``; a renewed
one goes into the running process through the runtime API (``set ssl cert`` + ``commit ssl
cert``): new handshakes get it, open connections keep theirs, nothing reloads.
"""

from __future__ import annotations

import shutil
import signal
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from summit.engines.certs import Certificates, CertError, Renewal
from summit.engines.layout import Engine, EngineError, Layout, owned_dir, tcp_open
from summit.engines.process import Command
from summit.engines.shield import Shield, blocklist_map, prepare_blocklist, rules as shield_rules

# requests whose retry cannot do anything twice: RFC 9110's idempotent methods, or a POST with the
# Idempotency-Key the app replays
_RETRYABLE = "{ method GET HEAD OPTIONS PUT DELETE } || { req.hdr(idempotency-key) -m found }"

# TLS 1.2 with ECDHE and an AEAD cipher only (forward secrecy; no CBC, no RSA key exchange), and
# TLS 1.3's three suites; TLS 1.0 and 1.1 are refused
_TLS12_CIPHERS = ":".join(f"ECDHE-{auth}-{cipher}" for auth in ("ECDSA", "RSA")
                          for cipher in ("AES128-GCM-SHA256", "AES256-GCM-SHA384", "CHACHA20-POLY1305"))
_TLS13_SUITES = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
HSTS = "max-age=31536000"


@dataclass(frozen=True)
class Tls:
    """HTTPS at the front door: where it listens and the stage's certificates."""

    https_port: int
    certs: Certificates
    check_interval: float = 3600.0  # seconds between certificate checks while HAProxy runs


def binary() -> str:
    found = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)
    if found is None:
        raise EngineError("HAProxy is not installed: run `summit engines install` (Debian's haproxy)")
    return found


class HAProxy(Engine):
    kind = "haproxy"

    def __init__(self, name: str, host: str, port: int, stats_port: int, servers: list[Engine], *,
                 cdn: Engine | None = None, internal: dict[str, tuple[int, Engine]] | None = None, check_interval_ms: int = 500,
                 tls: Tls | None = None, shield: Shield | None = None):
        """``cdn``: the CDN's edge tier, where photo and static paths go (None: to the app too).
        ``internal``: name -> (listening port, service) for the L4 listeners in front of internal
        services; then HAProxy starts before the app servers, which reach those through it.
        ``tls``: HTTPS on its port, and ``port`` redirecting to it (None: plain HTTP on ``port``).
        ``shield``: rate limits per source address at the front door (None: none)."""
        self.internal = internal or {}
        if self.internal:
            needs = tuple(engine.name for _, engine in self.internal.values())
        else:
            needs = tuple(s.name for s in servers)
        needs += (cdn.name,) if cdn else ()
        front = f"front door (HTTPS on :{tls.https_port})" if tls else "front door"
        super().__init__(name, front + ", L7 load balancer" + (", internal L4" if self.internal else ""), port, needs=needs)
        self.host = host
        self.tls = tls
        self.maintain_interval = tls.check_interval if tls else 0.0
        self.stats_port = stats_port
        self.servers = servers
        self.cdn = cdn
        self.check_interval_ms = check_interval_ms
        self.shield = shield

    @property
    def stats_url(self) -> str:
        return f"http://127.0.0.1:{self.stats_port}"

    def socket_path(self, layout: Layout) -> Path:
        return runtime_socket(layout, self.stats_port)

    def render(self, layout: Layout) -> str:
        check = self.check_interval_ms
        # the web backend's servers: the app servers, or the WAF tier in front of them (engines.waf), each
        # checked where it says its health is (the WAF answers its own, the app its /healthz)
        web_check = getattr(self.servers[0], "health_path", "/healthz") if self.servers else "/healthz"
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
        tls_global, binds, scheme_rules = "", f"    bind {self.host}:{self.port}\n", "    http-request set-header X-Forwarded-Proto http  # not the client's claim\n"
        if self.tls is not None:
            https = self.tls.https_port
            tls_global = f"""    ssl-default-bind-options ssl-min-ver TLSv1.2
    ssl-default-bind-ciphers {_TLS12_CIPHERS}
    ssl-default-bind-ciphersuites {_TLS13_SUITES}
"""
            binds += f"    bind {self.host}:{https} ssl crt {self.tls.certs.leaf_path} alpn h2,http/1.1\n"
            # to the same host name on the HTTPS port; a request without a Host header to the domain
            to_https = "code 301 if !{ ssl_fc } !{ path /healthz }"
            scheme_rules = (
                f"    http-request redirect location https://%[req.hdr(host),regsub(:[0-9]+$,)]:{https}%[capture.req.uri] {to_https} {{ req.hdr(host) -m found }}\n"
                f"    http-request redirect location https://{self.tls.certs.domain}:{https}%[capture.req.uri] {to_https}\n"
                "    http-request set-header X-Forwarded-Proto https if { ssl_fc }\n"
                "    http-request set-header X-Forwarded-Proto http if !{ ssl_fc }  # /healthz, from a local check\n"
                f"    http-after-response set-header Strict-Transport-Security \"{HSTS}\" if {{ ssl_fc }}\n"
            )
        return f"""# rendered by summit before each start: edit the blueprint, not this file
global
    log stdout format raw local0 info
    stats socket {self.socket_path(layout)} mode 600 level admin
    maxconn 4096
{tls_global}
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
{binds}{shield_rules(self.shield, blocklist_map(layout.data_dir))}{scheme_rules}    http-request del-header X-Forwarded-For  # the front door is the edge: what a client claims proves nothing
    option forwardfor
    unique-id-format %{{+X}}o%ci_%cp_%Ts_%rt_%pid  # hex, in the app's request-id alphabet: one id in both logs
    http-request set-header X-Request-Id %[unique-id] unless {{ req.hdr(x-request-id) -m found }}
{to_cdn}    default_backend web

backend web
    balance leastconn
    option httpchk GET {web_check}
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

    def prepare(self, layout: Layout) -> str | None:
        home = owned_dir(layout.engine_dir(self.name), None)
        layout.run_dir.mkdir(parents=True, exist_ok=True)
        self.socket_path(layout).unlink(missing_ok=True)
        note = None
        if self.tls is not None:  # a missing, expired or nearly expired certificate is renewed before it starts
            with self.tls.certs.lock():
                renewal = self.tls.certs.ensure()
            note = renewal.describe() if renewal.renewed else None
        if self.shield is not None:  # the blocklist's map must exist when HAProxy loads it
            prepare_blocklist(layout.data_dir)
        (home / "haproxy.cfg").write_text(self.render(layout))
        return note

    def stopped(self, layout: Layout) -> None:
        """The runtime socket goes with it (it may live in the temporary directory: ``runtime_socket``)."""
        self.socket_path(layout).unlink(missing_ok=True)

    def maintain(self, layout: Layout) -> str | None:
        """Renew the certificate when due and make sure HAProxy serves the one on disk."""
        if self.tls is None:
            return None
        done = renew(self.tls.certs, self.socket_path(layout))
        return done.describe() if done.renewal.renewed or done.installed else None

    def command(self, layout: Layout) -> Command:
        config = layout.engine_dir(self.name) / "haproxy.cfg"
        return Command([binary(), "-db", "-f", str(config)], stop_signal=signal.SIGUSR1, grace=10.0)  # SIGUSR1: soft stop

    def ready(self, layout: Layout) -> bool:
        if not tcp_open(self.host, self.port):
            return False
        if self.tls is not None and not tcp_open(self.host, self.tls.https_port):
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
    """The runtime API's unix socket (a short path: unix socket paths stop at 107 bytes, and
    HAProxy binds ``<path>.<pid>.tmp`` first, then renames it: 16 bytes more)."""
    path = layout.run_dir / "haproxy.sock"
    if len(str(path)) > 90:
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


# ---- certificates through the runtime API ------------------------------------------------------

def served_certificate(socket_path: Path, crt: Path) -> dict[str, str] | None:
    """What HAProxy serves from ``crt`` (``show ssl cert``: Serial, notBefore, notAfter, Subject ...),
    or None when it loaded no such file (TLS off). OSError when it does not answer."""
    answer = runtime(socket_path, f"show ssl cert {crt}")
    fields = {}
    for line in answer.splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            fields[key.strip()] = value.strip()
    return fields if fields.get("Filename") == str(crt) and "Serial" in fields else None


def install_certificate(socket_path: Path, crt: Path, bundle: str) -> None:
    """Put ``bundle`` (certificate + key) in the place of ``crt`` in the running HAProxy: new
    handshakes use it at once, open connections keep theirs; nothing reloads (HAProxy >= 2.2)."""
    answer = runtime(socket_path, f"set ssl cert {crt} <<\n{bundle.strip()}\n")
    if not answer.lstrip().startswith("Transaction"):  # "Transaction created (updated) for certificate ...!"
        runtime(socket_path, f"abort ssl cert {crt}")
        raise CertError(f"HAProxy refused the new certificate for {crt}: {answer.strip()}")
    answer = runtime(socket_path, f"commit ssl cert {crt}")
    if "Success!" not in answer:
        runtime(socket_path, f"abort ssl cert {crt}")
        raise CertError(f"HAProxy could not commit the new certificate for {crt}: {answer.strip()}")


@dataclass(frozen=True)
class Installed:
    """What ``renew`` did: the renewal on disk, and whether the running HAProxy took it."""

    renewal: Renewal
    running: bool  # HAProxy answered on its runtime socket
    serving: bool  # ... and serves this certificate file
    installed: bool  # a new certificate went into it now

    def describe(self) -> str:
        text = self.renewal.describe()
        if self.installed:
            return text + "; installed in the running HAProxy (no reload)"
        if not self.running:
            return text + "; HAProxy is not running: it loads it when it starts"
        if not self.serving:
            return text + "; the running HAProxy does not serve HTTPS (engines.haproxy.tls is off)"
        return text + "; HAProxy serves it"


def renew(certs: Certificates, socket_path: Path | None, *, force: bool = False) -> Installed:
    """Renew the front door's certificate when due (or ``force``), then make sure the running
    HAProxy serves the one on disk (pushing it through the runtime API when it does not)."""
    with certs.lock():
        renewal = certs.ensure(force=force)
        running = serving = installed = False
        if socket_path is not None and socket_path.exists():
            try:
                served = served_certificate(socket_path, certs.leaf_path)
                running = True
            except OSError:
                served = None
            if served is not None:
                serving = True
                if int(served["Serial"], 16) != renewal.leaf.serial:
                    install_certificate(socket_path, certs.leaf_path, certs.bundle())
                    installed = True
    return Installed(renewal, running, serving, installed)
