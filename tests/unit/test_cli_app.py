"""The platform finds the app through the blueprint's ``[app]`` section: ``summit db`` migrates the
platform's histories then the app's it names, ``summit up`` serves the factory it names."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from summit import migrate
from summit.blueprint import load_blueprint
from summit.cli import db, main, up  # noqa: F401  (registers the commands)

runner = CliRunner()
TINY_ENV = """
import sqlalchemy as sa
from summit.migrate import run_env

metadata = sa.MetaData()
sa.Table("tiny_things", metadata, sa.Column("id", sa.Integer, primary_key=True))
run_env(metadata, version_table="tiny_version", owns=lambda name: name.startswith("tiny_"))
"""
TINY_REVISION = """
import sqlalchemy as sa
from alembic import op

revision, down_revision = "t0001", None


def upgrade() -> None:
    op.create_table("tiny_things", sa.Column("id", sa.Integer, primary_key=True))
"""


def summit(*args: str, **env: str):  # noqa: ANN003, ANN201
    return runner.invoke(main.app, list(args), env=env)


@pytest.fixture
def tiny_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Another app than Summit Photos: a package whose Alembic history makes one table."""
    history = tmp_path / "apps" / "tinyapp" / "migrations"
    (history / "versions").mkdir(parents=True)
    (history.parent / "__init__.py").write_text("")
    (history / "__init__.py").write_text('VERSION_TABLE = "tiny_version"\n')
    (history / "env.py").write_text(TINY_ENV)
    (history / "versions" / "t0001_things.py").write_text(TINY_REVISION)
    monkeypatch.syspath_prepend(str(tmp_path / "apps"))
    yield "tinyapp.migrations"
    for name in [n for n in sys.modules if n == "tinyapp" or n.startswith("tinyapp.")]:
        del sys.modules[name]


def tables(data: Path) -> set[str]:
    engine = sa.create_engine(f"sqlite:///{data}/app.db")
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_the_platforms_histories_run_before_the_apps() -> None:
    found = migrate.histories(load_blueprint(environ={}))
    assert [h.package for h in found] == ["summit.security.identity.migrations", "photos.migrations"]
    assert [h.version_table for h in found] == ["summit_identity_version", "alembic_version"]


def heads() -> dict[str, str | None]:
    """Each history's head revision, read from its scripts (a new migration moves it)."""
    return {h.package: h.head() for h in migrate.histories(load_blueprint(environ={}))}


def test_db_upgrade_then_current_shows_each_history_at_its_head(tmp_path: Path) -> None:
    data = tmp_path / "data"
    head = heads()
    assert head["summit.security.identity.migrations"] and head["photos.migrations"]
    before = summit("db", "current", "-d", str(data))
    assert before.exit_code == 0, before.output
    assert before.output.splitlines() == ["summit.security.identity.migrations: - (not applied)", "photos.migrations: - (not applied)"]
    upgraded = summit("db", "upgrade", "-d", str(data))
    assert upgraded.exit_code == 0, upgraded.output
    for package, revision in head.items():
        assert f"{package} at revision {revision}" in upgraded.output
    assert {"identity_users", "users", "posts"} <= tables(data)
    after = summit("db", "current", "-d", str(data))
    assert after.output.splitlines() == [f"{package}: {revision} (head)" for package, revision in head.items()]
    assert summit("db", "upgrade", "-d", str(data)).exit_code == 0  # idempotent


def test_db_migrates_the_app_the_blueprint_names(tmp_path: Path, tiny_app: str) -> None:
    data = tmp_path / "data"
    result = summit("db", "upgrade", "-d", str(data), SUMMIT_APP__MIGRATIONS=tiny_app)
    assert result.exit_code == 0, result.output
    found = tables(data)
    assert "tiny_things" in found and "identity_users" in found
    assert "posts" not in found  # Summit Photos' history did not run
    current = summit("db", "current", "-d", str(data), SUMMIT_APP__MIGRATIONS=tiny_app)
    assert current.output.splitlines()[-1] == "tinyapp.migrations: t0001 (head)"


def test_an_app_without_migrations_gets_the_platforms_tables_only(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = summit("db", "upgrade", "-d", str(data), SUMMIT_APP__MIGRATIONS="")
    assert result.exit_code == 0, result.output
    assert "identity_users" in tables(data) and "posts" not in tables(data)
    identity = heads()["summit.security.identity.migrations"]
    assert summit("db", "current", "-d", str(data), SUMMIT_APP__MIGRATIONS="").output.splitlines() == [
        f"summit.security.identity.migrations: {identity} (head)"]  # fmt: skip


@pytest.mark.parametrize(
    ("value", "words"),
    [("no_such_app.migrations", "app.migrations: cannot import 'no_such_app.migrations'"),
     ("photos.services", "app.migrations: 'photos.services' is not an Alembic history"),
     ("photos.schema", "app.migrations: 'photos.schema' is not an Alembic history"),
     ("photos/migrations", "'app.migrations' (environment variable SUMMIT_APP__MIGRATIONS): must be a package name")],
)  # fmt: skip
@pytest.mark.parametrize("command", ["upgrade", "current"])
def test_db_with_a_bad_app_migrations_exits_2_naming_the_key(tmp_path: Path, command: str, value: str, words: str) -> None:
    result = summit("db", command, "-d", str(tmp_path / "data"), SUMMIT_APP__MIGRATIONS=value)
    assert result.exit_code == 2
    assert words in " ".join(result.output.split())  # rich wraps long lines


@pytest.mark.parametrize(
    ("args", "env", "words"),
    [(["--app", "photos.app:nope"], {}, "app.factory: 'photos.app' has no function 'nope' (the blueprint's [app] section, or --app)"),
     (["--app", "nope"], {}, "'app.factory': must be 'package.module:function'"),
     ([], {"SUMMIT_APP__FACTORY": "no_such_app:make"}, "app.factory: cannot import 'no_such_app'")],
)  # fmt: skip
def test_up_with_an_app_it_cannot_import_exits_2_before_listening(tmp_path: Path, args: list[str], env: dict, words: str) -> None:
    data = tmp_path / "data"
    with socket.socket() as taken:  # were the app checked after the port, this would exit 1 ("in use")
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = summit("up", "--port", str(taken.getsockname()[1]), "-d", str(data), *args, **env)
    assert result.exit_code == 2, result.output
    assert words in " ".join(result.output.split())
    assert not data.exists()  # nothing was started or written
