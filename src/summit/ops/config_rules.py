"""Compliance rules over a stage, like AWS Config rules (``summit config check``).

Each rule is a small function of a :class:`Context` (the blueprint, its file, the data directory,
the running stage's record when it runs) that returns one :class:`Result` per resource it looked
at: ``COMPLIANT``, ``NON_COMPLIANT`` or ``NOT_APPLICABLE``, with a one-line reason that says what
to fix. The rules only read: they never change the stage.

    report = evaluate(Context.for_blueprint(blueprint, blueprint_file=path))
    report.ok      # every result COMPLIANT or NOT_APPLICABLE

The rules and what each checks are in ``docs/config-rules.md``.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import stat
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from summit.blueprint import Blueprint
from summit.engines import state
from summit.engines.layout import Layout

COMPLIANT = "COMPLIANT"
NON_COMPLIANT = "NON_COMPLIANT"
NOT_APPLICABLE = "NOT_APPLICABLE"

# the talk's stages in order (docs/stages.md), the planned ones included, so "from stage X" compares
STAGE_ORDER = ["1", "1+", "1k", "10k", "500k", "1m", "5m", "10m"]
LOG_TAIL_BYTES = 8 * 1024 * 1024  # rule 4 reads at most the last 8 MiB of each log file
_MIN_SECRET_CHARS = 12  # shorter tokens in a secrets file are names, not secret values


def stage_at_least(stage: str, floor: str) -> bool:
    """Is ``stage`` the stage ``floor`` or a later one?"""
    return STAGE_ORDER.index(stage) >= STAGE_ORDER.index(floor)


@dataclass(frozen=True)
class Result:
    rule: str
    resource: str
    compliance: str  # COMPLIANT | NON_COMPLIANT | NOT_APPLICABLE
    reason: str


@dataclass(frozen=True)
class Listener:
    """A listening TCP socket: its local address and port (and the process, when known)."""

    ip: str
    port: int
    pid: int | None = None


def listening_sockets() -> list[Listener]:
    """The machine's listening TCP sockets (psutil reads /proc/net/tcp and tcp6)."""
    import psutil

    found = []
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr:
            found.append(Listener(conn.laddr.ip, conn.laddr.port, conn.pid))
    return found


@dataclass
class Context:
    """What the rules read. ``record`` is the running stage's ``summit.json`` (None when it does not
    run); ``listeners`` lists the machine's listening sockets (replaceable in tests)."""

    blueprint: Blueprint
    data_dir: Path
    blueprint_file: Path | None = None
    record: dict[str, Any] | None = None
    listeners: Callable[[], list[Listener]] = listening_sockets
    log_tail_bytes: int = LOG_TAIL_BYTES

    @classmethod
    def for_blueprint(cls, blueprint: Blueprint, *, blueprint_file: Path | None = None, **fields: Any) -> Context:
        data_dir = blueprint.data_dir.resolve()
        fields.setdefault("record", state.running(data_dir))
        return cls(blueprint, data_dir, blueprint_file, **fields)

    @property
    def layout(self) -> Layout:
        return Layout(self.data_dir)


@dataclass
class Report:
    results: list[Result] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.compliance != NON_COMPLIANT for r in self.results)

    def counts(self) -> dict[str, int]:
        return {c: sum(r.compliance == c for r in self.results) for c in (COMPLIANT, NON_COMPLIANT, NOT_APPLICABLE)}

    def as_dict(self) -> dict[str, Any]:
        return {"compliant": self.ok, "counts": self.counts(), "results": [asdict(r) for r in self.results]}


# ---- the rules ------------------------------------------------------------------------------------

