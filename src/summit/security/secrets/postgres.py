"""``PostgresAlternatingUsers``: rotate a PostgreSQL login with two users that take turns (AWS's
"alternating users" strategy).

The secret's value is JSON, as AWS keeps a database secret::

    {"engine": "postgres", "host": "127.0.0.1", "port": 5432, "dbname": "summit",
     "username": "summit_a", "password": "..."}

and ``admin_secret`` names another secret with the same fields for a role that may create roles
and change their passwords (``CREATEROLE``, or a superuser). A rotation:

1. create_secret: a new random password for the user that is not current (``summit_b`` when
   ``summit_a`` is current), stored as AWSPENDING;
2. set_secret: as the admin, ``ALTER ROLE summit_b LOGIN PASSWORD '<SCRAM verifier>'`` (the role
   is created if missing, and made a member of ``group`` when one is given, so both users hold the
   same privileges; with ``set_role``, the user's sessions also act as the group, ``ALTER ROLE
   summit_b SET role = group``, so what it creates is the group's and the other user can use it).
   The password is hashed here, by libpq (SCRAM-SHA-256): the plaintext never
   travels to the server nor lands in its logs;
3. test_secret: connect as ``summit_b`` with the new password (to the secret's host and port: a
   pooler in front of the server is tested too) and check ``session_user``;
4. finish_secret: AWSCURRENT moves to the new version: clients that read the secret now connect as
   ``summit_b``; those holding the old value keep working as ``summit_a`` until the next rotation.

On a failure, ``undo_set`` gives ``summit_b`` back the password AWSPREVIOUS holds for it (or no
password at all when there is none).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from summit.security.secrets.errors import SecretsError
from summit.security.secrets.rotation import AlternatingUsers, Rotation

if TYPE_CHECKING:
    import psycopg


class PostgresAlternatingUsers(AlternatingUsers):
    def __init__(self, admin_secret: str, users: tuple[str, str] | str = ("summit_a", "summit_b"), group: str = "",
                 connect_timeout: int | str = 5, set_role: bool | str = False):  # fmt: skip
        super().__init__(users)
        self.admin_secret, self.group, self.connect_timeout = admin_secret, group, int(connect_timeout)
        self.set_role = set_role if isinstance(set_role, bool) else set_role.lower() in ("1", "on", "true", "yes")
        if self.set_role and not group:
            raise SecretsError("set_role needs a group: the role the users' sessions act as")

    def set_password(self, rotation: Rotation, username: str, password: str | None) -> None:
        from psycopg import sql

        with self._admin(rotation) as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (username,)).fetchone() is not None
            role = sql.Identifier(username)
            if password is None:
                if exists:
                    conn.execute(sql.SQL("ALTER ROLE {} PASSWORD NULL").format(role))
                return
            verifier = conn.pgconn.encrypt_password(password.encode(), username.encode(), b"scram-sha-256").decode()
            verb = sql.SQL("ALTER") if exists else sql.SQL("CREATE")
            conn.execute(sql.SQL("{} ROLE {} WITH LOGIN PASSWORD {}").format(verb, role, sql.Literal(verifier)))
            if self.group:
                conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(self.group), role))
            if self.set_role:  # its sessions act as the group: what it creates is the group's
                conn.execute(sql.SQL("ALTER ROLE {} SET role = {}").format(role, sql.Literal(self.group)))
        rotation.report(f"PostgreSQL: {'created' if not exists else 'set the password of'} {username} (a SCRAM verifier)")

    def check_login(self, rotation: Rotation, username: str, password: str) -> None:
        target = rotation.pending().json()
        with _connect({**target, "username": username, "password": password}, self.connect_timeout, "the pending user") as conn:
            who = conn.execute("SELECT session_user").fetchone()  # (current_user is the group's, with set_role)
        if who is None or who[0] != username:
            raise SecretsError(f"connected as {who[0] if who else None!r}, not {username!r}")
        rotation.report(f"logged in as {username} at {target.get('host')}:{target.get('port', 5432)}")

    def _admin(self, rotation: Rotation) -> psycopg.Connection:
        return _connect(rotation.manager.get_secret_value(self.admin_secret).json(), self.connect_timeout, f"the admin (secret {self.admin_secret!r})")


def _connect(doc: Any, timeout: int, who: str) -> psycopg.Connection:  # noqa: ANN401
    try:
        import psycopg
    except ImportError:
        raise SecretsError("rotating PostgreSQL users needs psycopg: pip install 'summit[postgres]'") from None
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), str) for k in ("host", "username", "password")):
        raise SecretsError(f"the secret of {who} must be JSON with host, port, dbname, username and password")
    try:
        return psycopg.connect(
            host=doc["host"], port=int(doc.get("port", 5432)), dbname=str(doc.get("dbname", "postgres")),
            user=doc["username"], password=doc["password"], connect_timeout=timeout, autocommit=True,
        )  # fmt: skip
    except psycopg.OperationalError as error:
        raise SecretsError(f"cannot connect to PostgreSQL at {doc['host']}:{doc.get('port', 5432)} as {who} ({doc['username']}): {str(error).strip()}") from None
