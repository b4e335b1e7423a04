"""``summit certs``: list, renew and export-ca on a stage's data directory, with and without a running
HAProxy serving HTTPS (a real one on loopback, asked through its runtime API)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from typer.testing import CliRunner

import summit.cli.certs  # noqa: F401  (registers the commands)
from summit.blueprint import load_blueprint
from summit.cli.main import app
from summit.cli.status import _healthy
from summit.engines import Layout, Supervisor
from summit.engines.certs import Certificates, for_blueprint
from summit.engines.haproxy import HAProxy, Tls
from summit.engines.layout import free_port
from summit.testing.engines import EchoServer

runner = CliRunner()


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty working directory (no ./summit.toml) and no SUMMIT_* variables but the stage's."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("SUMMIT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SUMMIT_STAGE", "1k")
    monkeypatch.setenv("SUMMIT_ENGINES__HAPROXY__TLS", "true")


def certs(data: Path, *args: str) -> object:
    return runner.invoke(app, ["certs", *args, "--data-dir", str(data)])


def said(result: object) -> str:
    """What a command printed, on one line (the console wraps long lines)."""
    return " ".join(result.output.split())  # type: ignore[attr-defined]


def test_renew_makes_them_list_shows_them_export_ca_writes_the_ca(tmp_path: Path) -> None:
    data = tmp_path / "data"
    empty = certs(data, "list")
    assert empty.exit_code == 0 and "no certificates in" in said(empty) and "`summit certs renew` makes them now" in said(empty)
    missing = certs(data, "export-ca")
    assert missing.exit_code == 1 and "there is no CA in" in said(missing)
    made = certs(data, "renew")
    assert made.exit_code == 0, made.output
    assert "renewed: issued a certificate for DNS:localhost, IP:127.0.0.1, IP:::1" in said(made)
    assert "there was none" in said(made) and "HAProxy is not running: it loads it when it starts" in said(made)
    again = certs(data, "renew")
    assert again.exit_code == 0 and said(again).startswith("not due: certificate for CN=localhost is valid until")
    listed = certs(data, "list", "--json")
    assert listed.exit_code == 0, listed.output
    report = json.loads(listed.output)
    assert report["haproxy"] == "not running" and report["domain"] == "localhost"
    ca, leaf = report["certificates"]
    assert ca["name"] == "ca" and ca["subject"].startswith("CN=summit local CA") and ca["days_left"] > 3600
    assert leaf["name"] == "front-door" and leaf["sans"] == ["DNS:localhost", "IP:127.0.0.1", "IP:::1"]
    assert 89.9 < leaf["days_left"] <= 90.1 and not leaf["renewal_due"] and leaf["served"] == "no: HAProxy is not running"
    table = certs(data, "list")
    assert table.exit_code == 0 and "front-door" in said(table) and "CN=localhost" in said(table)
    forced = certs(data, "renew", "--force")
    assert forced.exit_code == 0 and "renewal forced" in said(forced)
    assert json.loads(certs(data, "list", "--json").output)["certificates"][1]["serial"] != leaf["serial"]
    exported = certs(data, "export-ca", str(tmp_path / "ca.pem"))
    assert exported.exit_code == 0 and "curl --cacert" in said(exported)
    assert (tmp_path / "ca.pem").read_text() == (data / "certs" / "ca.pem").read_text()
    assert (tmp_path / "ca.pem").stat().st_mode & 0o777 == 0o644
    printed = certs(data, "export-ca")
    assert printed.exit_code == 0 and printed.output == (data / "certs" / "ca.pem").read_text()
    assert "PRIVATE" not in printed.output


def test_a_bad_domain_or_one_the_ca_cannot_vouch_for_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("SUMMIT_CERTS__DOMAIN", "photos_example")
    bad = certs(data, "list")
    assert bad.exit_code == 2 and "'certs.domain' (environment variable SUMMIT_CERTS__DOMAIN)" in said(bad) and "invalid label" in said(bad)
    monkeypatch.setenv("SUMMIT_CERTS__DOMAIN", "localhost")
    assert certs(data, "renew").exit_code == 0
    monkeypatch.setenv("SUMMIT_CERTS__DOMAIN", "photos.example")
    refused = certs(data, "renew")
    assert refused.exit_code == 1 and "may not vouch for photos.example" in said(refused)


@dataclass
class RunningFront:
    data: Path
    proxy: HAProxy
    supervisor: Supervisor
    certs: Certificates

    def handshake(self, cafile: Path, name: str = "localhost") -> int:
        context = ssl.create_default_context(cafile=str(cafile))
        with socket.create_connection(("127.0.0.1", self.proxy.tls.https_port), timeout=5) as raw:
            with context.wrap_socket(raw, server_hostname=name) as conn:
                return x509.load_der_x509_certificate(conn.getpeercert(binary_form=True)).serial_number


@pytest.fixture
def running(tmp_path: Path) -> Iterator[RunningFront]:
    """The stage's HAProxy with TLS, as `summit up` lays it out (its stats port in engines/ports.json,
    its certificates in certs/), in front of one echo server."""
    data = tmp_path / "data"
    layout = Layout(data)
    blueprint = load_blueprint(overrides={"data_dir": str(data)})
    web = EchoServer()
    store = for_blueprint(blueprint, layout)
    proxy = HAProxy("haproxy", "127.0.0.1", free_port(), layout.ports(["haproxy-stats"])["haproxy-stats"], [web],
                    check_interval_ms=200, tls=Tls(free_port(), store))
    supervisor = Supervisor(layout, [web, proxy], on_event=lambda text: None)
    asyncio.run(supervisor.start())
    try:
        yield RunningFront(data, proxy, supervisor, store)
    finally:
        asyncio.run(supervisor.stop())


@pytest.mark.haproxy
def test_list_asks_haproxy_what_it_serves_and_renew_installs_without_a_reload(running: RunningFront, tmp_path: Path) -> None:
    report = json.loads(certs(running.data, "list", "--json").output)
    leaf = report["certificates"][1]
    assert report["haproxy"] == "running" and leaf["served"] == "yes"
    assert report["haproxy_serial"] == leaf["serial"]
    assert certs(running.data, "export-ca", str(tmp_path / "ca.pem")).exit_code == 0
    assert running.handshake(tmp_path / "ca.pem") == int(leaf["serial"], 16)
    assert running.handshake(tmp_path / "ca.pem", name="127.0.0.1") == int(leaf["serial"], 16)
    pid = running.supervisor.unit("haproxy").process.pid
    renewed = certs(running.data, "renew", "--force")
    assert renewed.exit_code == 0 and "installed in the running HAProxy (no reload)" in said(renewed)
    after = json.loads(certs(running.data, "list", "--json").output)
    new = after["certificates"][1]
    assert new["serial"] != leaf["serial"] and new["served"] == "yes" and after["haproxy_serial"] == new["serial"]
    assert running.handshake(tmp_path / "ca.pem") == int(new["serial"], 16)
    assert running.supervisor.unit("haproxy").process.pid == pid
    assert said(certs(running.data, "renew")).startswith("not due:")
    # summit status's health check trusts the stage's CA when the URL is https
    assert _healthy({"url": f"https://127.0.0.1:{running.proxy.tls.https_port}"}, running.data) == (True, "ok")