def tls_at_edge(ctx: Context) -> list[Result]:
    """From stage 1k, the front door (HAProxy) speaks HTTPS: ``engines.haproxy.tls``."""
    rule, bp = "tls-at-edge", ctx.blueprint
    resource = "engines.haproxy"
    if not stage_at_least(bp.stage, "1k"):
        return [Result(rule, resource, NOT_APPLICABLE, f"stage {bp.stage} has no front door (HAProxy comes at 1k)")]
    if bp.tls:
        return [Result(rule, resource, COMPLIANT, f"HTTPS at the front door on port {bp.engines.haproxy.https_port}")]
    if not bp.engines.haproxy.enabled:
        return [Result(rule, resource, NON_COMPLIANT, "no front door: set engines.haproxy.enabled = true and engines.haproxy.tls = true")]
    return [Result(rule, resource, NON_COMPLIANT, "the front door speaks plain HTTP: set engines.haproxy.tls = true (see certificates.md)")]


def _is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def loopback_only_engines(ctx: Context) -> list[Result]:
    """Only the front door (HAProxy; the app where there is no HAProxy) listens beyond loopback:
    every other process of the running stage binds 127.0.0.1 or ::1, by its record
    (``summit.json``) and by the sockets actually listening on its ports (``engines/ports.json``)."""
    rule = "loopback-only-engines"
    if ctx.record is None:
        return [Result(rule, "stage", NOT_APPLICABLE, "the stage is not running: start it (`summit up`) and check again")]
    processes = ctx.record.get("processes") or []
    front_kind = "haproxy" if any(p.get("kind") == "haproxy" for p in processes) else "app"
    results = []
    for proc in processes:
        if proc.get("kind") == front_kind:
            continue
        host = str(proc.get("address", "")).rpartition(":")[0]
        if not _is_loopback(host):
            results.append(Result(rule, f"process {proc.get('name')}", NON_COMPLIANT,
                                  f"listens on {proc.get('address')}: only the front door ({front_kind}) may; bind it to 127.0.0.1"))
    try:
        ports: dict[str, int] = json.loads((ctx.data_dir / "engines" / "ports.json").read_text())
    except (FileNotFoundError, ValueError):
        ports = {}
    if ports:
        try:
            sockets = ctx.listeners()
        except Exception as error:  # noqa: BLE001  (no access to the socket table: say so, keep the record's word)
            results.append(Result(rule, "sockets", NOT_APPLICABLE, f"cannot read the listening sockets ({error}): checked the record only"))
            sockets = []
        by_port = {port: name for name, port in ports.items()}
        for sock in sockets:
            if sock.port in by_port and not _is_loopback(sock.ip):
                results.append(Result(rule, f"port {sock.port} ({by_port[sock.port]})", NON_COMPLIANT,
                                      f"a socket listens on {sock.ip or '*'}:{sock.port}, beyond loopback: bind {by_port[sock.port]} to 127.0.0.1"))
    if not any(r.compliance == NON_COMPLIANT for r in results):
        others = sum(p.get("kind") != front_kind for p in processes)
        results.append(Result(rule, "stage", COMPLIANT, f"{others} engine process(es) besides the front door ({front_kind}), all on loopback"))
    return results


def _hba_files(ctx: Context) -> list[Path]:
    """Each PostgreSQL server's ``pg_hba.conf``: ``engines/postgres-*/data/`` (summit.engines.postgres)."""
    return sorted((ctx.data_dir / "engines").glob("postgres-*/data/pg_hba.conf"))


def no_trust_auth(ctx: Context) -> list[Result]:
    """No PostgreSQL server lets a client in without a password: no ``trust`` line in any pg_hba.conf."""
    rule = "no-trust-auth"
    files = _hba_files(ctx)
    if not files:
        why = ("PostgreSQL has not been initialised in this data directory yet" if ctx.blueprint.engines.postgres.enabled
               else f"stage {ctx.blueprint.stage} runs no PostgreSQL")
        return [Result(rule, "pg_hba.conf", NOT_APPLICABLE, why)]
    results = []
    for path in files:
        resource = str(path.relative_to(ctx.data_dir))
        try:
            lines = path.read_text().splitlines()
        except OSError as error:
            results.append(Result(rule, resource, NON_COMPLIANT, f"cannot read it ({error.strerror}): run the check as the engines' owner"))
            continue
        trusting = [n for n, line in enumerate(lines, 1)
                    if (words := line.split("#", 1)[0].split()) and "trust" in words[3:]]
        if trusting:
            where = ", ".join(str(n) for n in trusting)
            results.append(Result(rule, resource, NON_COMPLIANT, f"line(s) {where} use trust: replace it with scram-sha-256"))
        else:
            results.append(Result(rule, resource, COMPLIANT, "every line asks for a password (no trust)"))
    return results


