"""Loopback-only addressing: the bench never sends load anywhere but this machine."""

from __future__ import annotations

import ipaddress
import socket
import ssl
from pathlib import Path
from urllib.parse import urlsplit

# the CA each HTTPS origin (host, port) is verified against: a stage's own CA (its front door from
# stage 1k, engines.haproxy.tls), registered by the bench once it knows where the stage keeps it
_TRUSTED: dict[tuple[str, int], ssl.SSLContext] = {}


class NotLoopback(ValueError):
    """The target is not on this machine's loopback interface."""


def _is_loopback_ip(text: str) -> bool:
    try:
        return ipaddress.ip_address(text.strip("[]")).is_loopback
    except ValueError:
        return False


def check_loopback_url(url: str, *, resolve: bool = True) -> tuple[str, int]:
    """Return (host, port) of an http:// or https:// URL on loopback, or raise NotLoopback saying why.

    Accepted hosts: 127.0.0.0/8, ::1 and ``localhost`` (only if it resolves to loopback
    addresses alone). Anything else, another scheme, or a URL without a host is refused.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise NotLoopback(f"{url!r}: only http:// and https:// URLs on loopback are benchmarked (got scheme {parts.scheme or 'none'!r})")
    host = parts.hostname
    if not host:
        raise NotLoopback(f"{url!r}: no host in the URL; use e.g. http://127.0.0.1:8000")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as error:
        raise NotLoopback(f"{url!r}: bad port ({error})") from None
    if _is_loopback_ip(host):
        return host, port
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        if not resolve:
            return host, port
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as error:
            raise NotLoopback(f"{url!r}: cannot resolve {host}: {error}") from None
        addresses = {info[4][0] for info in infos}
        if addresses and all(_is_loopback_ip(a) for a in addresses):
            return host, port
        raise NotLoopback(f"{url!r}: {host} resolves to non-loopback addresses {sorted(addresses)}")
    raise NotLoopback(
        f"{url!r}: {host} is not a loopback address; summit bench only sends load to this machine "
        "(127.0.0.0/8, ::1 or localhost)"
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def trust(url: str, cafile: str | Path) -> None:
    """Verify HTTPS to ``url``'s host and port against the CA in ``cafile`` (a stage's own, PEM)."""
    parts = urlsplit(url)
    _TRUSTED[(parts.hostname or "", parts.port or 443)] = ssl.create_default_context(cafile=str(cafile))


def tls_for(url: str) -> ssl.SSLContext | None:
    """The TLS context for ``url``: None for http://; for https://, the CA registered with
    ``trust`` for its origin, else the system's trust store (a stage's own CA is in none)."""
    parts = urlsplit(url)
    if parts.scheme != "https":
        return None
    return _TRUSTED.get((parts.hostname or "", parts.port or 443)) or ssl.create_default_context()


def verify_for(url: str) -> ssl.SSLContext | bool:
    """What an httpx call to ``url`` passes as ``verify=``."""
    return tls_for(url) or True
