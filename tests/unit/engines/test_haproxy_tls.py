"""TLS at the front door: HAProxy as the control plane runs it with ``engines.haproxy.tls``, in front of
a small real HTTP server, on loopback. Its certificate verifies against the stage's CA for localhost
and 127.0.0.1, old protocols and weak ciphers are refused, HTTP is redirected, HSTS and
X-Forwarded-Proto are set, and a renewal goes into the running process without a reload and
without losing a request on open keep-alive connections."""

from __future__ import annotations

import asyncio
import datetime as dt
import http.client
import json
import socket
import ssl
import threading
import time
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from summit.engines import Layout, Supervisor
from summit.engines.certs import Certificates
from summit.engines.haproxy import HAProxy, Tls, install_certificate, renew, served_certificate
from summit.engines.layout import free_port
from summit.testing.engines import EchoServer

pytestmark = pytest.mark.haproxy

@dataclass
class Front:
    proxy: HAProxy
    supervisor: Supervisor
    certs: Certificates
    events: list[str]

    @property
    def tls(self) -> Tls:
        assert self.proxy.tls is not None
        return self.proxy.tls

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.proxy.port}"

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.tls.https_port}"

    @property
    def socket(self) -> Path:
        return self.proxy.socket_path(self.supervisor.layout)

    def context(self) -> ssl.SSLContext:
        """A client that trusts the stage's CA and nothing else, strictly (RFC 5280 checks on)."""
        context = ssl.create_default_context(cafile=str(self.certs.ca_path))
        context.verify_flags |= ssl.VERIFY_X509_STRICT
        return context

    def handshake(self, name: str = "localhost", context: ssl.SSLContext | None = None) -> tuple[x509.Certificate, ssl.SSLSocket]:
        """A fresh TLS connection (closed by the caller) and the certificate it was shown."""
        raw = socket.create_connection(("127.0.0.1", self.tls.https_port), timeout=5)
        try:
            tls = (context or self.context()).wrap_socket(raw, server_hostname=name)
        except BaseException:
            raw.close()
            raise
        return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True)), tls

    def serial_seen(self) -> int:
        cert, conn = self.handshake()
        conn.close()
        return cert.serial_number

    def served_serial(self) -> int:
        served = served_certificate(self.socket, self.certs.leaf_path)
        assert served is not None
        return int(served["Serial"], 16)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@pytest.fixture
def certs(tmp_path: Path) -> Certificates:
    return Certificates(tmp_path / "certs", domain="localhost", validity_days=90)


@pytest.fixture
async def front(tmp_path: Path, certs: Certificates, request: pytest.FixtureRequest) -> AsyncIterator[Front]:
    """HAProxy with TLS in front of one echo server. The certificate check runs every hour unless the
    test gives another interval (``indirect`` parametrization); tests call ``maintain`` themselves."""
    interval = getattr(request, "param", 3600.0)
    web = EchoServer()
    proxy = HAProxy("haproxy", "127.0.0.1", free_port(), free_port(), [web], check_interval_ms=200,
                    tls=Tls(free_port(), certs, check_interval=interval))
    events: list[str] = []
    supervisor = Supervisor(Layout(tmp_path), [web, proxy], on_event=events.append)
    await supervisor.start()
    try:
        deadline = time.monotonic() + 10
        while set(proxy.server_states().values()) != {"UP"} and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        yield Front(proxy, supervisor, certs, events)
    finally:
        await supervisor.stop()


async def test_https_verifies_against_the_stage_ca_for_localhost_and_127_0_0_1(front: Front) -> None:
    for name in ("localhost", "127.0.0.1"):
        cert, conn = front.handshake(name)
        with conn:
            assert conn.version() in ("TLSv1.2", "TLSv1.3")
            assert conn.selected_alpn_protocol() is None  # none asked for
        assert cert.serial_number == front.certs.leaf().serial
    context = front.context()
    context.set_alpn_protocols(["h2", "http/1.1"])
    _, conn = front.handshake("localhost", context)
    with conn:
        assert conn.selected_alpn_protocol() == "h2"  # HTTP/2 offered over TLS
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch|doesn't match"):
        front.handshake("photos.example")  # a name the certificate is not for
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer|self.signed|unknown ca"):
        front.handshake("localhost", ssl.create_default_context())  # the system's roots do not know the stage's CA
    async with httpx.AsyncClient(verify=front.context(), timeout=10) as client:
        for base in (front.https_url, f"https://localhost:{front.tls.https_port}"):
            answer = await client.get(base + "/hello")
            assert answer.status_code == 200 and answer.json()["path"] == "/hello"
            assert answer.headers["strict-transport-security"] == "max-age=31536000"
            assert answer.json()["headers"]["x-forwarded-proto"] == "https"  # what the app is told


