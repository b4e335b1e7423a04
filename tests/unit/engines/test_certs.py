"""The stage's certificate authority and the front door's certificate (``summit.engines.certs``),
and the blueprint's settings for them; no HAProxy here (``test_haproxy_tls.py`` serves them)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from summit.blueprint import BlueprintError, load_blueprint, stage_names
from summit.engines.certs import CertError, Certificates, for_blueprint, leaf_addresses, split_bundle

DAY = dt.timedelta(days=1)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_ca_is_a_name_constrained_p256_root_for_ten_years(tmp_path: Path) -> None:
    certs = Certificates(tmp_path / "certs")
    ca, key = certs.ca()
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert ca.subject == ca.issuer
    assert 3649 <= (ca.not_valid_after_utc - ca.not_valid_before_utc).days <= 3651
    basic = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca and basic.value.path_length == 0
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign and not usage.value.digital_signature
    constraints = ca.extensions.get_extension_for_class(x509.NameConstraints)
    assert constraints.critical
    assert set(constraints.value.permitted_subtrees) == {
        x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_network("127.0.0.0/8")), x509.IPAddress(ipaddress.ip_network("::1/128")),
    }
    assert (_mode(certs.ca_path), _mode(certs.ca_key_path)) == (0o644, 0o600)  # the certificate is public, the key is not
    again, _ = certs.ca()  # read back, not made again
    assert again == ca


def test_the_leaf_is_for_the_domain_and_loopback_serverauth_90_days_in_one_0600_bundle(tmp_path: Path) -> None:
    certs = Certificates(tmp_path / "certs")
    renewal = certs.ensure()
    assert renewal.renewed and renewal.reason == "there was none" and renewal.previous is None
    cert, key = split_bundle(certs.leaf_path.read_text())  # certificate first, then its key: what HAProxy loads
    ca, _ = certs.ca()
    cert.verify_directly_issued_by(ca)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]
    assert cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)  # strict verifiers want it
    life = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert dt.timedelta(days=90) <= life <= dt.timedelta(days=90, minutes=6)  # starts five minutes back (clock skew)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert _mode(certs.leaf_path) == 0o600
    assert renewal.leaf.sans == ("DNS:localhost", "IP:127.0.0.1", "IP:::1")
    assert not certs.ensure().renewed  # still good: kept
    assert certs.leaf().serial == renewal.leaf.serial


def test_validity_is_configurable_and_never_past_the_ca(tmp_path: Path) -> None:
    short = Certificates(tmp_path / "certs", validity_days=7).ensure().leaf
    assert round(short.lifetime.total_seconds() / 86400) == 7
    long = Certificates(tmp_path / "certs", validity_days=397).issue(not_after=_now() + 20 * 365 * DAY)
    ca = Certificates(tmp_path / "certs").ca_info()
    assert ca is not None and long.not_after == ca.not_after


@pytest.mark.parametrize(("left", "due"), [(31 * DAY, False), (29 * DAY, True), (-DAY, True)])
def test_a_leaf_is_renewed_with_less_than_a_third_of_its_life_left(tmp_path: Path, left: dt.timedelta, due: bool) -> None:
    certs = Certificates(tmp_path / "certs")
    old = certs.issue(not_before=_now() + left - 90 * DAY, not_after=_now() + left)  # a 90-day certificate
    renewal = certs.ensure()
    assert renewal.renewed is due
    if due:
        assert renewal.leaf.serial != old.serial and renewal.leaf.days_left() > 89
        assert ("expired" in renewal.reason) if left < dt.timedelta(0) else ("days of its 90 left" in renewal.reason)
    assert certs.ensure(force=True).leaf.serial not in (old.serial, renewal.leaf.serial)  # --force: always a new one


def test_a_leaf_that_no_longer_fits_is_replaced(tmp_path: Path) -> None:
    """Other names in the blueprint, another CA, a key that is not the certificate's: a new leaf."""
    certs = Certificates(tmp_path / "certs")
    first = certs.ensure().leaf
    wider = Certificates(tmp_path / "certs", addresses=leaf_addresses("127.0.1.7"))  # a zone's address: still loopback
    renewal = wider.ensure()
    assert renewal.renewed and "not the blueprint's" in renewal.reason
    assert renewal.leaf.sans == ("DNS:localhost", "IP:127.0.0.1", "IP:::1", "IP:127.0.1.7")
    under = Certificates(tmp_path / "certs", domain="api.localhost")  # a name under the CA's domain
    assert under.ensure().leaf.sans[0] == "DNS:api.localhost"
    other = Certificates(tmp_path / "other")
    other.ensure()
    certs.leaf_path.write_bytes(other.leaf_path.read_bytes())
    assert certs.ensure().reason == "the one on disk was not issued by this CA"
    cert_pem, key_pem = certs.leaf_path.read_text().split("-----END CERTIFICATE-----\n")
    certs.leaf_path.write_text(cert_pem + "-----END CERTIFICATE-----\n" + other.leaf_path.read_text().split("-----END CERTIFICATE-----\n")[1])
    assert certs.ensure().reason == "the key on disk does not match its certificate"
    certs.leaf_path.write_text("garbage")
    assert "could not be read" in certs.ensure().reason
    assert certs.leaf().serial != first.serial


