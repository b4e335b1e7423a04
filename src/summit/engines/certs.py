"""Certificates for the front door (like ACM): a local certificate authority, kept under the stage's
data directory, and the leaf certificate it issues for the blueprint's domain, renewed when a third
of its life is left and installed into the running HAProxy without a reload.

Under ``<data_dir>/certs/``:

    ca.pem              the CA's certificate (public: what clients trust, ``summit certs export-ca``)
    ca-key.pem          the CA's private key (0600; a plain PKCS#8 file like the stage's other secrets)
    front-door.pem      the leaf: certificate then private key, one file (0600), as HAProxy loads it
    .lock               taken while a certificate is issued or installed (the supervisor and the CLI)

The CA: EC P-256, ten years, ``CA:TRUE, pathlen:0``, key usage ``keyCertSign, cRLSign``, and name
constraints (critical): it can only vouch for the blueprint's domain (and names under it), the
loopback ranges (127.0.0.0/8, ::1) and the extra addresses it was made for. A CA that lost its
key, or a leaf that leaked, cannot be used for anyone else's name.

The leaf: EC P-256, ``CN=<domain>``, SANs ``DNS:<domain>``, ``IP:127.0.0.1``, ``IP:::1`` (and the
stage's listening address when it is another one), extended key usage ``serverAuth``,
``certs.validity_days`` (90) long, never past the CA's own end.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import ipaddress
import os
import re
import secrets
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from summit.blueprint import Blueprint
from summit.blueprint.model import domain_name
from summit.engines.layout import EngineError, Layout

CA_DAYS = 3650  # ten years
RENEW_WHEN_LEFT = 1 / 3  # renew a leaf once less than this share of its lifetime is left
LOOPBACK = ("127.0.0.1", "::1")
_CA_NETWORKS = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
_SKEW = dt.timedelta(minutes=5)  # a certificate starts a little in the past: clocks differ
_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----\r?\n?", re.S)


class CertError(EngineError):
    """A certificate cannot be made, read or installed; the message says what to do."""


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass(frozen=True)
class CertInfo:
    """What ``summit certs list`` shows of one certificate."""

    path: Path
    subject: str
    issuer: str
    sans: tuple[str, ...]
    not_before: dt.datetime
    not_after: dt.datetime
    serial: int
    is_ca: bool
    sha256: str

    @classmethod
    def of(cls, cert: x509.Certificate, path: Path) -> CertInfo:
        try:
            sans = san_strings(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
        except x509.ExtensionNotFound:
            sans = ()
        try:
            is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        return cls(path, cert.subject.rfc4514_string(), cert.issuer.rfc4514_string(), sans, cert.not_valid_before_utc,
                   cert.not_valid_after_utc, cert.serial_number, is_ca, cert.fingerprint(hashes.SHA256()).hex())

    @property
    def serial_hex(self) -> str:
        return f"{self.serial:X}"

    @property
    def lifetime(self) -> dt.timedelta:
        return self.not_after - self.not_before

    def left(self, at: dt.datetime | None = None) -> dt.timedelta:
        return self.not_after - (at or now_utc())

    def days_left(self, at: dt.datetime | None = None) -> float:
        return self.left(at).total_seconds() / 86400

    def due(self, at: dt.datetime | None = None) -> bool:
        """Less than a third of its lifetime left (or expired)."""
        return self.left(at) < self.lifetime * RENEW_WHEN_LEFT


@dataclass(frozen=True)
class Renewal:
    """What ``Certificates.ensure`` found and did: ``reason`` is why it issued a new leaf ('' if not)."""

    leaf: CertInfo
    previous: CertInfo | None
    reason: str

    @property
    def renewed(self) -> bool:
        return bool(self.reason)

    def describe(self) -> str:
        if not self.renewed:
            return f"certificate for {self.leaf.subject} is valid until {self.leaf.not_after:%Y-%m-%d} (serial {self.leaf.serial_hex})"
        return (f"issued a certificate for {', '.join(self.leaf.sans)} valid until {self.leaf.not_after:%Y-%m-%d %H:%M} UTC "
                f"(serial {self.leaf.serial_hex}): {self.reason}")


# ---- names ------------------------------------------------------------------------------------

def san_strings(names: Iterable[x509.GeneralName]) -> tuple[str, ...]:
    """Subject alternative names as OpenSSL writes them: ``DNS:localhost``, ``IP:127.0.0.1``."""
    found = list(names)
    return tuple([f"DNS:{n.value}" for n in found if isinstance(n, x509.DNSName)]
                 + [f"IP:{n.value}" for n in found if isinstance(n, x509.IPAddress)])


def leaf_addresses(host: str) -> tuple[str, ...]:
    """The IP SANs of the leaf: loopback, plus ``host`` when it is another specific address."""
    found = list(LOOPBACK)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return tuple(found)
    if not address.is_unspecified and str(address) not in found:
        found.append(str(address))
    return tuple(found)


def _permits(constraints: x509.NameConstraints | None, san: x509.GeneralName) -> bool:
    if constraints is None or constraints.permitted_subtrees is None:
        return True
    for tree in constraints.permitted_subtrees:
        if isinstance(san, x509.DNSName) and isinstance(tree, x509.DNSName):
            base = tree.value.lower().lstrip(".")
            name = san.value.lower()
            if name == base or name.endswith("." + base):
                return True
        if isinstance(san, x509.IPAddress) and isinstance(tree, x509.IPAddress):
            if isinstance(tree.value, (ipaddress.IPv4Network, ipaddress.IPv6Network)) and san.value.version == tree.value.version \
                    and san.value in tree.value:
                return True
    return False


# ---- files ------------------------------------------------------------------------------------

def _write(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` with ``mode`` from the start (a temp file renamed over it)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)  # whatever the umask said
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _check_private(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise CertError(f"{path} holds a private key and is readable by others (mode {mode:04o}): "
                        f"run `chmod 600 {path}` (and consider the key exposed: `summit certs renew --force`)")


def split_bundle(text: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey | object]:
    """The certificate and the private key of a PEM bundle (certificate first, then its key)."""
    blocks = [m.group(0) for m in _PEM_BLOCK.finditer(text)]
    certs = [b for b in blocks if "CERTIFICATE-----" in b.splitlines()[0]]
    keys = [b for b in blocks if "PRIVATE KEY-----" in b.splitlines()[0]]
    if not certs or not keys:
        raise ValueError("not a PEM bundle with a certificate and a private key")
    cert = x509.load_pem_x509_certificate(certs[0].encode())
    key = serialization.load_pem_private_key(keys[0].encode(), password=None)
    return cert, key


def _same_key(cert: x509.Certificate, key: object) -> bool:
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return cert.public_key().public_bytes(*spki) == key.public_key().public_bytes(*spki)  # type: ignore[attr-defined]


# ---- the store --------------------------------------------------------------------------------

class Certificates:
    """The stage's CA and the front door's leaf certificate, in ``directory`` (``<data_dir>/certs``)."""

    LEAF = "front-door.pem"

    def __init__(self, directory: Path, *, domain: str = "localhost", addresses: Sequence[str] = LOOPBACK, validity_days: int = 90):
        try:
            self.domain = domain_name(domain)
        except ValueError as error:
            raise CertError(f"certs.domain {domain!r} {error}") from None
        self.directory = Path(directory)
        self.addresses = tuple(str(ipaddress.ip_address(a)) for a in addresses)
        self.validity = dt.timedelta(days=validity_days)

    @property
    def ca_path(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def ca_key_path(self) -> Path:
        return self.directory / "ca-key.pem"

    @property
    def leaf_path(self) -> Path:
        return self.directory / self.LEAF

    def sans(self) -> list[x509.GeneralName]:
        return [x509.DNSName(self.domain), *(x509.IPAddress(ipaddress.ip_address(a)) for a in self.addresses)]

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Held while issuing or installing: the supervisor's check and `summit certs renew` take turns."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o755)
        with open(self.directory / ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # ---- the CA ---------------------------------------------------------------------------

    def ca(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        """The CA's certificate and key: made on first use, then read back (and checked)."""
        if not self.ca_path.exists() and not self.ca_key_path.exists():
            return self._make_ca()
        if not (self.ca_path.exists() and self.ca_key_path.exists()):
            there, missing = (self.ca_path, self.ca_key_path) if self.ca_path.exists() else (self.ca_key_path, self.ca_path)
            raise CertError(f"{there} is there but {missing} is not: restore it from a backup, or remove {there} to make a "
                            "new CA (clients must then trust the new one: `summit certs export-ca`)")
        _check_private(self.ca_key_path)
        try:
            cert = x509.load_pem_x509_certificate(self.ca_path.read_bytes())
            key = serialization.load_pem_private_key(self.ca_key_path.read_bytes(), password=None)
        except ValueError as error:
            raise CertError(f"cannot read the CA in {self.directory} ({error}): restore ca.pem and ca-key.pem from a backup, "
                            "or remove both to make a new CA") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not _same_key(cert, key):
            raise CertError(f"{self.ca_key_path} is not the key of {self.ca_path}: restore the pair from a backup, or remove both "
                            "to make a new CA")
        if cert.not_valid_after_utc <= now_utc() + dt.timedelta(days=1):
            raise CertError(f"the CA in {self.ca_path} expires on {cert.not_valid_after_utc:%Y-%m-%d}: remove ca.pem and ca-key.pem "
                            "to make a new one, then have clients trust it (`summit certs export-ca`)")
        return cert, key

    def _make_ca(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o755)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "summit"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"summit local CA {secrets.token_hex(3)} ({self.domain})"),
        ])
        permitted: list[x509.GeneralName] = [x509.DNSName(self.domain), *(x509.IPAddress(n) for n in _CA_NETWORKS)]
        for address in map(ipaddress.ip_address, self.addresses):
            if not any(address.version == n.version and address in n for n in _CA_NETWORKS):
                permitted.append(x509.IPAddress(ipaddress.ip_network(address)))
        start = now_utc() - _SKEW
        cert = (
            x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.NameConstraints(permitted_subtrees=permitted, excluded_subtrees=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        _write(self.ca_key_path, pem_key, 0o600)  # the key first: a ca.pem alone would be an error above
        _write(self.ca_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
        return cert, key

    def ca_info(self) -> CertInfo | None:
        try:
            return CertInfo.of(x509.load_pem_x509_certificate(self.ca_path.read_bytes()), self.ca_path)
        except (FileNotFoundError, ValueError):
            return None

    # ---- the leaf -------------------------------------------------------------------------

    def leaf(self) -> CertInfo | None:
        """The leaf on disk (None if there is none, or it cannot be read)."""
        try:
            cert, _ = split_bundle(self.leaf_path.read_text())
        except (FileNotFoundError, ValueError):
            return None
        return CertInfo.of(cert, self.leaf_path)

    def issue(self, *, not_before: dt.datetime | None = None, not_after: dt.datetime | None = None) -> CertInfo:
        """Issue a new leaf (a new key) and write the bundle (0600). ``not_before``/``not_after``
        default to now minus five minutes and ``validity_days`` after now (never past the CA's end)."""
        ca_cert, ca_key = self.ca()
        constraints = _constraints(ca_cert)
        refused = [san for san in self.sans() if not _permits(constraints, san)]
        if refused:
            names = ", ".join(str(san.value) for san in refused)
            raise CertError(
                f"the CA in {self.directory} may not vouch for {names}: it was made for other names (name constraints). "
                f"Set certs.domain back to what it was, or remove {self.ca_path.name} and {self.ca_key_path.name} from "
                f"{self.directory} to make a new CA for {self.domain} (clients must then trust the new one: `summit certs export-ca`)")
        now = now_utc()
        start = not_before or now - _SKEW
        end = min(not_after or now + self.validity, ca_cert.not_valid_after_utc)
        if end <= start:
            raise CertError(f"a certificate cannot end ({end:%Y-%m-%d %H:%M}) before it starts ({start:%Y-%m-%d %H:%M})")
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.domain)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName(self.sans()), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        bundle = cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        _write(self.leaf_path, bundle, 0o600)
        return CertInfo.of(cert, self.leaf_path)

    def why_renew(self, at: dt.datetime | None = None) -> str:
        """Why the leaf on disk must be replaced now ('' if it is good)."""
        try:
            text = self.leaf_path.read_text()
        except FileNotFoundError:
            return "there was none"
        try:
            cert, key = split_bundle(text)
        except ValueError as error:
            return f"the one on disk could not be read ({error})"
        if not _same_key(cert, key):
            return "the key on disk does not match its certificate"
        ca_cert, _ = self.ca()
        try:
            cert.verify_directly_issued_by(ca_cert)
        except (ValueError, TypeError, InvalidSignature):
            return "the one on disk was not issued by this CA"
        info = CertInfo.of(cert, self.leaf_path)
        wanted = san_strings(self.sans())
        if sorted(info.sans) != sorted(wanted):
            return f"its names ({', '.join(info.sans)}) are not the blueprint's ({', '.join(wanted)})"
        at = at or now_utc()
        if info.left(at) <= dt.timedelta(0):
            return f"it expired on {info.not_after:%Y-%m-%d %H:%M} UTC"
        if info.due(at):
            return (f"{info.days_left(at):.1f} days of its {info.lifetime.total_seconds() / 86400:.0f} left "
                    f"(renewed with less than a third left)")
        return ""

    def ensure(self, *, force: bool = False, at: dt.datetime | None = None) -> Renewal:
        """Make sure a good leaf is on disk: issue one when there is none, it is due or no longer
        fits the blueprint (or always, with ``force``). Call under ``lock()`` when others may too."""
        self.ca()
        if self.leaf_path.exists():
            _check_private(self.leaf_path)
        previous = self.leaf()
        reason = "renewal forced" if force else self.why_renew(at)
        if not reason:
            assert previous is not None
            return Renewal(previous, previous, "")
        return Renewal(self.issue(), previous, reason)

    def bundle(self) -> str:
        return self.leaf_path.read_text()


def for_blueprint(blueprint: Blueprint, layout: Layout | None = None) -> Certificates:
    """The stage's certificates as its blueprint describes them (``[certs]``, ``server.host``)."""
    layout = layout or Layout(blueprint.data_dir.resolve())
    return Certificates(layout.certs_dir, domain=blueprint.certs.domain, addresses=leaf_addresses(blueprint.server.host),
                        validity_days=blueprint.certs.validity_days)


def _constraints(cert: x509.Certificate) -> x509.NameConstraints | None:
    try:
        return cert.extensions.get_extension_for_class(x509.NameConstraints).value
    except x509.ExtensionNotFound:
        return None