async def test_tls_1_1_and_below_and_weak_ciphers_are_refused(front: Front) -> None:
    for version in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
        old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        old.load_verify_locations(str(front.certs.ca_path))
        old.set_ciphers("ALL:@SECLEVEL=0")  # let this client offer what the server must refuse
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # Python says these are deprecated: that is the point
            old.minimum_version = old.maximum_version = version
        with pytest.raises(ssl.SSLError) as refused:
            front.handshake("localhost", old)
        assert "NO_PROTOCOLS_AVAILABLE" not in str(refused.value)  # offered by this client, refused by HAProxy
        assert "PROTOCOL_VERSION" in str(refused.value).upper(), refused.value
    cbc = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cbc.load_verify_locations(str(front.certs.ca_path))
    cbc.maximum_version = ssl.TLSVersion.TLSv1_2
    cbc.set_ciphers("ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384")  # CBC modes: not offered by the front door
    with pytest.raises(ssl.SSLError, match="HANDSHAKE_FAILURE|handshake failure|NO_SHARED_CIPHER"):
        front.handshake("localhost", cbc)
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        context = front.context()
        context.minimum_version = context.maximum_version = version
        _, conn = front.handshake("localhost", context)
        with conn:
            assert conn.version() == version.name.replace("v1_", "v1.")


async def test_http_is_redirected_to_https_but_healthz(front: Front) -> None:
    https = front.tls.https_port
    async with httpx.AsyncClient(timeout=10) as client:
        moved = await client.get(front.http_url + "/feed/42?page=2&x=%2F")
        assert moved.status_code == 301 and moved.headers["location"] == f"https://127.0.0.1:{https}/feed/42?page=2&x=%2F"
        named = await client.get(front.http_url + "/", headers={"host": f"localhost:{front.proxy.port}"})
        assert named.headers["location"] == f"https://localhost:{https}/"
        assert "strict-transport-security" not in moved.headers  # HSTS only over HTTPS (RFC 6797)
        health = await client.get(front.http_url + "/healthz", headers={"x-forwarded-proto": "https"})
        assert health.status_code == 200 and health.json()["path"] == "/healthz"  # local checks stay on HTTP
        assert health.json()["headers"]["x-forwarded-proto"] == "http"  # not what the client claimed
    async with httpx.AsyncClient(timeout=10, verify=front.context(), follow_redirects=True) as client:
        followed = await client.get(front.http_url + "/photos")
        assert followed.status_code == 200 and str(followed.url) == f"{front.https_url}/photos"
        assert followed.json()["headers"]["x-forwarded-proto"] == "https"


