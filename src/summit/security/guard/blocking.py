"""Automatic blocking (``[guard.blocking]``): a guard run's new and updated findings of the chosen
types and severities block their source through the Shield layer, until ``seconds`` after the
finding was last seen.

A block goes into the stage's blocklist (``summit.security.blocks``), which the app reads where
there is no edge, and into the running front door's map (HAProxy's runtime API, so every app
server behind it is covered at once; HAProxy loads the file when it starts). Each block made or
lengthened is an audit record, ``shield:Block`` (the source in its resource and details, the
finding's id, type and severity), as is each lift (``shield:Unblock``).

Never blocked: ``shield.exempt``, ``server.trusted_proxies`` (blocking the load balancer's address
would block everyone behind it) and ``guard.blocking.never`` (loopback, by default). Findings
without a source (brute force names an account) block nothing.

    blocker = Blocker.for_blueprint(blueprint)      # None when guard.blocking.enabled is off
    made = blocker.apply(report.new + report.updated)
"""

from __future__ import annotations

import fnmatch
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from summit.security.blocks import Block, BlockError, Blocklist, covers, source_key
from summit.security.guard.findings import FINDING_TYPES, Finding
from summit.security.guard.sources import to_ms
from summit.security.guard.store import GuardError

log = logging.getLogger("summit.guard")


@dataclass(frozen=True)
class Applied:
    """What applying blocks did: the blocks made or lengthened, and whether the edge took them."""

    blocks: list[Block]
    edge: str  # "pushed", "none" (no front door running: the file holds them), or the error it gave
    skipped: list[tuple[str, str]]  # (source, why) of findings that matched but were not blocked

    def as_dict(self) -> dict[str, Any]:
        return {"blocked": [b.as_dict() for b in self.blocks], "edge": self.edge,
                "skipped": [{"source": s, "why": why} for s, why in self.skipped]}


class Blocker:
    def __init__(self, data_dir: Path, settings: Any, *, protected: list[str], edge: bool = True,
                 clock: Callable[[], float] = time.time):
        """``settings``: ``guard.blocking``; ``protected``: networks never blocked (with ``settings.never``);
        ``edge``: push blocks to the stage's running HAProxy (its runtime socket under the data directory)."""
        for pattern in settings.types:
            if not any(fnmatch.fnmatchcase(name, pattern) for name in FINDING_TYPES):
                raise GuardError(f"guard.blocking.types: {pattern!r} matches no finding type; the types are: {', '.join(FINDING_TYPES)}")
        self.data_dir = Path(data_dir)
        self.settings = settings
        self.protected = [*protected, *settings.never]
        self.edge = edge
        self.clock = clock
        self.blocklist = Blocklist(self.data_dir, clock=clock)

    @classmethod
    def for_blueprint(cls, blueprint: Any) -> Blocker | None:
        settings = blueprint.guard.blocking
        if not settings.enabled:
            return None
        proxies = [p.strip() for p in blueprint.server.trusted_proxies.split(",") if p.strip()]
        protected = list(blueprint.shield.exempt)
        for proxy in proxies:
            try:
                protected.append(source_key(proxy) if "/" not in proxy else proxy)
            except BlockError:
                continue  # a host name: nothing to compare addresses with
        return cls(blueprint.data_dir, settings, protected=protected, edge=has_edge(blueprint))

    def wanted(self, finding: Finding) -> bool:
        """Whether the finding is of a type and severity that blocks (whatever its source)."""
        return finding.severity >= self.settings.min_severity and any(
            fnmatch.fnmatchcase(finding.type, pattern) for pattern in self.settings.types)

    def apply(self, findings: list[Finding]) -> Applied:
        """Block the sources of the findings that call for it; push the list to the edge if any changed."""
        now = self.clock()
        made: list[Block] = []
        skipped: list[tuple[str, str]] = []
        for finding in findings:
            if not self.wanted(finding) or finding.source is None:
                continue
            try:
                source = source_key(finding.source)
            except BlockError:
                skipped.append((finding.source, "not an address"))
                continue
            if covers(self.protected, source):
                skipped.append((source, "exempt (shield.exempt, server.trusted_proxies or guard.blocking.never)"))
                continue
            until = to_ms(finding.last_seen) / 1000 + self.settings.seconds
            if until <= now:
                skipped.append((source, f"last seen more than {self.settings.seconds} s ago"))
                continue
            block = Block.make(source, until=until, now=now, by="guard", finding=finding.id, type=finding.type,
                               severity=finding.severity, reason=f"summit guard finding {finding.id}: {finding.type}")
            block, changed = self.blocklist.add(block)
            if changed:
                made.append(block)
        edge = sync_edge(self.data_dir) if made and self.edge else "none"
        if made:
            record_blocks(self.data_dir, "shield:Block", made)
        return Applied(made, edge, skipped)


def has_edge(blueprint: Any) -> bool:
    """Whether the stage's front door refuses blocked sources (HAProxy with the Shield's block)."""
    return bool(blueprint.engines.haproxy.enabled and blueprint.shield.edge.enabled)


def sync_edge(data_dir: Path) -> str:
    """Push the blocklist to the stage's running HAProxy: "pushed", "none" (not running), or the error."""
    from summit.engines.shield import blocklist_map, push_blocks, running_socket

    socket_path = running_socket(data_dir)
    if socket_path is None:
        return "none"
    try:
        push_blocks(socket_path, blocklist_map(data_dir), list(Blocklist(data_dir).active().values()))
    except (OSError, RuntimeError) as error:
        log.warning("the front door did not take the blocklist: %s", error)
        return f"error: {error}"
    return "pushed"


def record_blocks(data_dir: Path, action: str, blocks: list[Block], *, user_id: str | None = None) -> None:
    """One audit record per block (``shield:Block``) or lift (``shield:Unblock``), in a chain of this
    process. A log that cannot be written is reported, not fatal: the block stands (and is listed)."""
    from summit.security.audit import AuditError, AuditLog

    audit = AuditLog(data_dir)
    try:
        audit.start()
        waits = [audit.submit(action, user_id=user_id, resource=f"arn:summit:shield:::source/{b.source}", result="success",
                              reason=b.by, details={"source": b.source, "until": int(b.until), "finding": b.finding,
                                                    "type": b.type, "severity": b.severity})
                 for b in blocks]
        for wait in waits:
            wait.result(timeout=30)
    except (AuditError, OSError, ValueError, TimeoutError) as error:
        log.warning("the audit log did not take the %s record(s): %s", action, error)
    finally:
        try:
            audit.close()
        except AuditError as error:
            log.warning("the audit log could not seal its file: %s", error)
