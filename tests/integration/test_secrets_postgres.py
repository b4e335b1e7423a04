"""Rotating a PostgreSQL login with two alternating users, against a real PostgreSQL run by the
control plane: the admin is a least-privileged CREATEROLE role whose credentials are a secret too;
the users share their privileges through a group role; passwords reach the server as SCRAM
verifiers; a failed rotation leaves the current and the previous logins working; clients that
connect during rotations always get in."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from summit.security.secrets import PREVIOUS, Rotation, RotationFailed, SecretsManager
from summit.security.secrets.postgres import PostgresAlternatingUsers
from summit.testing.engines import PostgresStage, running_postgres

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresStage]:
    with running_postgres(replicas=0, pgbouncer=False) as stage:
        yield stage


@pytest.fixture
def setup(pg: PostgresStage, tmp_path: Path) -> Iterator[tuple[SecretsManager, dict]]:
    """A database with a table owned by the group role ``summit_app``; ``rotator`` (CREATEROLE)
    made the group and ``summit_a``; both credentials are secrets."""
    primary, tag = pg.primary, tmp_path.name[-6:].replace("-", "_")
    database = pg.create_database("secrets")
    rotator, group = f"rotator_{tag}", f"summit_app_{tag}"
    users = (f"summit_a_{tag}", f"summit_b_{tag}")
    with pg.superuser() as su:
        su.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEROLE PASSWORD 'rotator-pw'").format(sql.Identifier(rotator)))
    base = {"engine": "postgres", "host": primary.host, "port": primary.port}
    with psycopg.connect(host=primary.host, port=primary.port, dbname="postgres", user=rotator, password="rotator-pw", autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(group)))
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'initial-a' IN ROLE {}").format(sql.Identifier(users[0]), sql.Identifier(group)))
    with pg.superuser(database) as su:
        su.execute("CREATE TABLE notes (id serial PRIMARY KEY, who text NOT NULL)")
        su.execute(sql.SQL("ALTER TABLE notes OWNER TO {}").format(sql.Identifier(group)))
    sm = SecretsManager.for_data_dir(tmp_path / "data")
    sm.put_secret_value("pg/rotator", json.dumps({**base, "dbname": "postgres", "username": rotator, "password": "rotator-pw"}))
    sm.put_secret_value("pg/app", json.dumps({**base, "dbname": database, "username": users[0], "password": "initial-a"}))
    yield sm, {"users": users, "group": group, "database": database}
    pg.drop_database(database)
    with pg.superuser() as su:
        for role in (*users, group, rotator):
            su.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def strategy(names: dict, cls: type[PostgresAlternatingUsers] = PostgresAlternatingUsers) -> PostgresAlternatingUsers:
    return cls(admin_secret="pg/rotator", users=",".join(names["users"]), group=names["group"])


def login(value: str) -> str:
    """Connect with a secret's value, write a row (the group's privileges), return current_user."""
    doc = json.loads(value)
    with psycopg.connect(host=doc["host"], port=doc["port"], dbname=doc["dbname"], user=doc["username"], password=doc["password"],
                         connect_timeout=5, autocommit=True) as conn:  # fmt: skip
        who = conn.execute("SELECT current_user").fetchone()[0]
        conn.execute("INSERT INTO notes (who) VALUES (current_user)")
    return who


def works(value: str) -> bool:
    try:
        login(value)
    except psycopg.OperationalError:
        return False
    return True


def test_rotations_alternate_users_with_scram_verifiers(pg: PostgresStage, setup: tuple[SecretsManager, dict]) -> None:
    sm, names = setup
    a, b = names["users"]
    first = sm.get_secret_value("pg/app")
    sm.rotate("pg/app", strategy(names))
    current = sm.get_secret_value("pg/app")
    assert current.json()["username"] == b and login(current.value) == b  # made by set_secret, in the group
    assert login(first.value) == a  # the previous value still works
    with pg.superuser() as su:
        verifier = su.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (b,)).fetchone()[0]
    assert verifier.startswith("SCRAM-SHA-256$4096:") and current.json()["password"] not in verifier
    sm.rotate("pg/app", strategy(names))
    assert sm.get_secret_value("pg/app").json()["username"] == a and login(sm.get_secret_value("pg/app").value) == a
    assert not works(first.value)  # summit_a's old password is gone
    assert login(sm.get_secret_value("pg/app", stage=PREVIOUS).value) == b


class TypoInSet(PostgresAlternatingUsers):
    def set_secret(self, rotation: Rotation) -> None:
        pending = rotation.pending().json()
        self.set_password(rotation, pending["username"], pending["password"] + "typo")


def test_a_failed_test_step_rolls_back_and_both_logins_keep_working(setup: tuple[SecretsManager, dict]) -> None:
    sm, names = setup
    sm.rotate("pg/app", strategy(names))
    current, previous = sm.get_secret_value("pg/app"), sm.get_secret_value("pg/app", stage=PREVIOUS)
    before = sm.describe("pg/app").versions
    with pytest.raises(RotationFailed, match="failed at test_secret: cannot connect to PostgreSQL.*the resource was put back") as failed:
        sm.rotate("pg/app", strategy(names, TypoInSet))
    assert failed.value.step == "test_secret"
    assert sm.describe("pg/app").versions == before
    assert works(current.value) and works(previous.value)  # undo_set gave the inactive user its old password back


def test_an_unreachable_admin_fails_at_set_secret_and_changes_nothing(setup: tuple[SecretsManager, dict]) -> None:
    sm, names = setup
    admin = sm.get_secret_value("pg/rotator").json()
    sm.put_secret_value("pg/rotator", json.dumps({**admin, "password": "wrong"}))
    current = sm.get_secret_value("pg/app")
    with pytest.raises(RotationFailed, match="failed at set_secret: cannot connect to PostgreSQL .* as the admin") as failed:
        sm.rotate("pg/app", strategy(names))
    assert failed.value.undo_error is not None  # undo needs the admin too: the message says to check by hand
    assert sm.get_secret_value("pg/app").version_id == current.version_id and works(current.value)


def test_clients_connecting_during_rotations_always_get_in(setup: tuple[SecretsManager, dict]) -> None:
    sm, names = setup
    stop, failures, done = threading.Event(), [], [0, 0]

    def client(i: int) -> None:
        while not stop.is_set():
            value = sm.get_secret_value("pg/app")
            try:
                login(value.value)
            except psycopg.OperationalError as error:
                failures.append(f"{value.json()['username']}: {error}")
            done[i] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(4):
            sm.rotate("pg/app", strategy(names))
            marks, deadline = list(done), time.monotonic() + 30
            while any(done[i] < marks[i] + 1 for i in range(2)) and time.monotonic() < deadline:
                time.sleep(0.005)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not failures, failures[:3]
    assert sum(done) > 4
