"""PostgreSQL: a primary made with initdb (data checksums on) and streaming replicas made with
pg_basebackup, each its own ``postgres`` process on loopback.

Credentials are real and generated (SCRAM, never ``trust``): the superuser ``postgres``, the app's
role ``summit`` (owner of the database ``summit``), ``summit_reader`` for reads (every table, and
read-only by default: its reads need no transaction to be safe) and ``replicator`` for streaming. Each replica
streams through a physical replication slot named after it, which the primary creates. With
``synchronous`` on, the primary waits for ``ANY 1`` of the replicas to confirm each commit.

The app itself logs in as one of two users that take turns, ``summit_a`` and ``summit_b`` (the
secret ``db/app``, rotated by the Secrets Manager with AWS's alternating users: see
``docs/secrets.md``): members of ``summit`` whose sessions act as it (``ALTER ROLE ... SET role``),
so whatever either creates belongs to ``summit`` and serves both. The bootstrap gives them the
passwords of the secret's delivered copy (``Layout.app_login``), when the stage has one.

Everything summit sets is rendered into ``summit.conf`` in the data directory before each start
(``postgresql.conf`` includes it), so a change to the blueprint applies at the next start.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from summit.engines.layout import Engine, EngineError, Layout, chown, owned_dir, run_as, tcp_open, write_private
from summit.engines.process import Command

APP_ROLE = "summit"
READER_ROLE = "summit_reader"  # reads only: its transactions are read-only by default
APP_DATABASE = "summit"
SUPERUSER = "postgres"
REPLICATION_ROLE = "replicator"
APP_USERS = ("summit_a", "summit_b")  # the app's alternating logins, members of APP_ROLE
_LABELS = ("AWSPREVIOUS", "AWSCURRENT", "AWSPENDING")  # a later label's password wins for its user


def app_logins(layout: Layout) -> dict[str, str]:
    """The app's alternating users and their passwords, from the secret's delivered copy (none if
    the stage has no rotated login). A user's newest password wins: AWSPENDING over AWSCURRENT over
    AWSPREVIOUS (mid-rotation, the pending one is what the server has)."""
    import json

    try:
        doc = json.loads(layout.app_login.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise EngineError(f"the app's login {layout.app_login} cannot be read ({error}): run `summit up` again to deliver it") from None
    logins: dict[str, str] = {}
    for label in _LABELS:
        if label in doc:
            try:
                value = json.loads(doc[label]["value"])
                logins[value["username"]] = value["password"]
            except (ValueError, KeyError, TypeError):
                raise EngineError(f"{label} in {layout.app_login} is not a database secret (JSON with username and password)") from None
    unknown = set(logins) - set(APP_USERS)
    if unknown:
        raise EngineError(f"the app's login names {', '.join(sorted(unknown))}: the app's users are {' and '.join(APP_USERS)}")
    return logins


def bin_dir() -> Path:
    """The newest installed PostgreSQL's binaries (Debian keeps them off PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(Path(p).parts[4]) if Path(p).parts[4].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("postgres")
    if on_path:
        return Path(on_path).resolve().parent
    raise EngineError("PostgreSQL is not installed: run `summit engines install` (Debian's postgresql)")


@dataclass(frozen=True)
class PostgresSettings:
    """What the blueprint sets for every PostgreSQL server of a stage."""

    max_connections: int = 100
    shared_buffers_mb: int = 128
    synchronous: bool = False  # commits wait for one replica (ANY 1); off by default
    replica_names: tuple[str, ...] = ()  # the slots / application names of the replicas


