"""``summit config check``: each rule on a data directory laid out by the real code paths (the audit
writer, Layout.secret, the state record), compliant and provoked into NON_COMPLIANT; the CLI's exit
codes and --json. No engine runs: the running stage's files are written as it writes them."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

import summit.cli.config_check  # noqa: F401  (registers the commands)
from summit.blueprint import load_blueprint
from summit.cli.main import app, console
from summit.engines import Layout, state
from summit.ops.config_rules import (
    COMPLIANT,
    NON_COMPLIANT,
    NOT_APPLICABLE,
    RULES,
    Context,
    Listener,
    evaluate,
)
from summit.migrate import upgrade_all
from summit.security.audit import AuditLog
from summit.security.identity import KeySet, PoolConfig, UserPool, migrations
from summit.security.passwords import PasswordHasher
from summit.wiring import open_port

runner = CliRunner()
ALL_BUT_PII = [name for name in RULES if name != "personal-data-encrypted"]
HBA = ("# summit: loopback only, SCRAM passwords\n"
       "host    all          all               127.0.0.1/32  scram-sha-256\n"
       "host    replication  replicator        127.0.0.1/32  scram-sha-256\n")


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("SUMMIT_"):
            monkeypatch.delenv(name)
    monkeypatch.setattr(console, "width", 200)


async def _write_audit(data: Path) -> None:
    async with AuditLog(data) as log:
        await log.record("auth:SignIn", user_id="42", resource="arn:summit:auth:::session", status=200)


async def _sign_up(data: Path, *usernames: str) -> None:
    """Users signed up by the real pool into the stage-1 database the real migrations made."""
    blueprint = load_blueprint(overrides={"data_dir": str(data)}, environ={})
    db = open_port("sql", blueprint.port_url("sql"))
    await asyncio.to_thread(upgrade_all, blueprint, db.sync_url)
    cache, mailer = open_port("cache", "memory://"), open_port("mail", f"outbox://{data}/outbox")
    pool = UserPool(db=db, cache=cache, mailer=mailer, keys=KeySet(data / "keys" / "identity"),
                    hasher=PasswordHasher(time_cost=1, memory_cost=1024), config=PoolConfig(issuer="http://testserver"))
    await pool.seal_plaintext()  # what Security.open does
    for name in usernames:
        await pool.sign_up(name, f"{name}@example.com", "correct horse battery")
    await mailer.close()
    await cache.close()
    await db.close()


def _old_plaintext_database(data: Path) -> None:
    """app.db as the pool's schema before id0003 kept it: emails in clear."""
    url = f"sqlite:///{data / 'app.db'}"
    migrations.upgrade(url, "id0002")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO identity_users (id, username, email, password_hash, created_at, password_changed_at) "
                          "VALUES (1, 'alice', 'alice@example.com', 'x', 0, 0)"))
    engine.dispose()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A stage-1 data directory after a run: an audit log, a generated secret, a log file, a blueprint file."""
    data = tmp_path / ".summit"
    asyncio.run(_write_audit(data))
    Layout(data).secret("app-key")
    (data / "logs").mkdir()
    (data / "logs" / "app.log").write_text("started\nGET /healthz 200\n")
    (tmp_path / "summit.toml").write_text('stage = "1"\n')
    return data


def _ctx(data: Path, stage: str = "1", **fields) -> Context:  # noqa: ANN003
    overrides = {"stage": stage, "data_dir": str(data)}
    file = Path.cwd() / "summit.toml"  # the test's working directory (clean_env)
    bp = load_blueprint(file, overrides=overrides, environ={})
    return Context.for_blueprint(bp, blueprint_file=file, **fields)


def _by_rule(ctx: Context, rule: str) -> list:
    return evaluate(ctx, [rule]).results


def test_a_stage_1_data_dir_is_compliant(data: Path) -> None:
    asyncio.run(_sign_up(data, "alice"))
    report = evaluate(_ctx(data))
    got = {r.rule: r.compliance for r in report.results}
    assert got == {
        "tls-at-edge": NOT_APPLICABLE, "loopback-only-engines": NOT_APPLICABLE, "no-trust-auth": NOT_APPLICABLE,
        "no-plaintext-secrets": COMPLIANT, "personal-data-encrypted": COMPLIANT, "no-plaintext-signing-keys": COMPLIANT,
        "audit-log-verifiable": COMPLIANT, "enough-zones": NOT_APPLICABLE,
    }, report.results
    assert report.ok
    pii = [r for r in report.results if r.rule == "personal-data-encrypted"][0]
    assert "1 user(s): emails stored as a keyed hash" in pii.reason


def test_tls_at_the_edge_from_1k(data: Path) -> None:
    (on,) = _by_rule(_ctx(data, "1k"), "tls-at-edge")  # on in the presets from 1k
    assert on.compliance == COMPLIANT
    (data.parent / "summit.toml").write_text('[engines.haproxy]\ntls = false\n')
    (off,) = _by_rule(_ctx(data, "1k"), "tls-at-edge")
    assert off.compliance == NON_COMPLIANT and "engines.haproxy.tls = true" in off.reason


def _running(data: Path, processes: list[dict]) -> dict:
    """The record `summit up` writes (its own pid: alive), and the ports.json the plan keeps."""
    bp = load_blueprint(overrides={"stage": "1k", "data_dir": str(data)}, environ={})
    record = state.write(bp, "http://127.0.0.1:8000", ready=True, processes=processes)
    ports = {p["name"]: int(p["address"].rpartition(":")[2]) for p in processes if p["kind"] != "haproxy"}
    (data / "engines").mkdir(exist_ok=True)
    (data / "engines" / "ports.json").write_text(json.dumps(ports))
    return record


PROCS = [
    {"name": "postgres-primary", "kind": "postgres", "address": "127.0.0.1:21001", "pid": 1},
    {"name": "web-1", "kind": "app", "address": "127.0.0.1:21002", "pid": 2},
    {"name": "haproxy", "kind": "haproxy", "address": "0.0.0.0:8000", "pid": 3},
]


def test_only_the_front_door_listens_beyond_loopback(data: Path) -> None:
    _running(data, PROCS)
    sockets = [Listener("127.0.0.1", 21001), Listener("127.0.0.1", 21002), Listener("0.0.0.0", 8000)]
    results = _by_rule(_ctx(data, "1k", listeners=lambda: sockets), "loopback-only-engines")
    assert [r.compliance for r in results] == [COMPLIANT], results
    # the record says a web process binds every address
    _running(data, [*PROCS[:1], {**PROCS[1], "address": "0.0.0.0:21002"}, PROCS[2]])
    (bad,) = _by_rule(_ctx(data, "1k", listeners=lambda: sockets), "loopback-only-engines")
    assert bad.compliance == NON_COMPLIANT and bad.resource == "process web-1" and "127.0.0.1" in bad.reason
    # the record is fine but the socket on PostgreSQL's port is not
    _running(data, PROCS)
    leaky = [Listener("::", 21001), *sockets[1:]]
    (bad,) = _by_rule(_ctx(data, "1k", listeners=lambda: leaky), "loopback-only-engines")
    assert bad.compliance == NON_COMPLIANT and "postgres-primary" in bad.resource


def test_the_real_socket_table_is_read(data: Path) -> None:
    _running(data, PROCS)
    results = _by_rule(_ctx(data, "1k"), "loopback-only-engines")
    assert results[-1].compliance in (COMPLIANT, NOT_APPLICABLE)


def test_no_trust_in_pg_hba(data: Path) -> None:
    hba = data / "engines" / "postgres-primary" / "data" / "pg_hba.conf"
    hba.parent.mkdir(parents=True)
    hba.write_text(HBA)
    (ok,) = _by_rule(_ctx(data, "1+"), "no-trust-auth")
    assert ok.compliance == COMPLIANT and ok.resource == "engines/postgres-primary/data/pg_hba.conf"
    hba.write_text(HBA + "# host all all 0.0.0.0/0 trust  (a comment is fine)\nlocal   all   all   trust\n")
    (bad,) = _by_rule(_ctx(data, "1+"), "no-trust-auth")
    assert bad.compliance == NON_COMPLIANT and "line(s) 5 use trust" in bad.reason and "scram-sha-256" in bad.reason
    (none,) = _by_rule(_ctx(data / "elsewhere", "1+"), "no-trust-auth")
    assert none.compliance == NOT_APPLICABLE


def test_secrets_files_are_owner_only(data: Path) -> None:
    (data / "secrets" / "app-key").chmod(0o644)
    (bad,) = _by_rule(_ctx(data), "no-plaintext-secrets")
    assert bad.compliance == NON_COMPLIANT and bad.resource == "secrets/app-key" and "chmod 600" in bad.reason
    (data / "secrets" / "app-key").chmod(0o600)
    (data / "secrets").chmod(0o755)
    (bad,) = _by_rule(_ctx(data), "no-plaintext-secrets")
    assert bad.resource == "secrets/" and "chmod 700" in bad.reason


def test_a_secret_value_in_a_log_or_the_blueprint(data: Path) -> None:
    value = Layout(data).secret("app-key")
    with open(data / "logs" / "app.log", "a") as log:
        log.write(f"connecting with password={value}\n")
    (bad,) = _by_rule(_ctx(data), "no-plaintext-secrets")
    assert bad.compliance == NON_COMPLIANT and bad.resource == "logs/app.log" and "secrets/app-key" in bad.reason
    assert value not in bad.reason  # the report never repeats the secret
    # only the tail is read: a value far above the last N bytes is not seen
    (small,) = _by_rule(_ctx(data, log_tail_bytes=10), "no-plaintext-secrets")
    assert small.compliance == COMPLIANT
    (data / "logs" / "app.log").write_text("clean\n")
    (data.parent / "summit.toml").write_text(f'# redis password {value}\nstage = "1"\n')
    (bad,) = _by_rule(_ctx(data), "no-plaintext-secrets")
    assert bad.resource.endswith("summit.toml") and "secrets/" in bad.reason


def test_the_audit_log_must_verify(data: Path) -> None:
    (sealed,) = sorted((data / "audit").glob("*/*.jsonl*"))[:1] or [None]
    assert sealed is not None
    with open(sealed, "ab") as handle:
        handle.write(b'{"forged": true}\n')
    (bad,) = _by_rule(_ctx(data), "audit-log-verifiable")
    assert bad.compliance == NON_COMPLIANT and "summit audit verify" in bad.reason
    empty = data.parent / "empty"
    (na,) = _by_rule(_ctx(empty), "audit-log-verifiable")
    assert na.compliance == NOT_APPLICABLE
    empty.mkdir()
    (empty / "app.db").write_text("")
    (missing,) = _by_rule(_ctx(empty), "audit-log-verifiable")
    assert missing.compliance == NON_COMPLIANT and "summit up" in missing.reason


def test_zones_are_not_applicable_before_1m(data: Path) -> None:
    for stage in ("1", "1k", "10k"):
        (r,) = _by_rule(_ctx(data, stage), "enough-zones")
        assert r.compliance == NOT_APPLICABLE and "1m" in r.reason


def test_personal_data_must_be_encrypted(data: Path) -> None:
    (na,) = _by_rule(_ctx(data), "personal-data-encrypted")
    assert na.compliance == NOT_APPLICABLE and "no database" in na.reason
    _old_plaintext_database(data)
    (old,) = _by_rule(_ctx(data), "personal-data-encrypted")
    assert old.compliance == NON_COMPLIANT and "summit db upgrade" in old.reason and "predates" in old.reason
    migrations.upgrade(f"sqlite:///{data / 'app.db'}")  # without the data directory: the rows stay in clear
    (clear,) = _by_rule(_ctx(data), "personal-data-encrypted")
    assert clear.compliance == NON_COMPLIANT and "1 user(s) have their email in clear" in clear.reason
    asyncio.run(_sign_up(data, "bob"))  # the pool seals alice's row when it opens
    (ok,) = _by_rule(_ctx(data), "personal-data-encrypted")
    assert ok.compliance == COMPLIANT and "2 user(s)" in ok.reason
    engine = create_engine(f"sqlite:///{data / 'app.db'}")
    with engine.begin() as conn:
        conn.execute(text("UPDATE identity_users SET email_sealed = NULL WHERE username = 'bob'"))
    (lost,) = _by_rule(_ctx(data), "personal-data-encrypted")
    assert lost.compliance == NON_COMPLIANT and "1 user(s) have no encrypted email" in lost.reason
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM identity_users WHERE username = 'bob'"))
    engine.dispose()
    (data / "keys" / "kms" / "keys" / "identity-pii" / "key.json").rename(data / "moved.json")
    (keys,) = _by_rule(_ctx(data), "personal-data-encrypted")
    assert keys.compliance == NON_COMPLIANT and "identity-pii" in keys.reason and "restore keys/kms" in keys.reason


def _unseal_to_old_files(data: Path) -> None:
    """Put the private keys back in clear, as summit stored them before the KMS held them."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from summit.security.audit.keys import KMS_KEY, SEALING_CONTEXT
    from summit.security.identity.keys import KMS_KEY as TOKENS_KEY
    from summit.security.identity.keys import sealing_context
    from summit.security.kms import Kms

    kms, keys = Kms.for_data_dir(data), data / "keys"
    raw = kms.decrypt((keys / "audit-signing.key.kms").read_bytes(), SEALING_CONTEXT, key_name=KMS_KEY)
    pem = Ed25519PrivateKey.from_private_bytes(raw).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (keys / "audit-signing.key").write_bytes(pem)
    (keys / "audit-signing.key.kms").unlink()
    for path in (keys / "identity").glob("*.jwk.kms"):
        kid = path.name.removesuffix(".jwk.kms")
        (keys / "identity" / f"{kid}.jwk").write_bytes(kms.decrypt(path.read_bytes(), sealing_context(kid), key_name=TOKENS_KEY))
        path.unlink()


