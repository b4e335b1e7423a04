"""The blocklist (summit.security.blocks) and the guard's choice of what to block
(summit.security.guard.blocking), without engines: sources as the edge keys them, adding, extending,
lifting and expiring blocks, the files they are written to, which findings block (types, severity,
a source, not protected, not stale), and the [guard.blocking] settings."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from summit.blueprint import BlueprintError, load_blueprint
from summit.blueprint.model import GuardBlocking
from summit.security.blocks import Block, BlockError, Blocklist, covers, source_key
from summit.security.guard import Detector, Finding, GuardError
from summit.security.guard.blocking import Blocker

NOW = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def test_sources_are_keyed_as_the_edge_counts_them() -> None:
    assert source_key(" 192.0.2.7 ") == "192.0.2.7"
    assert source_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert source_key("2001:db8::1:2:3:4") == "2001:db8::/64" == source_key("2001:db8::/64")
    for bad in ("example.org", "10.0.0.0/8", "2001:db8::/48", ""):
        with pytest.raises(BlockError):
            source_key(bad)
    assert covers(["10.0.0.0/8"], "10.1.2.3") and not covers(["10.0.0.0/8"], "192.0.2.7")
    assert covers(["2001:db8::5/128"], "2001:db8::/64")  # a block that would cover a protected host is refused
    assert not covers(["127.0.0.1/32"], "2001:db8::/64")


def test_blocks_are_added_extended_lifted_and_expire(tmp_path: Path) -> None:
    clock = Clock()
    blocks = Blocklist(tmp_path, clock=clock)
    assert blocks.active() == {} and not blocks.path.exists()
    first, changed = blocks.add(Block.make("192.0.2.7", until=NOW + 60.2, reason="r", by="operator", now=NOW))
    assert changed and first.until == NOW + 61  # whole seconds, as HAProxy's map holds them
    same, changed = blocks.add(Block.make("192.0.2.7", until=NOW + 30, reason="shorter", by="guard", now=NOW))
    assert not changed and same.reason == "r"  # a longer block in force stays
    _, changed = blocks.add(Block.make("192.0.2.7", until=NOW + 600, reason="longer", by="guard", now=NOW))
    assert changed and blocks.active()["192.0.2.7"].reason == "longer"
    blocks.add(Block.make("2001:db8::9", until=NOW + 10, reason="v6", by="guard", now=NOW))
    assert sorted(blocks.active()) == ["192.0.2.7", "2001:db8::/64"]
    assert blocks.map_path.read_text().splitlines()[1:] == [f"192.0.2.7 {int(NOW) + 600}", f"2001:db8::/64 {int(NOW) + 10}"]
    for path in (blocks.path, blocks.map_path):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(blocks.directory).st_mode) == 0o700

    clock.now = NOW + 11
    assert sorted(blocks.active()) == ["192.0.2.7"]  # expired without anybody
    assert blocks.remove("2001:db8::9") is None  # it had none in force; the write drops it
    assert "2001:db8" not in blocks.map_path.read_text()
    lifted = blocks.remove("192.0.2.7")
    assert lifted is not None and lifted.reason == "longer" and blocks.active() == {}
    blocks.path.write_text("{not json")
    with pytest.raises(BlockError, match="move it away"):
        blocks.active()


def finding(type_: str = "Recon:Network/Scanning", *, source: str | None = "203.0.113.7", severity: float = 2.0,
            last_seen: str = "2027-01-15T08:00:00.000Z") -> Finding:
    return Finding("f" * 16, type_, severity, None, source, last_seen, last_seen, 30)


def test_the_blocker_blocks_the_chosen_findings_sources_and_nothing_else(tmp_path: Path) -> None:
    clock = Clock()  # 2027-01-15T08:00:00Z
    settings = GuardBlocking(enabled=True, min_severity=2.0, seconds=900, never=["127.0.0.1/32"])
    blocker = Blocker(tmp_path, settings, protected=["10.0.0.0/8"], edge=False, clock=clock)
    done = blocker.apply([
        finding(),                                                            # blocked
        finding(source="127.0.0.1"),                                          # never (guard.blocking.never)
        finding(source="10.1.2.3"),                                           # protected (exempt, the proxies)
        finding(source="203.0.113.8", last_seen="2027-01-15T07:40:00.000Z"),  # older than the block would last
        finding(source="203.0.113.9", severity=1.5),                          # below min_severity
        finding("UnauthorizedAccess:User/BruteForce", source=None, severity=8.0),     # no source
        finding("UnauthorizedAccess:User/NewSourceWithoutMfa", source="203.0.113.10", severity=3.0),  # not a chosen type
    ])
    assert [b.source for b in done.blocks] == ["203.0.113.7"] and done.edge == "none"
    assert done.blocks[0].until == NOW + 900 and done.blocks[0].type == "Recon:Network/Scanning"
    assert [s for s, _ in done.skipped] == ["127.0.0.1", "10.1.2.3", "203.0.113.8"]
    assert blocker.apply([finding()]).blocks == []  # already blocked that long: no new block, no new record
    with pytest.raises(GuardError, match="matches no finding type"):
        Blocker(tmp_path, GuardBlocking(types=["Recon:*", "Nope:*"]), protected=[])


def test_blocking_settings_and_the_stage_wiring(tmp_path: Path) -> None:
    base = {"data_dir": str(tmp_path)}
    blueprint = load_blueprint(environ={}, overrides=base)
    assert blueprint.guard.blocking.enabled is False and Blocker.for_blueprint(blueprint) is None  # off by default
    assert Detector.for_blueprint(blueprint).blocker is None
    environ = {"SUMMIT_GUARD__BLOCKING__ENABLED": "true", "SUMMIT_GUARD__BLOCKING__NEVER": "127.0.0.1,10.0.0.0/8",
               "SUMMIT_SHIELD__EXEMPT": "192.0.2.0/24", "SUMMIT_SERVER__TRUSTED_PROXIES": "127.0.0.9"}
    on = load_blueprint(environ=environ, overrides=base)
    assert on.guard.blocking.never == ["127.0.0.1/32", "10.0.0.0/8"]
    blocker = Blocker.for_blueprint(on)
    assert blocker is not None and blocker.protected == ["192.0.2.0/24", "127.0.0.9", "127.0.0.1/32", "10.0.0.0/8"]
    assert Detector.for_blueprint(on).blocker is not None
    for bad in ({"seconds": 0}, {"min_severity": 9.5}, {"never": ["nowhere"]}, {"sometimes": True}):
        with pytest.raises(BlueprintError):
            load_blueprint(environ={}, overrides={**base, "guard": {"blocking": bad}})