def _pg_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class PostgresServer(Engine):
    """A primary (``primary=None``) or a streaming replica of ``primary``."""

    kind = "postgres"
    ready_timeout = 120.0

    def __init__(self, name: str, port: int, settings: PostgresSettings, primary: PostgresServer | None = None):
        super().__init__(name, "replica" if primary else "primary", port, needs=(primary.name,) if primary else ())
        self.settings = settings
        self.primary = primary

    @property
    def slot(self) -> str:
        return self.name.replace("-", "_")

    def data(self, layout: Layout) -> Path:
        return layout.engine_dir(self.name) / "data"

    # ---- credentials --------------------------------------------------------------------------

    @staticmethod
    def passwords(layout: Layout) -> dict[str, str]:
        return {role: layout.secret(f"postgres-{role}") for role in (SUPERUSER, APP_ROLE, READER_ROLE, REPLICATION_ROLE)}

    def superuser_dsn(self, layout: Layout, dbname: str = "postgres") -> str:
        password = self.passwords(layout)[SUPERUSER]
        return f"host={self.host} port={self.port} user={SUPERUSER} dbname={dbname} password={password} connect_timeout=3"

    # ---- the engine ---------------------------------------------------------------------------

    def prepare(self, layout: Layout) -> None:
        user = run_as()
        home = owned_dir(layout.engine_dir(self.name), user)
        data = self.data(layout)
        if not (data / "PG_VERSION").exists():
            if self.primary is None:
                self._initdb(layout, home, data, user)
            else:
                self._basebackup(layout, home, data, user)
        self._render(layout, home, data, user)

    def _initdb(self, layout: Layout, home: Path, data: Path, user: str | None) -> None:
        if data.exists():
            shutil.rmtree(data)  # a half-made directory from an interrupted first start
        pwfile = home / "initdb.pw"
        write_private(pwfile, self.passwords(layout)[SUPERUSER] + "\n", owner=user)
        try:
            _run(
                [str(bin_dir() / "initdb"), "-D", str(data), "-U", SUPERUSER, f"--pwfile={pwfile}",
                 "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "--data-checksums",
                 "--encoding=UTF8", "--locale=C.UTF-8", "--no-instructions"],
                user, f"initdb for {self.name}",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        with open(data / "postgresql.conf", "a") as conf:
            conf.write("\n# summit's settings, rendered before each start\ninclude_if_exists = 'summit.conf'\n")
        (data / "pg_hba.conf").write_text(
            "# summit: loopback only, SCRAM passwords\n"
            "host    all          all               127.0.0.1/32  scram-sha-256\n"
            f"host    replication  {REPLICATION_ROLE}  127.0.0.1/32  scram-sha-256\n"
        )

    def _basebackup(self, layout: Layout, home: Path, data: Path, user: str | None) -> None:
        assert self.primary is not None
        partial = home / "data.partial"
        if partial.exists():
            shutil.rmtree(partial)
        passfile = self._replication_passfile(layout, home, user)
        _run(
            [str(bin_dir() / "pg_basebackup"), "-h", self.primary.host, "-p", str(self.primary.port),
             "-U", REPLICATION_ROLE, "-D", str(partial), "-X", "stream", "-S", self.slot, "-c", "fast", "--no-password"],
            user, f"pg_basebackup for {self.name} from {self.primary.name}", env={"PGPASSFILE": str(passfile)},
        )
        (partial / "standby.signal").touch()
        chown(partial / "standby.signal", user)
        partial.rename(data)

    def _replication_passfile(self, layout: Layout, home: Path, user: str | None) -> Path:
        passfile = home / "replication.pgpass"
        write_private(passfile, f"*:*:*:{REPLICATION_ROLE}:{self.passwords(layout)[REPLICATION_ROLE]}\n", owner=user)
        return passfile

    def _render(self, layout: Layout, home: Path, data: Path, user: str | None) -> None:
        s = self.settings
        lines = [
            f"listen_addresses = {_pg_literal(self.host)}",
            f"port = {self.port}",
            "unix_socket_directories = ''",  # TCP on loopback only (socket paths are length-limited)
            f"max_connections = {s.max_connections}",
            f"shared_buffers = '{s.shared_buffers_mb}MB'",
            "password_encryption = 'scram-sha-256'",
            "wal_level = replica",
            "max_wal_senders = 10",
            "max_replication_slots = 10",
            "hot_standby = on",
            "hot_standby_feedback = on",
            "wal_receiver_status_interval = '1s'",
            "log_destination = 'stderr'",
            "logging_collector = off",
            "log_line_prefix = '%m [%p] %q%u@%d '",
            f"cluster_name = {_pg_literal(self.name)}",
        ]
        if self.primary is None and s.synchronous and s.replica_names:
            names = ", ".join(f'"{n}"' for n in s.replica_names)
            lines.append(f"synchronous_standby_names = 'ANY 1 ({names})'")
        if self.primary is None:  # WAL archive for point-in-time recovery (summit backup / restore: summit.backup)
            import shlex

            wal = shlex.quote(str(owned_dir(layout.wal_archive, user)))
            # never a half-copied segment: copy to a temporary name, flush, rename; a segment archived
            # already counts as done only if it is the same (a retry after a crash before PostgreSQL knew)
            archive = (f"test ! -f {wal}/%f && cp %p {wal}/%f.tmp && sync {wal}/%f.tmp && mv {wal}/%f.tmp {wal}/%f"
                       f" || cmp -s %p {wal}/%f")
            lines += ["archive_mode = on", f"archive_command = {_pg_literal(archive)}", "archive_timeout = 60"]
            if (data / "recovery.signal").exists():  # a restore's start: replay the archive, promote, then answer
                lines += ["include_if_exists = 'summit-recovery.conf'", "hot_standby = off"]
        if self.primary is not None:
            passfile = self._replication_passfile(layout, home, user)
            conninfo = (f"host={self.primary.host} port={self.primary.port} user={REPLICATION_ROLE} "
                        f"passfile={passfile} application_name={self.slot}")
            lines += [f"primary_conninfo = {_pg_literal(conninfo)}", f"primary_slot_name = {_pg_literal(self.slot)}"]
        conf = data / "summit.conf"
        conf.write_text("# rendered by summit before each start: edit the blueprint, not this file\n" + "\n".join(lines) + "\n")
        chown(conf, user)
        (data / "postmaster.opts").unlink(missing_ok=True)

    def command(self, layout: Layout) -> Command:
        return Command(
            [str(bin_dir() / "postgres"), "-D", str(self.data(layout))],
            user=run_as(), stop_signal=signal.SIGINT, grace=30.0,  # SIGINT: fast shutdown
            env={"LC_ALL": "C.UTF-8"},
        )

    def ready(self, layout: Layout) -> bool:
        if not tcp_open(self.host, self.port):
            return False
        import psycopg

        try:
            with psycopg.connect(self.superuser_dsn(layout), autocommit=True) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def started(self, layout: Layout) -> None:
        if self.primary is None:
            self._bootstrap(layout)

    def _bootstrap(self, layout: Layout) -> None:
        """Roles, the app's database and the replicas' slots (idempotent; passwords re-applied)."""
        import psycopg
        from psycopg import sql

        pw = self.passwords(layout)
        with psycopg.connect(self.superuser_dsn(layout), autocommit=True) as conn:
            # with synchronous replication on, a commit waits for a replica, and the replicas start
            # after this: the bootstrap's own commits must not wait for them
            conn.execute("SET synchronous_commit = local")
            for role, extra in ((APP_ROLE, sql.SQL("LOGIN")), (READER_ROLE, sql.SQL("LOGIN")), (REPLICATION_ROLE, sql.SQL("LOGIN REPLICATION"))):
                exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
                verb = sql.SQL("ALTER") if exists else sql.SQL("CREATE")
                conn.execute(sql.SQL("{} ROLE {} {} PASSWORD {}").format(verb, sql.Identifier(role), extra, sql.Literal(pw[role])))
            # the reader: every table readable (PostgreSQL 14's predefined role), every transaction read-only
            conn.execute(sql.SQL("GRANT pg_read_all_data TO {}").format(sql.Identifier(READER_ROLE)))
            conn.execute(sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(sql.Identifier(READER_ROLE)))
            for user, password in app_logins(layout).items():  # the app's alternating users: act as APP_ROLE
                exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)).fetchone()
                verifier = conn.pgconn.encrypt_password(password.encode(), user.encode(), b"scram-sha-256").decode()
                verb = sql.SQL("ALTER") if exists else sql.SQL("CREATE")
                conn.execute(sql.SQL("{} ROLE {} LOGIN PASSWORD {}").format(verb, sql.Identifier(user), sql.Literal(verifier)))
                conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(APP_ROLE), sql.Identifier(user)))
                conn.execute(sql.SQL("ALTER ROLE {} SET role = {}").format(sql.Identifier(user), sql.Literal(APP_ROLE)))
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (APP_DATABASE,)).fetchone():
                conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(APP_DATABASE), sql.Identifier(APP_ROLE)))
            for name in self.settings.replica_names:
                conn.execute(
                    "SELECT pg_create_physical_replication_slot(%s) WHERE NOT EXISTS "
                    "(SELECT 1 FROM pg_replication_slots WHERE slot_name = %s)", (name, name))


def _run(argv: list[str], user: str | None, what: str, env: dict[str, str] | None = None) -> None:
    """Run a PostgreSQL tool to completion as ``user``; its output goes into the error if it fails."""
    result = subprocess.run(  # noqa: S603  (an argument list)
        argv, capture_output=True, text=True, timeout=300,
        env={**os.environ, "LC_ALL": "C.UTF-8", **(env or {})},
        user=user if os.geteuid() == 0 else None, group=user if os.geteuid() == 0 else None,
        extra_groups=[] if user and os.geteuid() == 0 else None,
    )
    if result.returncode != 0:
        raise EngineError(f"{what} failed (exit {result.returncode}): {(result.stderr or result.stdout).strip()[-800:]}")
