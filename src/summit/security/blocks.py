"""The Shield's blocklist: sources refused outright until a time, by the edge and by the app.

A block names a source (an IPv4 address, or an IPv6 /64, as the edge counts sources), until when
it holds, why (a ``summit guard`` finding, or an operator's reason) and who made it. The list is
``<data_dir>/shield/blocks.json`` (owner-only), written whole and renamed into place under a lock
(``blocks.lock``), so a reader never sees half of it; beside it ``blocked.map``, the same list as
HAProxy's map (``<source> <until, epoch seconds>``), which the front door loads when it starts and
which summit pushes into a running one through its runtime API (``summit.engines.shield``). The
app reads ``blocks.json`` (``summit.web.blocklist``) where there is no edge.

Expiry needs nobody: the edge compares ``until`` with its clock, the app with its own, and each
write drops what has expired.

    blocks = Blocklist(data_dir)
    blocks.add(Block.make("203.0.113.7", until=time.time() + 900, reason="summit guard finding 97ab...", by="guard"))
    blocks.active()          # {source: Block}, expired ones left out
    blocks.remove("203.0.113.7")
"""

from __future__ import annotations

import fcntl
import ipaddress
import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

SHIELD_DIR = "shield"
BLOCKS_FILE = "blocks.json"
MAP_FILE = "blocked.map"


class BlockError(ValueError):
    """A block cannot be made or read; the message says what to do."""


def source_key(source: str) -> str:
    """A source as the blocklist and the edge name it: an IPv4 address, or an IPv6 address's /64
    (``2001:db8::/64``); an IPv4-mapped IPv6 address is its IPv4 address. BlockError otherwise."""
    text = source.strip()
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise BlockError(f"{source!r} is not an address: give an IPv4 address, or an IPv6 address or /64") from None
    if network.version == 6 and network.prefixlen == 128 and network.network_address.ipv4_mapped is not None:
        return str(network.network_address.ipv4_mapped)
    if network.version == 4:
        if network.prefixlen != 32:
            raise BlockError(f"{source!r}: a block names one IPv4 address, not a network")
        return str(network.network_address)
    if network.prefixlen < 64:
        raise BlockError(f"{source!r}: a block names one IPv6 /64 (a host's), not a larger network")
    return f"{ipaddress.ip_network(f'{network.network_address}/64', strict=False).network_address}/64"


def covers(networks: list[str] | tuple[str, ...], source: str) -> bool:
    """Whether ``source`` (a key of ``source_key``) lies in one of ``networks`` (CIDRs)."""
    try:
        subject = ipaddress.ip_network(source, strict=False)
    except ValueError:
        return False
    for text in networks:
        network = ipaddress.ip_network(text, strict=False)
        if network.version == subject.version and (subject.subnet_of(network) or network.subnet_of(subject)):  # type: ignore[arg-type]
            return True
    return False


@dataclass
class Block:
    source: str  # source_key()'s form
    until: float  # epoch seconds (whole)
    created_at: float
    reason: str  # what made it: "summit guard finding <id>: <type>", or an operator's words
    by: str  # "guard" (automatic) or "operator"
    finding: str | None = None  # the finding's id
    type: str | None = None  # the finding's type
    severity: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def make(cls, source: str, *, until: float, reason: str, by: str, now: float | None = None, **rest: Any) -> Block:
        # whole seconds, as the edge's map holds it: the edge and the app lift it at the same moment
        return cls(source_key(source), float(math.ceil(until)), time.time() if now is None else now, reason, by, **rest)

    def remaining(self, now: float | None = None) -> float:
        return self.until - (time.time() if now is None else now)

    def as_dict(self, now: float | None = None) -> dict[str, Any]:
        data = asdict(self)
        data["until_iso"] = _iso(self.until)
        data["created_iso"] = _iso(self.created_at)
        data["remaining_seconds"] = max(0, int(self.remaining(now)))
        return data


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


class Blocklist:
    """The blocklist of a stage's data directory (see the module's docstring)."""

    def __init__(self, data_dir: Path | str, *, clock: Callable[[], float] = time.time):
        self.directory = Path(data_dir) / SHIELD_DIR
        self.path = self.directory / BLOCKS_FILE
        self.map_path = self.directory / MAP_FILE
        self.clock = clock

    # ---- reading ------------------------------------------------------------------------------
    def read(self) -> dict[str, Block]:
        """Every block in the file, expired ones too ({} when there is no file)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        try:
            data = orjson.loads(raw)
            return {item["source"]: Block(**item) for item in data["blocks"]}
        except (orjson.JSONDecodeError, KeyError, TypeError) as error:
            raise BlockError(f"{self.path} is not a blocklist ({error}): move it away to start afresh (every block is lifted)") from None

    def active(self, now: float | None = None) -> dict[str, Block]:
        now = self.clock() if now is None else now
        return {source: block for source, block in self.read().items() if block.until > now}

    # ---- changing -----------------------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[dict[str, Block]]:
        """The blocks, to change in place; written back (expired ones dropped) when the block ends."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.directory / "blocks.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            blocks = self.read()
            yield blocks
            now = self.clock()
            self._write({s: b for s, b in blocks.items() if b.until > now})

    def _write(self, blocks: dict[str, Block]) -> None:
        ordered = sorted(blocks.values(), key=lambda b: b.source)
        body = orjson.dumps({"version": 1, "blocks": [asdict(b) for b in ordered]}, option=orjson.OPT_INDENT_2)
        _replace(self.path, body)
        _replace(self.map_path, self.map_text(ordered).encode())

    @staticmethod
    def map_text(blocks: list[Block] | Any) -> str:
        """HAProxy's map: one ``<source> <until>`` line per block (a comment first)."""
        lines = ["# summit shield blocklist: <source> <blocked until, epoch seconds> (written by summit; edit with summit shield block/unblock)"]
        lines += [f"{b.source} {int(b.until)}" for b in blocks]
        return "\n".join(lines) + "\n"

    def ensure_map(self) -> Path:
        """The map file, written from the list (so that HAProxy can load it when it starts)."""
        with self._locked():
            pass
        return self.map_path

    def add(self, block: Block) -> tuple[Block, bool]:
        """Block a source until ``block.until``; a source blocked until later keeps its block.
        Returns (the block in force, whether this changed it)."""
        with self._locked() as blocks:
            known = blocks.get(block.source)
            if known is not None and known.until > self.clock() and known.until >= block.until:
                return known, False
            blocks[block.source] = block
            return block, True

    def remove(self, source: str) -> Block | None:
        """Lift the block of ``source`` now; the block it had (None: it had none in force)."""
        key = source_key(source)
        with self._locked() as blocks:
            known = blocks.pop(key, None)
        return known if known is not None and known.until > self.clock() else None


def _replace(path: Path, body: bytes) -> None:
    """Write ``path`` whole (owner-only) and rename it into place: a reader sees the old or the new."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, body)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
