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


def test_the_commands_say_what_was_blocked_and_lift_it(tmp_path: Path) -> None:
    import json
    import time

    from typer.testing import CliRunner

    import summit.cli.guard  # noqa: F401  (registers the commands)
    import summit.cli.shield  # noqa: F401
    from summit.cli import main
    from summit.security.audit import Query, search

    from guard_script import Script

    script = Script(tmp_path)
    script.now = time.time() - 30  # recent: a block lasts from the finding's last event
    try:
        for _ in range(10):
            script.fail(None, "198.51.100.7")
    finally:
        script.log.close()
    env = {"COLUMNS": "250", "SUMMIT_GUARD__BLOCKING__ENABLED": "true", "SUMMIT_GUARD__BLOCKING__SECONDS": "600"}

    def run(*args: str) -> object:
        return CliRunner().invoke(main.app, [*args, "--data-dir", str(tmp_path)], env=env)

    watched = run("guard", "watch", "--count", "1", "--interval", "1")
    assert watched.exit_code == 0, watched.output
    text = " ".join(watched.output.split())
    assert "new" in text and "CredentialAccess:User/CredentialStuffing" in text and "blocked 198.51.100.7 until" in text
    again = run("guard", "findings", "--json")
    assert json.loads(again.stdout)["run"]["blocking"] == {"blocked": [], "edge": "none", "skipped": []}
    shown = json.loads(run("shield", "show", "--json").stdout)
    assert shown["limits"] is None and [b["source"] for b in shown["blocked"]] == ["198.51.100.7"]
    assert 500 < shown["blocked"][0]["remaining_seconds"] <= 600 and shown["blocked"][0]["by"] == "guard"
    lifted = run("shield", "unblock", "198.51.100.7")
    said = " ".join(lifted.output.split())  # the console wraps at its width
    assert lifted.exit_code == 0 and "unblocked 198.51.100.7" in said and "the app refuses blocked sources" in said
    assert [e.action for e in search(tmp_path, Query(action="shield:*"))] == ["shield:Block", "shield:Unblock"]
    env["SUMMIT_GUARD__BLOCKING__TYPES"] = "Recon:*,Nope:*"
    bad = run("guard", "findings")
    assert bad.exit_code == 2 and "matches no finding type" in bad.output
