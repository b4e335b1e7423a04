"""The app's PostgreSQL login as a secret that rotates live (stages 1+ and up).

``summit up`` (``ensure``) keeps two secrets in the Secrets Manager, made the first time:

* ``db/admin``: the superuser, straight to the primary, for the rotation's ``ALTER ROLE``;
* ``db/app``: the app's login, AWS's database-secret JSON whose ``host``/``port`` are the primary's
  PgBouncer; ``username`` is ``summit_a`` or ``summit_b`` (``APP_USERS``), the two users that take
  turns, members of the owner role ``summit`` that act as it.

``db/app`` is *delivered* to ``<data_dir>/secrets/db-app.json`` (``Layout.app_login``): the
bootstrap makes the two users from it, PgBouncer's user list holds their passwords, and the app's
sql URL says ``login=<that file>``, so each new connection of the app logs in with AWSCURRENT.

``summit secrets rotate db/app`` runs ``StageLogin`` (AWS's alternating users): create_secret
gives the user that is not current a new password (AWSPENDING); set_secret sets it in PostgreSQL
(a SCRAM verifier), rewrites every PgBouncer's user list and reloads each; test_secret logs in as
it through the primary's PgBouncer; finish_secret makes it AWSCURRENT, and the delivered copy
changes: the app's next new connections log in as that user, its open ones keep working until the
pool retires them. A failure rolls back (the user's password and the user lists put back).
"""

from __future__ import annotations

import json
from pathlib import Path

from summit.engines.layout import HOST, EngineError, Layout, tcp_open
from summit.engines.pgbouncer import reload, write_userlist
from summit.engines.postgres import APP_DATABASE, APP_ROLE, APP_USERS, SUPERUSER, PostgresServer
from summit.engines.stage import StagePlan
from summit.security.secrets import SecretNotFound, SecretsError, SecretsManager
from summit.security.secrets.postgres import PostgresAlternatingUsers
from summit.security.secrets.rotation import Rotation, new_password

SECRET = "db/app"
ADMIN_SECRET = "db/admin"
STRATEGY = "summit.ops.dblogin:StageLogin"


def ensure(stage: StagePlan, manager: SecretsManager | None = None) -> bool:
    """Make ``db/admin`` and ``db/app`` if missing, remember how ``db/app`` rotates, deliver it to
    the stage's login file. Returns True when the stage has a rotated login (PostgreSQL behind
    PgBouncer), False otherwise (nothing is done)."""
    layout = stage.layout
    servers, poolers = stage.of_kind("postgres"), stage.of_kind("pgbouncer")
    if not servers or not poolers:
        return False
    manager = manager or SecretsManager.for_data_dir(layout.data_dir)
    primary, front = servers[0], poolers[0]
    admin = {"engine": "postgres", "host": primary.host, "port": primary.port, "dbname": "postgres",
             "username": SUPERUSER, "password": PostgresServer.passwords(layout)[SUPERUSER]}  # fmt: skip
    _put_if_changed(manager, ADMIN_SECRET, admin, "the superuser, for rotating db/app (summit.ops.dblogin)")
    try:
        current = manager.get_secret_value(SECRET).json()
        if (current.get("host"), current.get("port")) != (front.host, front.port):  # the ports moved: same login, new address
            _put_if_changed(manager, SECRET, {**current, "host": front.host, "port": front.port}, None)
    except SecretNotFound:
        value = {"engine": "postgres", "host": front.host, "port": front.port, "dbname": APP_DATABASE,
                 "username": APP_USERS[0], "password": new_password()}  # fmt: skip
        manager.create_secret(SECRET, json.dumps(value), description="the app's PostgreSQL login (alternating users; summit.ops.dblogin)")
    if manager.describe(SECRET).rotation.get("strategy") != STRATEGY:
        manager.configure_rotation(SECRET, STRATEGY, {"data_dir": str(layout.data_dir)})
    manager.deliver(SECRET, layout.app_login)
    return True


def _put_if_changed(manager: SecretsManager, name: str, value: dict, description: str | None) -> None:
    try:
        if manager.get_secret_value(name).json() == value:
            return
    except SecretNotFound:
        pass
    manager.put_secret_value(name, json.dumps(value), description=description)


class StageLogin(PostgresAlternatingUsers):
    """Alternating users for a stage's app login: PostgreSQL through ``db/admin``, and the stage's
    PgBouncers (found in ``data_dir``) told every password change before anyone uses it."""

    def __init__(self, data_dir: str, admin_secret: str = ADMIN_SECRET, connect_timeout: int | str = 5):
        super().__init__(admin_secret, users=APP_USERS, group=APP_ROLE, connect_timeout=connect_timeout, set_role=True)
        self.layout = Layout(Path(data_dir))

    def create_secret(self, rotation: Rotation) -> None:
        """Refuse at once (nothing to undo) when the stage is not running."""
        admin = rotation.manager.get_secret_value(self.admin_secret).json()
        if not tcp_open(str(admin.get("host")), int(admin.get("port", 5432))):
            raise SecretsError(f"PostgreSQL at {admin.get('host')}:{admin.get('port')} does not answer: start the stage "
                               f"(`summit up --data-dir {self.layout.data_dir}`), then rotate")
        super().create_secret(rotation)

    def set_secret(self, rotation: Rotation) -> None:
        super().set_secret(rotation)  # the server first: PgBouncer logs in to it with what its list says
        self._tell_poolers(rotation, pending=True)

    def undo_set(self, rotation: Rotation) -> None:
        super().undo_set(rotation)
        self._tell_poolers(rotation, pending=False)

    def _tell_poolers(self, rotation: Rotation, *, pending: bool) -> None:
        """Rewrite each PgBouncer's user list with the logins of AWSPREVIOUS, AWSCURRENT (and
        AWSPENDING), and reload the running ones. One that is not running reads the delivered
        copy when the supervisor starts it again."""
        logins: dict[str, str] = {}
        for value in (rotation.previous(), rotation.current(), rotation.pending() if pending else None):
            if value is not None:
                doc = value.json()
                logins[doc["username"]] = doc["password"]
        reloaded = []
        for name, port in self._poolers():
            try:
                write_userlist(self.layout, name, logins)
                if tcp_open(HOST, port):
                    reload(self.layout, HOST, port)
                    reloaded.append(name)
                else:
                    rotation.report(f"{name} is not running: it reads the new list when it starts")
            except EngineError as error:
                raise SecretsError(f"{name}: {error}") from None
        rotation.report(f"PgBouncer: user lists rewritten, reloaded {', '.join(reloaded) or 'none'}")

    def _poolers(self) -> list[tuple[str, int]]:
        """The stage's PgBouncers: their ports (``engines/ports.json``) and rendered directories."""
        try:
            ports: dict[str, int] = json.loads((self.layout.data_dir / "engines" / "ports.json").read_text())
        except (OSError, ValueError) as error:
            raise SecretsError(f"no stage in {self.layout.data_dir} ({error}): rotate {SECRET} with its stage's --data-dir") from None
        found = [(name, port) for name, port in sorted(ports.items())
                 if name.startswith("pgbouncer-") and (self.layout.engine_dir(name) / "pgbouncer.ini").exists()]  # fmt: skip
        if not found:
            raise SecretsError(f"the stage in {self.layout.data_dir} runs no PgBouncer: nothing would learn the new password")
        return found