def test_no_private_signing_key_in_clear(data: Path) -> None:
    KeySet(data / "keys" / "identity")
    (ok,) = _by_rule(_ctx(data), "no-plaintext-signing-keys")
    assert ok.compliance == COMPLIANT and "2 private key file(s), all encrypted" in ok.reason
    _unseal_to_old_files(data)
    bad = _by_rule(_ctx(data), "no-plaintext-signing-keys")
    assert {r.compliance for r in bad} == {NON_COMPLIANT} and len(bad) == 2
    assert bad[0].resource == "keys/audit-signing.key" and bad[1].resource.startswith("keys/identity/")
    assert "start the app once" in bad[0].reason
    KeySet(data / "keys" / "identity")  # what the app does when it starts: both are sealed again
    asyncio.run(_write_audit(data))
    (again,) = _by_rule(_ctx(data), "no-plaintext-signing-keys")
    assert again.compliance == COMPLIANT
    (data / "keys" / "copy.pem").write_bytes((data / "keys" / "audit-signing.pub").read_bytes().replace(b"PUBLIC", b"PRIVATE"))
    (stray,) = _by_rule(_ctx(data), "no-plaintext-signing-keys")
    assert stray.compliance == NON_COMPLIANT and stray.resource == "keys/copy.pem"
    (na,) = _by_rule(_ctx(data.parent / "empty"), "no-plaintext-signing-keys")
    assert na.compliance == NOT_APPLICABLE


def test_cli_exit_codes_and_json(data: Path) -> None:
    _old_plaintext_database(data)
    args = ["config", "check", "--data-dir", str(data)]
    everything = runner.invoke(app, args)
    assert everything.exit_code == 1, everything.output
    assert "personal-data-encrypted" in everything.output and "NON_COMPLIANT" in everything.output
    selected = runner.invoke(app, [*args, *(x for name in ALL_BUT_PII for x in ("--rule", name))])
    assert selected.exit_code == 0, selected.output
    as_json = runner.invoke(app, [*args, "--json", "--rule", "audit-log-verifiable", "--rule", "personal-data-encrypted"])
    assert as_json.exit_code == 1
    body = json.loads(as_json.stdout)
    assert body["compliant"] is False and body["counts"]["NON_COMPLIANT"] == 1
    assert [r["rule"] for r in body["results"]] == ["audit-log-verifiable", "personal-data-encrypted"]
    assert set(body["results"][0]) == {"rule", "resource", "compliance", "reason"}
    unknown = runner.invoke(app, [*args, "--rule", "nope"])
    assert unknown.exit_code == 2 and "the rules are" in unknown.output