def _secret_values(directory: Path) -> dict[str, list[str]]:
    """The values in each secrets file: the long tokens of its lines (a password file's password,
    ``key = value``'s value); short words are names, not secrets."""
    values: dict[str, list[str]] = {}
    for path in sorted(directory.iterdir()):
        if not path.is_file() or path.name.endswith(".tmp"):
            continue
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError):
            continue
        tokens = {t for t in re.split(r"[\s:=,\"']+", text) if len(t) >= _MIN_SECRET_CHARS and not re.fullmatch(r"[a-z_]+", t)}
        if tokens:
            values[path.name] = sorted(tokens)
    return values


def _tail(path: Path, size: int) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        handle.seek(max(0, handle.tell() - size))
        return handle.read()


def no_plaintext_secrets(ctx: Context) -> list[Result]:
    """Secrets stay in their owner-only files: ``secrets/`` is 0700 and its files 0600, and none of
    their values appears in the blueprint file, the stage's record or the end of its logs."""
    rule = "no-plaintext-secrets"
    directory = ctx.layout.secrets_dir
    if not directory.is_dir():
        return [Result(rule, "secrets/", NOT_APPLICABLE, "no secrets generated in this data directory yet")]
    results = []
    mode = stat.S_IMODE(directory.stat().st_mode)
    if mode & 0o077:
        results.append(Result(rule, "secrets/", NON_COMPLIANT, f"the directory is mode {oct(mode)}: `chmod 700 {directory}`"))
    for path in sorted(directory.iterdir()):
        if path.is_file() and (mode := stat.S_IMODE(path.stat().st_mode)) & 0o077:
            results.append(Result(rule, f"secrets/{path.name}", NON_COMPLIANT,
                                  f"mode {oct(mode)} lets others read it: `chmod 600 {path}`"))
    values = _secret_values(directory)
    targets: list[tuple[str, Path]] = []
    if ctx.blueprint_file is not None and ctx.blueprint_file.is_file():
        targets.append((str(ctx.blueprint_file), ctx.blueprint_file))
    targets.append((state.FILE, state.path(ctx.data_dir)))
    logs = ctx.data_dir / "logs"
    if logs.is_dir():
        targets += [(f"logs/{p.name}", p) for p in sorted(logs.iterdir()) if p.is_file() and ".log" in p.name]
    for label, path in targets:
        try:
            text = _tail(path, ctx.log_tail_bytes)
        except OSError:
            continue
        leaked = sorted(name for name, tokens in values.items() if any(t.encode() in text for t in tokens))
        if leaked:
            fix = "put the value in secrets/ and refer to it" if label == str(ctx.blueprint_file) else "delete or redact the file, then rotate the secret"
            results.append(Result(rule, label, NON_COMPLIANT, f"holds the value of secrets/{', secrets/'.join(leaked)} in clear: {fix}"))
    if not results:
        results.append(Result(rule, "secrets/", COMPLIANT,
                              f"{len(values)} secret file(s) owner-only; no value found in {len(targets)} config and log file(s)"))
    return results