def test_the_ca_refuses_a_domain_outside_its_constraints_and_says_what_to_do(tmp_path: Path) -> None:
    Certificates(tmp_path / "certs").ensure()
    with pytest.raises(CertError, match=r"may not vouch for photos\.example.*Set certs\.domain back.*remove ca\.pem and ca-key\.pem"):
        Certificates(tmp_path / "certs", domain="photos.example").ensure()


def test_key_files_readable_by_others_are_refused(tmp_path: Path) -> None:
    certs = Certificates(tmp_path / "certs")
    certs.ensure()
    certs.ca_key_path.chmod(0o644)
    with pytest.raises(CertError, match=r"ca-key\.pem holds a private key and is readable by others \(mode 0644\): run `chmod 600"):
        certs.ensure()
    certs.ca_key_path.chmod(0o600)
    certs.leaf_path.chmod(0o640)
    with pytest.raises(CertError, match=r"front-door\.pem .*chmod 600"):
        certs.ensure()


def test_a_ca_half_gone_is_an_error_not_a_new_ca(tmp_path: Path) -> None:
    certs = Certificates(tmp_path / "certs")
    certs.ca()
    certs.ca_key_path.unlink()
    with pytest.raises(CertError, match=r"ca\.pem is there but .*ca-key\.pem is not: restore it from a backup"):
        certs.ca()


# ---- the blueprint -------------------------------------------------------------------------------

def _blueprint(**overrides: object):  # noqa: ANN202
    return load_blueprint(environ={}, overrides=overrides)


@pytest.mark.parametrize(("domain", "says"), [
    ("https://photos.example", "without a scheme, port, path"),
    ("photos.example:8443", "without a scheme, port, path"),
    ("127.0.0.1", "is an address, not a DNS name"),
    ("*.photos.example", "cannot be a wildcard"),
    ("my_host.example", "invalid label 'my_host'"),
    ("-bad.example", "invalid label '-bad'"),
    ("photos..example", "invalid label ''"),
    ("a" * 64 + ".example", "invalid label"),
    ("", "is empty"),
    ("host.123", "numeric label"),
])
def test_a_bad_domain_is_a_clear_error(domain: str, says: str) -> None:
    with pytest.raises(BlueprintError, match="certs.domain") as caught:
        _blueprint(certs={"domain": domain})
    assert says in str(caught.value) and "give a DNS name such as localhost or photos.example" in str(caught.value)
    with pytest.raises(CertError, match=re.escape(f"certs.domain {domain!r}")):
        Certificates(Path("/nonexistent"), domain=domain)


