"""The guard's rules, store and readers on logs written by the real writers: the audit log's
``AuditLog`` on a clock of the test's own (so windows and learning periods are days long without
waiting), access-log lines in HAProxy's and the app's formats; deduplication, archiving and
incremental reading. The scripted attacks against the app are in tests/api/test_guard_attacks.py,
the commands in test_cli_guard.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from summit.blueprint import BlueprintError, load_blueprint
from summit.blueprint.model import Guard
from summit.security.guard import Detector, Finding, GuardError
from summit.security.guard.sources import parse_access_line
from summit.security.guard.store import GuardStore

from guard_script import DAY, T0, Script, haproxy_line

BRUTE_FORCE = "UnauthorizedAccess:User/BruteForce"
STUFFING = "CredentialAccess:User/CredentialStuffing"
SCANNING = "Recon:Network/Scanning"
ADMIN = "PrivilegeEscalation:User/UnusualAdminActivity"
NEW_SOURCE = "UnauthorizedAccess:User/NewSourceWithoutMfa"


@pytest.fixture
def script(tmp_path: Path) -> Iterator[Script]:
    s = Script(tmp_path)
    yield s
    s.log.close()


def run(data_dir: Path, **settings: object) -> list[Finding]:
    detector = Detector(data_dir, Guard(**settings))
    detector.run()
    return detector.findings()


def kinds(findings: list[Finding]) -> list[tuple[str, str | None, str | None]]:
    return sorted((f.type, f.account, f.source) for f in findings)


# ---- the rules on audit records -------------------------------------------------------------------


def test_brute_force_counts_within_the_window_only(script: Script, tmp_path: Path) -> None:
    script.sign_up("7", "10.0.0.1")
    slow = [script.fail("7", "203.0.113.1", after=600) for _ in range(9)]  # ten minutes apart: never ten within 15 minutes
    assert run(tmp_path) == []
    quick = [script.fail("7", f"203.0.113.{n}", after=5) for n in range(8)]  # then eight more, quickly
    [finding] = run(tmp_path)
    assert (finding.type, finding.account, finding.count, finding.severity) == (BRUTE_FORCE, "7", 10, 5.0)
    # the ten within 15 minutes of the last: the two latest slow ones, then the quick ones
    assert [e["event_id"] for e in finding.evidence] == slow[-2:] + quick
    assert finding.first_seen == finding.evidence[0]["time"] and finding.last_seen == finding.evidence[-1]["time"]


def test_a_brute_force_that_signs_in_is_high(script: Script, tmp_path: Path) -> None:
    script.sign_up("7", "10.0.0.1")
    for n in range(10):
        script.fail("7", f"203.0.113.{n % 2}")
    script.sign_in("7", "10.0.0.1")  # the owner, from home: not the attacker
    [finding] = run(tmp_path)
    assert finding.severity == 5.0 and "signed_in_from" not in finding.details
    success = script.sign_in("7", "203.0.113.1", after=60)  # from a source that was failing
    findings = run(tmp_path)
    assert kinds(findings) == [(BRUTE_FORCE, "7", None), (NEW_SOURCE, "7", "203.0.113.1")]
    [finding] = [f for f in findings if f.type == BRUTE_FORCE]
    assert finding.severity == 8.0 and finding.severity_label == "high" and finding.count == 10
    assert finding.details["signed_in_from"] == "203.0.113.1" and finding.evidence[-1]["event_id"] == success
    assert "then a sign-in succeeded" in finding.title


def test_credential_stuffing_counts_accounts_and_a_hit_is_high(script: Script, tmp_path: Path) -> None:
    for n in range(4):
        script.sign_up(str(n), "10.0.0.1")
    for _ in range(3):  # one account tried over and over is not stuffing
        script.fail("1", "198.51.100.7")
    for n in range(4):
        script.fail(str(n), "198.51.100.7")
    for _ in range(5):
        script.fail(None, "198.51.100.7")  # logins naming no account: one more account each
    assert run(tmp_path) == []  # 9 accounts
    script.fail(None, "198.51.100.7")
    [finding] = run(tmp_path)
    assert (finding.type, finding.source, finding.details["accounts"], finding.count) == (STUFFING, "198.51.100.7", 10, 13)
    assert finding.details["listed_accounts"] == ["0", "1", "2", "3"] and finding.severity == 5.0
    script.sign_in("2", "198.51.100.7")
    found = {f.type: f for f in run(tmp_path)}
    assert found[STUFFING].severity == 8.0 and found[STUFFING].details["signed_in_to"] == "2"


def test_admin_learning_period_then_a_new_admin_and_a_burst(script: Script, tmp_path: Path) -> None:
    script.sign_up("1", "10.0.0.1")
    script.admin("1", "groups/editors", after=3600)  # within the first week: learned
    assert run(tmp_path) == []
    script.admin("1", "groups/writers", after=8 * DAY)  # the usual admin, later: usual
    script.admin("2", "policies/All", after=60)  # somebody new
    [finding] = run(tmp_path)
    assert (finding.type, finding.account, finding.details["reasons"], finding.severity) == (ADMIN, "2", ["first_admin_action"], 6.0)
    for n in range(30):  # the new admin keeps going: a burst as well
        script.admin("2", f"groups/g{n}", after=1)
    [finding] = run(tmp_path)
    assert finding.details["reasons"] == ["first_admin_action", "burst"] and finding.severity == 8.0 and finding.count == 31
    assert run(tmp_path, admin_learning_seconds=0) != []  # (no learning: every new principal is unusual)


def test_a_refused_admin_call_is_not_an_admin_action(script: Script, tmp_path: Path) -> None:
    script.admin("1", "groups/editors")
    script("api:CreateGroup", user_id="2", resource="/api/v1/admin/groups/x", status=403, after=30 * DAY)
    assert run(tmp_path) == []


def test_new_source_by_network_and_not_with_mfa(script: Script, tmp_path: Path) -> None:
    script.sign_up("1", "10.0.0.5")
    script.sign_in("1", "10.0.0.9")  # the same /24
    script.sign_up("2", "2001:db8::1")
    script.sign_in("2", "2001:db8::abcd")  # the same /64
    script.sign_up("3", "10.0.0.5")
    script("auth:SignIn", user_id="3", result="success", reason="mfa_required", source="192.0.2.1")
    script("auth:Mfa", user_id="3", result="success", source="192.0.2.1")
    assert run(tmp_path, new_source_ipv4_prefix=24) == []


def test_new_source_with_exact_addresses(script: Script, tmp_path: Path) -> None:
    script.sign_up("1", "10.0.0.5")
    event = script.sign_in("1", "10.0.0.9")
    script.sign_in("1", "10.0.0.9")
    [finding] = run(tmp_path)
    assert (finding.type, finding.account, finding.source, finding.count) == (NEW_SOURCE, "1", "10.0.0.9", 1)
    assert finding.details["network"] == "10.0.0.9/32" and finding.evidence[0]["event_id"] == event


# ---- the store: deduplication, archiving, incremental reading ---------------------------------------


def test_a_rerun_updates_the_finding_and_an_archived_one_stays_handled(script: Script, tmp_path: Path) -> None:
    script.sign_up("7", "10.0.0.1")
    for _ in range(10):
        script.fail("7", "203.0.113.1")
    [first] = run(tmp_path)
    assert run(tmp_path)[0].count == 10  # nothing new: the same finding, the same count
    script.fail("7", "203.0.113.1")
    [again] = run(tmp_path)
    assert (again.id, again.count, again.first_seen) == (first.id, 11, first.first_seen) and again.last_seen > first.last_seen

    detector = Detector(tmp_path, Guard())
    assert detector.archive(first.id[:6]).archived
    assert detector.findings() == [] and [f.id for f in detector.findings(archived=True)] == [first.id]
    script.fail("7", "203.0.113.1")  # it goes on: a new finding, the handled one stays as it was
    [reopened] = run(tmp_path)
    assert reopened.id != first.id and reopened.count == 1
    assert [f.count for f in detector.findings(archived=True) if f.id == first.id] == [11]
    with pytest.raises(GuardError, match="no finding"):
        detector.archive("ffffffffffff")
    with pytest.raises(GuardError, match="not a finding id"):
        detector.archive("x")


def test_the_hook_hears_new_and_updated_findings(script: Script, tmp_path: Path) -> None:
    heard: list[tuple[str, str, str | None]] = []
    detector = Detector(tmp_path, Guard(), on_finding=lambda f, change: heard.append((change, f.type, f.source)))
    for n in range(10):
        script.fail(None, "198.51.100.9") if n else script.fail("5", "198.51.100.9")
    detector.run()
    script.fail(None, "198.51.100.9")
    detector.run()
    detector.run()
    assert heard == [("new", STUFFING, "198.51.100.9"), ("updated", STUFFING, "198.51.100.9")]


def test_only_complete_lines_are_read_and_a_rotated_log_is_read_again(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "haproxy.log"
    log.parent.mkdir()
    lines = [haproxy_line("203.0.113.5", f"/probe{n}", 404, n) for n in range(30)]
    log.write_text("".join(lines[:29]) + lines[29][:-20])  # the last line is still being written
    settings = Guard(access_logs=["logs/haproxy.log"])
    detector = Detector(tmp_path, settings)
    assert detector.run().requests == 29 and detector.findings() == []
    with log.open("a") as handle:
        handle.write(lines[29][-20:])
    report = detector.run()
    assert report.requests == 1 and [f.count for f in detector.findings()] == [30]
    log.rename(log.with_suffix(".1"))  # rotated: a new file under the old name
    log.write_text("".join(haproxy_line("203.0.113.6", f"/p{n}", 404, 40 + n) for n in range(3)))
    assert detector.run().requests == 3


def test_access_logs_must_be_under_the_data_directory(tmp_path: Path) -> None:
    with pytest.raises(GuardError, match="under the data directory"):
        Detector(tmp_path, Guard(access_logs=["/var/log/haproxy.log"])).run()


def test_the_store_file_is_owner_only(tmp_path: Path) -> None:
    GuardStore(tmp_path).close()
    assert (tmp_path / "guard" / "guard.db").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "guard").stat().st_mode & 0o777 == 0o700


# ---- access-log lines ---------------------------------------------------------------------------------


def test_haproxy_lines() -> None:
    request = parse_access_line(haproxy_line("203.0.113.5", "/wp-login.php", 404, 7).encode(), "logs/haproxy.log", 3)
    assert request is not None
    assert (request.source, request.method, request.path, request.status, request.blocked) == ("203.0.113.5", "GET", "/wp-login.php", 404, False)
    assert request.time_ms == int((T0 + 7) * 1000) + 123 and request.evidence["line"] == 3
    v6 = parse_access_line(haproxy_line("2001:db8::7", "/", 200, 0).encode(), "x", 1)
    assert v6 is not None and v6.source == "2001:db8::7"
    denied = parse_access_line(haproxy_line("203.0.113.5", "/etc/passwd", 403, 0, term="PR--").encode(), "x", 1)
    assert denied is not None and denied.blocked  # refused by the front door itself: the WAF's hook
    tls = haproxy_line("203.0.113.5", "/", 404, 0).rstrip("\n") + " 0/0000000000000000/0/0/0 localhost/TLSv1.3/TLS_AES_256_GCM_SHA384\n"
    assert parse_access_line(tls.encode(), "x", 1) is not None  # httpslog: TLS fields after the request
    garbage = b'203.0.113.5:41000 [01/Jan/2026:00:00:00.000] public public/<NOSRV> -1/-1/-1/-1/0 400 0 - - PR-- 1/1/0/0/0 0/0 "<BADREQ>"'
    bad = parse_access_line(garbage, "x", 1)  # too malformed to parse: refused by the front door, a probe too
    assert bad is not None and (bad.path, bad.status, bad.blocked) == ("<BADREQ>", 400, True)
    for other in ("--- summit: starting haproxy: /usr/sbin/haproxy -db -f x", "[NOTICE]   (1) : haproxy version is 2.6.12",
                  garbage.decode().replace("PR--", "CR--"),  # connected and left (a readiness probe): no request
                  '127.0.0.1:44438 [01/Jan/2026:00:00:00.000] stats stats/<STATS> 0/0/0/0/0 404 2370 - - LR-- 1/1/0/0/0 0/0 "GET /x HTTP/1.1"',
                  "127.0.0.1:50000 [01/Jan/2026:00:00:00.000] l4-redis l4-redis/redis 1/0/5007 212 -- 1/1/0/0/0 0/0"):
        assert parse_access_line(other.encode(), "x", 1) is None, other


def test_app_json_lines() -> None:
    line = {"event": "request", "request_id": "a1", "level": "info", "logger": "summit.access", "timestamp": "2026-01-01T00:00:01.500000Z",
            "method": "GET", "path": "/.env", "route": "unmatched", "status": 404, "duration_ms": 0.4, "client": "198.51.100.4"}
    request = parse_access_line(json.dumps(line).encode(), "logs/app.log", 9)
    assert request is not None and (request.source, request.path, request.status, request.time_ms) == ("198.51.100.4", "/.env", 404, int(T0 * 1000) + 1500)
    assert parse_access_line(json.dumps({**line, "logger": "photos"}).encode(), "x", 1) is None
    assert parse_access_line(b'{"event": "started", "logger": "photos"}', "x", 1) is None
    assert parse_access_line(b"{not json summit.access", "x", 1) is None


def test_scanning_behind_haproxy_counts_blocks_too(tmp_path: Path) -> None:
    blueprint = load_blueprint(environ={}, overrides={"stage": "1k", "data_dir": str(tmp_path)})
    log = tmp_path / "logs" / "haproxy.log"
    log.parent.mkdir()
    lines = [haproxy_line("203.0.113.5", f"/x{n}", 403 if n % 3 == 0 else 404, n, term="PR--" if n % 3 == 0 else "----") for n in range(30)]
    lines += [haproxy_line("198.51.100.1", "/", 200, n) for n in range(100)]  # a busy, ordinary client
    log.write_text("".join(lines))
    detector = Detector.for_blueprint(blueprint)
    report = detector.run()
    assert report.logs == ["logs/haproxy.log"] and report.requests == 130
    [finding] = detector.findings()
    assert (finding.type, finding.source, finding.count, finding.details["blocked"]) == (SCANNING, "203.0.113.5", 30, 10)


def test_the_settings_come_from_the_blueprint(tmp_path: Path, script: Script) -> None:
    blueprint = load_blueprint(environ={"SUMMIT_GUARD__BRUTE_FORCE_FAILURES": "3"}, overrides={"data_dir": str(tmp_path)})
    assert blueprint.guard.brute_force_failures == 3
    assert Detector.for_blueprint(blueprint).access_logs == ["logs/summit-up.log", "logs/app.log", "logs/web-*.log"]
    for _ in range(3):
        script.fail("7", "203.0.113.1")
    Detector.for_blueprint(blueprint).run()
    assert [f.count for f in Detector.for_blueprint(blueprint).findings()] == [3]
    with pytest.raises(BlueprintError, match="guard.scan_requests"):
        load_blueprint(environ={"SUMMIT_GUARD__SCAN_REQUESTS": "1"})
    with pytest.raises(BlueprintError, match="guard.brute_force_treshold"):
        load_blueprint(environ={}, overrides={"guard": {"brute_force_treshold": 3}})
