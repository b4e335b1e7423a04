"""Where a stage keeps its engines' files, and the engine base class.

Under the stage's data directory:

    engines/<name>/     an engine's data and rendered configuration
    engines/ports.json  the ports allocated to the engines (kept, so a restart reuses them)
    logs/<name>.log     each process's output
    secrets/            generated credentials, owner-only (0700 directory, 0600 files); db-app.json:
                        the Secrets Manager's delivered copy of the app's rotated login (db/app)
    certs/              the stage's CA and the front door's certificate (``summit.engines.certs``)
    backups/            summit backup's copies, and backups/wal/: the primary's WAL archive
    run/                what the running stage publishes (endpoints.json: the URLs of its engines)
"""

from __future__ import annotations

import abc
import json
import os
import pwd
import random
import secrets
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

from summit.engines.process import Command

HOST = "127.0.0.1"  # every engine listens on loopback
ENGINE_USER = "postgres"  # who runs the engines that refuse root (PostgreSQL, PgBouncer)
_PORT_RANGE = (20000, 32767)  # below Linux's ephemeral range, so outgoing connections never take them


class EngineError(RuntimeError):
    """An engine cannot be prepared, started or reached; the message says what to do."""


@dataclass(frozen=True)
class Layout:
    data_dir: Path

    def engine_dir(self, name: str) -> Path:
        return self.data_dir / "engines" / name

    def log(self, name: str) -> Path:
        return self.data_dir / "logs" / f"{name}.log"

    @property
    def secrets_dir(self) -> Path:
        return self.data_dir / "secrets"

    @property
    def app_login(self) -> Path:
        """The app's database login (secret ``db/app``), as the Secrets Manager delivers it here."""
        return self.secrets_dir / "db-app.json"

    @property
    def certs_dir(self) -> Path:
        return self.data_dir / "certs"

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    @property
    def backups_dir(self) -> Path:
        return self.data_dir / "backups"

    @property
    def wal_archive(self) -> Path:
        """Where the primary archives its WAL for point-in-time recovery (``summit.backup``)."""
        return self.backups_dir / "wal"

    # ---- credentials ----------------------------------------------------------------------

    def secret(self, name: str) -> str:
        """The secret called ``name``: generated at first use, then read back (owner-only file)."""
        path = self.secrets_dir / name
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            pass
        value = secrets.token_urlsafe(24)
        write_private(path, value + "\n")
        return value

    # ---- ports ------------------------------------------------------------------------------

    def ports(self, names: list[str]) -> dict[str, int]:
        """A port for each name: the one allocated before, else a free one, recorded for next time."""
        path = self.data_dir / "engines" / "ports.json"
        try:
            known: dict[str, int] = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            known = {}
        taken = set(known.values())
        for name in names:
            if name not in known:
                known[name] = free_port(avoid=taken)
                taken.add(known[name])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(known, indent=2, sort_keys=True))
        return {name: known[name] for name in names}


def free_port(avoid: set[int] = frozenset()) -> int:  # type: ignore[assignment]
    """A port on loopback that nothing listens on now."""
    for _ in range(200):
        port = random.randint(*_PORT_RANGE)
        if port in avoid:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((HOST, port))
            except OSError:
                continue
            return port
    raise EngineError(f"no free port found on {HOST} between {_PORT_RANGE[0]} and {_PORT_RANGE[1]}")


def write_private(path: Path, text: str, *, owner: str | None = None) -> None:
    """Write ``text`` to ``path`` readable by its owner only (the directory too, if it is new)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    if owner:
        chown(tmp, owner)
    tmp.replace(path)


def run_as() -> str | None:
    """The user that engines refusing root run as: ``postgres`` when we are root, else ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(ENGINE_USER)
    except KeyError:
        raise EngineError(
            f"running as root, PostgreSQL and PgBouncer need the system user {ENGINE_USER!r}: "
            "install the engines with `summit engines install` (Debian's postgresql creates it)"
        ) from None
    return ENGINE_USER


def chown(path: Path, user: str | None) -> None:
    if user:
        shutil.chown(path, user, user)


def owned_dir(path: Path, user: str | None) -> Path:
    """Create ``path`` (0700) for ``user`` and check that ``user`` can reach it through its parents."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    chown(path, user)
    if user:
        entry = pwd.getpwnam(user)
        for parent in path.resolve().parents:
            st = parent.stat()
            if st.st_uid == entry.pw_uid:
                continue
            if not st.st_mode & 0o001 and not (st.st_gid == entry.pw_gid and st.st_mode & 0o010):
                raise EngineError(
                    f"the engines run as {user!r}, which cannot enter {parent} (mode {oct(st.st_mode & 0o777)}): "
                    f"choose a data directory it can reach (--data-dir /srv/summit), or `chmod o+x {parent}`"
                )
    return path


class Engine(abc.ABC):
    """One process of a stage: it renders its files, says how to run, and answers a readiness probe.

    ``prepare`` runs before every start (idempotent; creating data on the first); ``ready`` is a
    quick probe the supervisor polls after starting it; ``started`` runs once it is ready (for
    bootstrap work such as roles and replication slots); ``stopped`` after the supervisor stopped it;
    ``maintain`` every ``maintain_interval`` seconds while it runs (renewing a certificate).
    """

    kind: str = ""  # postgres, pgbouncer, app
    ready_timeout: float = 60.0  # seconds a start may take before it counts as failed
    maintain_interval: float = 0.0  # seconds between ``maintain`` calls while it runs (0: never)

    def __init__(self, name: str, role: str, port: int, needs: tuple[str, ...] = ()):
        self.name = name
        self.role = role
        self.port = port
        self.host = HOST
        self.needs = needs

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def prepare(self, layout: Layout) -> str | None:  # noqa: B027  (optional)
        """Create data and render configuration (before each start); returns a note to tell, if any."""
        return None

    @abc.abstractmethod
    def command(self, layout: Layout) -> Command: ...

    @abc.abstractmethod
    def ready(self, layout: Layout) -> bool:
        """Does it answer now? (quick; called repeatedly while it starts, and by status)"""

    def started(self, layout: Layout) -> None:  # noqa: B027  (optional)
        """Work to do once it is ready, after every start (idempotent)."""

    def stopped(self, layout: Layout) -> None:  # noqa: B027  (optional)
        """Clean up what the process leaves behind outside its directory, after every stop."""

    def maintain(self, layout: Layout) -> str | None:
        """Periodic work while it runs (every ``maintain_interval`` s); returns a note to tell, if any."""
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.role} {self.address}>"


def tcp_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