async def test_a_renewal_under_keep_alive_traffic_loses_no_request_and_new_handshakes_see_it(front: Front) -> None:
    """Four keep-alive connections send requests back to back; once each has had 30 answers, the
    certificate is renewed and installed through the runtime API while they go on, and each sends
    60 more after it (at most 1,000 requests each). No request fails, no connection is replaced,
    HAProxy is not reloaded, and a new handshake gets the new serial."""
    old_serial = front.served_serial()
    pid = front.supervisor.unit("haproxy").process.pid
    assert front.proxy.maintain(front.supervisor.layout) is None  # not due: nothing to do
    renewed = threading.Event()
    errors: list[str] = []
    before, after = [0] * 4, [0] * 4
    serials: list[set[int]] = [set() for _ in range(4)]

    def stream(n: int) -> None:
        conn = http.client.HTTPSConnection("127.0.0.1", front.tls.https_port, context=front.context(), timeout=10)
        conn.connect()
        sock = conn.sock
        try:
            for i in range(1000):
                done = renewed.is_set()
                try:
                    conn.request("GET", f"/r/{n}/{i}")
                    response = conn.getresponse()
                    body = response.read()
                    if response.status != 200 or json.loads(body)["path"] != f"/r/{n}/{i}":
                        errors.append(f"{n}/{i}: {response.status}")
                    elif done:
                        after[n] += 1
                    else:
                        before[n] += 1
                except (OSError, http.client.HTTPException, ValueError) as error:
                    errors.append(f"{n}/{i}: {error!r}")
                if conn.sock is not sock:
                    errors.append(f"{n}/{i}: the connection was replaced")
                    return
                serials[n].add(x509.load_der_x509_certificate(conn.sock.getpeercert(binary_form=True)).serial_number)
                if after[n] >= 60:
                    return
        finally:
            conn.close()

    threads = [threading.Thread(target=stream, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 20
    while min(before) < 30 and not errors and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    result = await asyncio.to_thread(renew, front.certs, front.socket, force=True)  # what `summit certs renew --force` does
    renewed.set()
    for thread in threads:
        await asyncio.to_thread(thread.join, 60)
    assert result.installed and result.renewal.renewed
    assert errors == [] and min(before) >= 30 and after == [60] * 4, (errors, before, after)
    assert serials == [{old_serial}] * 4  # each connection kept the certificate of its handshake
    new_serial = front.certs.leaf().serial
    assert new_serial == result.renewal.leaf.serial != old_serial
    assert front.serial_seen() == new_serial == front.served_serial()
    assert front.supervisor.unit("haproxy").process.pid == pid and front.supervisor.unit("haproxy").process.running()
    assert oct(front.certs.leaf_path.stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("left", [dt.timedelta(days=5), dt.timedelta(days=-1)], ids=["near-expiry", "expired"])
async def test_a_certificate_near_expiry_or_expired_is_renewed_at_start(tmp_path: Path, certs: Certificates, left: dt.timedelta) -> None:
    old = certs.issue(not_before=_now() + left - dt.timedelta(days=90), not_after=_now() + left)
    web = EchoServer()
    proxy = HAProxy("haproxy", "127.0.0.1", free_port(), free_port(), [web], tls=Tls(free_port(), certs))
    events: list[str] = []
    supervisor = Supervisor(Layout(tmp_path), [web, proxy], on_event=events.append)
    await supervisor.start()
    try:
        front = Front(proxy, supervisor, certs, events)
        seen = front.serial_seen()  # verified against the CA: it could not be, expired
        assert seen != old.serial and seen == certs.leaf().serial
        assert certs.leaf().days_left() > 89
        assert any(e.startswith("haproxy: issued a certificate for DNS:localhost") and ("expired on" in e or "days of its 90 left" in e) for e in events)
    finally:
        await supervisor.stop()


@pytest.mark.parametrize("front", [0.2], indirect=True)
async def test_the_supervisor_renews_a_certificate_that_falls_due_while_haproxy_runs(front: Front) -> None:
    """HAProxy is made to serve a certificate with 5 of its 90 days left; the supervisor's periodic
    check (every 0.2 s here) issues a new one and installs it, with no restart."""
    pid = front.supervisor.unit("haproxy").process.pid
    tired = front.certs.issue(not_before=_now() - dt.timedelta(days=85), not_after=_now() + dt.timedelta(days=5))
    install_certificate(front.socket, front.certs.leaf_path, front.certs.bundle())
    assert front.serial_seen() == tired.serial
    stop = asyncio.Event()
    watcher = asyncio.create_task(front.supervisor.watch(stop))
    try:
        deadline = time.monotonic() + 10
        while front.served_serial() == tired.serial and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await watcher
    fresh = front.certs.leaf()
    assert fresh.serial != tired.serial and fresh.days_left() > 89
    assert front.serial_seen() == fresh.serial == front.served_serial()
    assert front.supervisor.unit("haproxy").process.pid == pid
    assert any("installed in the running HAProxy (no reload)" in e for e in front.events)


async def test_haproxy_serving_an_older_certificate_than_the_disk_gets_the_disk_one(front: Front) -> None:
    """A renewal written to disk but not installed (HAProxy was busy, the CLI died): the next check installs it."""
    served = front.served_serial()
    on_disk = front.certs.issue()
    assert front.serial_seen() == served != on_disk.serial
    note = front.proxy.maintain(front.supervisor.layout)
    assert note is not None and "installed in the running HAProxy" in note
    assert front.serial_seen() == on_disk.serial


def test_without_tls_the_front_door_sets_x_forwarded_proto_http(tmp_path: Path) -> None:
    """TLS off (the presets): plain HTTP on the port, and the app is told http whatever a client says."""
    web = EchoServer()
    proxy = HAProxy("haproxy", "127.0.0.1", free_port(), free_port(), [web])
    text = proxy.render(Layout(tmp_path))
    assert "ssl" not in text and "Strict-Transport-Security" not in text and "redirect" not in text
    assert "http-request set-header X-Forwarded-Proto http" in text