def test_a_domain_is_kept_lower_case_without_its_final_dot() -> None:
    assert _blueprint(certs={"domain": "Photos.Example."}).certs.domain == "photos.example"


def test_tls_is_on_from_1k_in_the_presets_and_on_it_everything_says_https(tmp_path: Path) -> None:
    for stage in stage_names():
        blueprint = _blueprint(stage=stage)
        if blueprint.engines.haproxy.enabled:  # 1k and later: HTTPS at the front door
            assert blueprint.tls and blueprint.public_url == "https://127.0.0.1:8443" and blueprint.auth.cookie_secure is True, stage
        else:  # 1 and 1+: the app is the front door, plain HTTP on loopback
            assert not blueprint.tls and blueprint.public_url.startswith("http://") and blueprint.auth.cookie_secure is False, stage
    assert {"1k", "10k"} <= {stage for stage in stage_names() if _blueprint(stage=stage).tls}
    off = _blueprint(stage="10k", engines={"haproxy": {"tls": False}})  # a blueprint may still turn it off
    assert not off.tls and off.public_url == "http://127.0.0.1:8000" and off.auth.cookie_secure is False
    on = _blueprint(stage="1k", data_dir=str(tmp_path), engines={"haproxy": {"tls": True, "https_port": 9443}})
    assert on.tls and on.public_url == on.issuer == "https://127.0.0.1:9443"
    assert on.auth.cookie_secure is True  # follows TLS ...
    assert _blueprint(stage="1k", engines={"haproxy": {"tls": True}}, auth={"cookie_secure": False}).auth.cookie_secure is False  # ... unless told
    assert (on.certs.domain, on.certs.validity_days, on.certs.check_interval_seconds) == ("localhost", 90, 3600)
    certs = for_blueprint(on)
    assert certs.directory == tmp_path.resolve() / "certs" and certs.addresses == ("127.0.0.1", "::1")
    assert _blueprint(stage="1k", server={"host": "127.0.2.5"}).server.host == "127.0.2.5"
    assert leaf_addresses("127.0.2.5") == ("127.0.0.1", "::1", "127.0.2.5") and leaf_addresses("0.0.0.0") == ("127.0.0.1", "::1")


def test_the_app_servers_are_told_the_https_issuer_and_secure_cookies(tmp_path: Path) -> None:
    from summit.engines import plan

    stage = plan(_blueprint(stage="1k", data_dir=str(tmp_path), engines={"haproxy": {"tls": True, "https_port": 9443}}))
    assert stage.endpoints["public"] == "https://127.0.0.1:9443"
    env = stage.engine("web-1").command(stage.layout).env
    assert env["SUMMIT_AUTH__ISSUER"] == "https://127.0.0.1:9443" and env["SUMMIT_AUTH__COOKIE_SECURE"] == "true"
    haproxy = stage.engine("haproxy")
    assert haproxy.tls is not None and haproxy.tls.https_port == 9443 and haproxy.maintain_interval == 3600
    plain = plan(_blueprint(stage="1k", data_dir=str(tmp_path / "plain"), engines={"haproxy": {"tls": False}}))
    assert plain.endpoints["public"] == "http://127.0.0.1:8000" and plain.engine("haproxy").tls is None


@pytest.mark.parametrize(("overrides", "says"), [
    ({"engines": {"haproxy": {"tls": True}}}, "engines.haproxy.tls needs engines.haproxy.enabled"),
    ({"stage": "1k", "engines": {"haproxy": {"tls": True, "https_port": 8000}}}, "engines.haproxy.https_port and server.port are both 8000"),
    ({"certs": {"validity_days": 400}}, "certs.validity_days"),
])
def test_tls_settings_that_cannot_work_are_refused(overrides: dict, says: str) -> None:
    with pytest.raises(BlueprintError, match=says):
        _blueprint(**overrides)