def _pool_database(ctx: Context) -> tuple[str | None, str]:
    """A read-only sync URL of the app's database (the user pool's tables), or None and why not."""
    from summit.blueprint import BlueprintError

    try:
        url = ctx.blueprint.port_url("sql")
    except BlueprintError as error:
        return None, str(error)
    if url.startswith("sqlite"):
        from sqlalchemy.engine import make_url

        path = Path(make_url(url).database or "")
        if not path.is_file():
            return None, "no database in this data directory yet"
        return f"sqlite:///file:{path.resolve()}?mode=ro&uri=true", ""
    import asyncio

    from summit.wiring import open_port

    db = open_port("sql", url)
    try:
        return db.sync_url, ""
    finally:
        asyncio.run(db.close())


def _kms_key_made(ctx: Context, name: str) -> bool:
    return (ctx.data_dir / "keys" / "kms" / "keys" / name / "key.json").is_file()


def personal_data_encrypted(ctx: Context) -> list[Result]:
    """Users' emails are encrypted at rest (identity/pii.py): the pool's table has the hash and
    sealed columns, no row keeps its address in clear or lacks its sealed copy, and the KMS keys
    that open them are in the data directory."""
    from sqlalchemy import column, create_engine, func, inspect, select, table, true
    from sqlalchemy.exc import SQLAlchemyError

    from summit.security.identity.pii import INDEX_KEY, PII_KEY

    rule, resource = "personal-data-encrypted", "identity_users.email"
    url, why = _pool_database(ctx)
    if url is None:
        return [Result(rule, resource, NOT_APPLICABLE, why)]
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("identity_users"):
                return [Result(rule, resource, NOT_APPLICABLE, "the user pool's tables are not made yet (`summit db upgrade` makes them)")]
            columns = {c["name"] for c in inspect(conn).get_columns("identity_users")}
            if not {"email_hash", "email_sealed"} <= columns:
                return [Result(rule, resource, NON_COMPLIANT,
                               "the user pool's schema predates encrypted emails (identity id0003): run `summit db upgrade`")]
            users = table("identity_users", column("email"), column("email_sealed"))
            total, in_clear, unsealed = (conn.execute(select(func.count()).select_from(users).where(where)).scalar_one()
                                         for where in (true(), users.c.email.is_not(None), users.c.email_sealed.is_(None)))
    except SQLAlchemyError as error:
        return [Result(rule, resource, NOT_APPLICABLE, f"cannot read the database ({str(error).splitlines()[0]}): start the stage and check again")]
    finally:
        engine.dispose()
    if in_clear:
        return [Result(rule, resource, NON_COMPLIANT, f"{in_clear} user(s) have their email in clear: run `summit db upgrade` "
                                                      "(or start the app), which encrypts them with the KMS")]
    if unsealed:
        return [Result(rule, resource, NON_COMPLIANT, f"{unsealed} user(s) have no encrypted email (email_sealed is empty): "
                                                      "restore their rows from a backup")]
    missing = [name for name in (INDEX_KEY, PII_KEY) if not _kms_key_made(ctx, name)]
    if total and missing:
        return [Result(rule, resource, NON_COMPLIANT, f"the KMS key(s) {', '.join(missing)} are not in {ctx.data_dir / 'keys' / 'kms'}: "
                                                      "the emails cannot be read or looked up; restore keys/kms from your backup")]
    return [Result(rule, resource, COMPLIANT, f"{total} user(s): emails stored as a keyed hash ({INDEX_KEY}) and encrypted ({PII_KEY}), none in clear")]


_PRIVATE_MARKERS = (b"PRIVATE KEY-----", b'"d":')  # a PEM private key; a JWK's private part
_KEY_SCAN_BYTES = 1024 * 1024


