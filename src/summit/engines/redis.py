"""Redis as the stage's shared cache (the seed's ElastiCache): one ``redis-server`` on loopback.

It is a cache, so nothing is persisted (no RDB snapshot, no AOF): a restart starts empty, and the
cache port treats every entry as lossy anyway. Memory is bounded by the blueprint
(``engines.redis.maxmemory_mb``), the least recently used keys going first (``allkeys-lru``).

Clients authenticate with a generated password (``secrets/redis``, owner-only); it is in the
rendered config file (0600), never on the command line. The URL the app reads from
``run/endpoints.json`` (owner-only) carries it; ``summit status`` shows it as ``***``.
Redis runs fine as root, so it runs as the caller, with no unix socket.
"""

from __future__ import annotations

import shutil
import signal
import socket
from dataclasses import dataclass
from pathlib import Path

from summit.engines.layout import Engine, EngineError, Layout, owned_dir, tcp_open, write_private
from summit.engines.process import Command

SECRET = "redis"  # the name of its password in the stage's secrets directory


def binary() -> str:
    found = shutil.which("redis-server") or ("/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None)
    if found is None:
        raise EngineError("Redis is not installed: run `summit engines install` (Debian's redis-server)")
    return found


@dataclass(frozen=True)
class RedisSettings:
    maxmemory_mb: int = 256


class RedisServer(Engine):
    kind = "redis"
    ready_timeout = 30.0

    def __init__(self, name: str, port: int, settings: RedisSettings):
        super().__init__(name, "cache", port)
        self.settings = settings

    @staticmethod
    def password(layout: Layout) -> str:
        return layout.secret(SECRET)

    def url(self, layout: Layout, db: int = 0) -> str:
        """The URL the cache port reaches it by (with the password: keep it owner-only)."""
        return f"redis://:{self.password(layout)}@{self.address}/{db}"

    def config_path(self, layout: Layout) -> Path:
        return layout.engine_dir(self.name) / "redis.conf"

    def render(self, layout: Layout) -> str:
        home = layout.engine_dir(self.name)
        return f"""# rendered by summit before each start: edit the blueprint, not this file
bind {self.host}
port {self.port}
protected-mode yes
# no unixsocket: TCP on loopback only
requirepass "{self.password(layout)}"
maxmemory {self.settings.maxmemory_mb}mb
maxmemory-policy allkeys-lru
# a cache: nothing is written to disk
save ""
appendonly no
dir "{home}"
daemonize no
supervised no
logfile ""
loglevel notice
databases 16
"""

    def prepare(self, layout: Layout) -> None:
        owned_dir(layout.engine_dir(self.name), None)
        write_private(self.config_path(layout), self.render(layout))  # it holds the password

    def command(self, layout: Layout) -> Command:
        return Command([binary(), str(self.config_path(layout))], stop_signal=signal.SIGTERM, grace=10.0)

    def ready(self, layout: Layout) -> bool:
        if not tcp_open(self.host, self.port):
            return False
        try:
            return ping(self.host, self.port, self.password(layout))
        except OSError:
            return False


def ping(host: str, port: int, password: str, timeout: float = 2.0) -> bool:
    """An authenticated PING in the Redis protocol (the control plane imports no client library)."""
    def command(*args: str) -> bytes:
        return f"*{len(args)}\r\n".encode() + b"".join(f"${len(a.encode())}\r\n{a}\r\n".encode() for a in args)

    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(command("AUTH", password) + command("PING"))
        answer = b""
        while answer.count(b"\r\n") < 2:
            chunk = sock.recv(256)
            if not chunk:
                return False
            answer += chunk
    return answer.startswith(b"+OK\r\n+PONG\r\n")
