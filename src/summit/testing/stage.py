"""A whole stage for tests: ``summit up --stage S --detach`` on free loopback ports, in a data
directory of its own under /tmp, and ``summit down`` at the end.

    with detached_stage("10k") as stage:             # HAProxy (HTTPS) -> WAF tier -> app servers, ...
        with stage.client() as http:                 # httpx, trusting the stage's own CA
            http.get("/healthz")
        stage.http_url                               # the plain port: a 301 to stage.url (but /healthz)

From stage 1k the front door speaks HTTPS (``engines.haproxy.tls`` in the presets): ``url`` is
``https://127.0.0.1:<https port>`` and ``ca`` the stage's CA certificate, exported with
``summit certs export-ca`` as a client would; at stages without TLS ``url`` is the plain port and
``ca`` is None. ``SUMMIT_*`` variables of the test process are not passed on; ``env`` is.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from summit.engines.layout import free_port

SUMMIT = str(Path(sys.executable).with_name("summit"))


@dataclass
class RunningStage:
    url: str  # where clients go: https://127.0.0.1:<https port> behind TLS, else the plain port
    data_dir: str
    process: object = None  # (the detached supervisor is found in data_dir/summit.json)
    http_url: str = ""  # the plain HTTP port (server.port): HAProxy's redirect, or the stage itself
    ca: str | None = None  # the stage's CA certificate (PEM file), when the front door speaks TLS
    env: dict[str, str] | None = None  # the environment the stage was started with (for more `summit` commands)

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """What an httpx client passes as ``verify=``: the stage's CA alone, or the default."""
        return ssl.create_default_context(cafile=self.ca) if self.ca else True

    def client(self, **options: Any) -> Any:
        """An ``httpx.Client`` on ``url`` that trusts the stage's CA (and nothing else, behind TLS)."""
        import httpx

        return httpx.Client(base_url=self.url, verify=self.verify, **options)

    def processes(self) -> dict[str, dict]:
        """The stage's processes by name, as the supervisor records them (pid, address, restarts, ...)."""
        return {p["name"]: p for p in json.loads((Path(self.data_dir) / "summit.json").read_text())["processes"]}

    def backend(self, name: str = "web") -> dict[str, str]:
        """The states of HAProxy's servers in backend ``name`` (``UP``, ``DOWN``, ``UP 1/2`` ...), from its stats."""
        stats_port = json.loads((Path(self.data_dir) / "engines" / "ports.json").read_text())["haproxy-stats"]
        with urllib.request.urlopen(f"http://127.0.0.1:{stats_port}/stats;csv", timeout=2) as response:  # noqa: S310 (loopback)
            lines = response.read().decode().lstrip("# ").splitlines()
        header = lines[0].split(",")
        rows = [dict(zip(header, line.split(","))) for line in lines[1:]]
        return {r["svname"]: r["status"] for r in rows if r["pxname"] == name and r["svname"] not in ("FRONTEND", "BACKEND")}

    def summit(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """``summit ARGS --data-dir <the stage's>``, with the stage's environment."""
        return subprocess.run([SUMMIT, *args, "--data-dir", self.data_dir], capture_output=True, text=True, env=self.env,
                              timeout=timeout)


def spki_sha256(pem_file: str | Path) -> str:
    """The base64 SHA-256 of a certificate's public key (SubjectPublicKeyInfo): what Chromium's
    ``--ignore-certificate-errors-spki-list`` takes to trust a chain that carries that key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = x509.load_pem_x509_certificate(Path(pem_file).read_bytes())
    der = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


@contextmanager
def detached_stage(stage: str, *, env: dict[str, str] | None = None, prefix: str | None = None,
                   timeout: float = 240) -> Iterator[RunningStage]:
    """``summit up --stage STAGE --detach`` on a free port (and a free HTTPS port), ``summit down`` after."""
    root = Path(tempfile.mkdtemp(prefix=prefix or f"summit-{stage.replace('+', 'plus')}-", dir="/tmp"))
    root.chmod(0o755)  # the engines' users (postgres, www-data, under root) must reach the data directory
    data_dir, port, https_port = root / "data", free_port(), free_port()
    while https_port == port:
        https_port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SUMMIT_")}
    environ.update(env or {})
    up = subprocess.run([SUMMIT, "up", "--stage", stage, "--detach", "--port", str(port), "--https-port", str(https_port),
                         "--data-dir", str(data_dir)], capture_output=True, text=True, env=environ, timeout=timeout)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        record = json.loads((data_dir / "summit.json").read_text())
        running = RunningStage(record["url"], str(data_dir), None, f"http://127.0.0.1:{port}", None, environ)
        if running.url.startswith("https://"):
            ca = root / "ca.pem"
            exported = running.summit("certs", "export-ca", str(ca), timeout=60)
            assert exported.returncode == 0 and ca.is_file(), exported.stdout + exported.stderr
            running.ca = str(ca)
        yield running
    finally:
        subprocess.run([SUMMIT, "down", "--data-dir", str(data_dir)], capture_output=True, env=environ, timeout=120)
        shutil.rmtree(root, ignore_errors=True)