def no_plaintext_signing_keys(ctx: Context) -> list[Result]:
    """No private signing key sits in clear under ``keys/``: the audit key and the user pool's JWKs
    are stored only encrypted by the KMS (``*.kms``). The KMS's own master key is the one secret
    kept unwrapped by design (docs/kms.md) and is not counted."""
    rule = "no-plaintext-signing-keys"
    keys = ctx.data_dir / "keys"
    if not keys.is_dir():
        return [Result(rule, "keys/", NOT_APPLICABLE, "no keys made in this data directory yet")]
    results, sealed = [], 0
    for path in sorted(p for p in keys.rglob("*") if p.is_file()):
        relative = str(path.relative_to(ctx.data_dir))
        if path.parent == keys / "kms" or (keys / "kms" / "keys") in path.parents:
            continue  # the key store: versions wrapped under the master key, and the master key
        if path.name.endswith(".kms"):
            sealed += 1
            continue
        try:
            with open(path, "rb") as handle:
                head = handle.read(_KEY_SCAN_BYTES)
        except OSError as error:
            results.append(Result(rule, relative, NON_COMPLIANT, f"cannot read it ({error.strerror}): run the check as the data directory's owner"))
            continue
        if any(marker in head for marker in _PRIVATE_MARKERS):
            results.append(Result(rule, relative, NON_COMPLIANT,
                                  "a private key in clear: start the app once (it seals the audit and token keys under the KMS "
                                  "and removes the plaintext file); a stray copy, delete it"))
    if not results:
        results.append(Result(rule, "keys/", COMPLIANT, f"{sealed} private key file(s), all encrypted by the KMS; none in clear"))
    return results


def audit_log_verifiable(ctx: Context) -> list[Result]:
    """The audit log exists and verifies: every chain signed, linked and complete (``summit audit verify``)."""
    from summit.security.audit import verify

    rule, resource = "audit-log-verifiable", "audit/"
    audit_dir = ctx.data_dir / "audit"
    if not audit_dir.is_dir():
        if not ctx.data_dir.is_dir() or not any(ctx.data_dir.iterdir()):
            return [Result(rule, resource, NOT_APPLICABLE, "nothing has run in this data directory yet")]
        return [Result(rule, resource, NON_COMPLIANT, f"no audit log in {audit_dir}: the app writes it when it serves; start the stage (`summit up`)")]
    report = verify(ctx.data_dir)
    summary = report.summary()
    if not report.ok:
        first = report.errors[0]
        more = f" (and {len(report.errors) - 1} more)" if len(report.errors) > 1 else ""
        return [Result(rule, resource, NON_COMPLIANT, f"{first.message}{more}: see `summit audit verify`")]
    if not summary["chains"]:
        return [Result(rule, resource, NON_COMPLIANT, "the audit log holds no chain: the app writes one when it serves; start the stage (`summit up`)")]
    warned = f", {len(report.warnings)} warning(s)" if report.warnings else ""
    return [Result(rule, resource, COMPLIANT, f"{summary['chains']} chain(s), {summary['records']} record(s) intact{warned}")]


def enough_zones(ctx: Context) -> list[Result]:
    """From stage 1m, the stage runs in at least two zones. Before it, there are no zones."""
    stage = ctx.blueprint.stage
    if not stage_at_least(stage, "1m"):
        return [Result("enough-zones", "stage", NOT_APPLICABLE, f"stage {stage} runs in one zone by design: zones come at stage 1m")]
    return [Result("enough-zones", "stage", NON_COMPLIANT, "zones are not built yet: stage 1m needs at least two")]


RULES: dict[str, Callable[[Context], list[Result]]] = {
    "tls-at-edge": tls_at_edge,
    "loopback-only-engines": loopback_only_engines,
    "no-trust-auth": no_trust_auth,
    "no-plaintext-secrets": no_plaintext_secrets,
    "personal-data-encrypted": personal_data_encrypted,
    "no-plaintext-signing-keys": no_plaintext_signing_keys,
    "audit-log-verifiable": audit_log_verifiable,
    "enough-zones": enough_zones,
}


def evaluate(ctx: Context, rules: Iterable[str] | None = None) -> Report:
    """Run ``rules`` (names from ``RULES``; all by default) in their order; unknown names raise KeyError."""
    names = list(RULES) if rules is None else list(rules)
    for name in names:
        if name not in RULES:
            raise KeyError(name)
    report = Report()
    for name in names:
        report.results += RULES[name](ctx)
    return report
