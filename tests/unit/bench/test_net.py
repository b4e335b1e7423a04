"""Loopback only: the bench refuses to send load anywhere else."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from summit.bench.net import NotLoopback, check_loopback_url, tls_for, trust, verify_for


@pytest.mark.parametrize(
    "url, expected",
    [
        ("http://127.0.0.1:8000", ("127.0.0.1", 8000)),
        ("http://127.0.2.7:9000/x", ("127.0.2.7", 9000)),
        ("http://[::1]:8000", ("::1", 8000)),
        ("http://127.0.0.1", ("127.0.0.1", 80)),
        ("https://127.0.0.1:8443", ("127.0.0.1", 8443)),  # a stage whose front door speaks TLS (from 1k)
        ("https://127.0.0.1", ("127.0.0.1", 443)),
    ],
)
def test_loopback_urls_pass(url: str, expected: tuple[str, int]) -> None:
    assert check_loopback_url(url) == expected


def test_localhost_passes_when_it_resolves_to_loopback() -> None:
    assert check_loopback_url("http://localhost:8000", resolve=False) == ("localhost", 8000)


@pytest.mark.parametrize(
    "url, words",
    [
        ("http://10.0.0.5:8000", "not a loopback address"),
        ("http://example.com", "not a loopback address"),
        ("http://0.0.0.0:8000", "not a loopback address"),
        ("http://192.168.1.1", "not a loopback address"),
        ("https://10.0.0.5:8443", "not a loopback address"),
        ("ftp://127.0.0.1:8000", "only http:// and https://"),
        ("127.0.0.1:8000", "only http:// and https://"),
        ("http://:8000", "no host"),
        ("http://127.0.0.1:99999", "bad port"),
    ],
)
def test_other_hosts_are_refused(url: str, words: str) -> None:
    with pytest.raises(NotLoopback, match=words):
        check_loopback_url(url)


def test_https_is_verified_against_the_ca_registered_for_its_origin(tmp_path) -> None:  # noqa: ANN001
    from summit.engines.certs import Certificates

    certs = Certificates(tmp_path / "certs", domain="localhost")
    certs.ca()  # makes the stage's CA, as a stage with TLS does when it starts
    assert tls_for("http://127.0.0.1:8000") is None and verify_for("http://127.0.0.1:8000") is True
    unknown = tls_for("https://127.0.0.1:18443")  # no CA registered: the system's trust store, which lacks the stage's
    assert unknown is not None and unknown.verify_mode.name == "CERT_REQUIRED"
    trust("https://127.0.0.1:18443", certs.ca_path)
    known = tls_for("https://127.0.0.1:18443/healthz")
    assert known is not None and known is not unknown and known.check_hostname
    assert [c["subject"] for c in known.get_ca_certs()] and verify_for("https://127.0.0.1:18443") is known
    assert tls_for("https://127.0.0.1:18444") is not known  # per origin: another port is not covered


def test_cli_refuses_a_remote_url_with_a_clear_error() -> None:
    from summit.cli import bench, main  # noqa: F401

    result = CliRunner().invoke(main.app, ["bench", "run", "--url", "http://203.0.113.9:80"], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "not a loopback address" in result.output


def test_cli_wants_exactly_one_target() -> None:
    from summit.cli import bench, main  # noqa: F401

    result = CliRunner().invoke(main.app, ["bench", "run"], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "--url" in result.output and "--start" in result.output
