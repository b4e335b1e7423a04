"""summit.blueprint: preset < summit.toml < environment < overrides, with errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from summit.blueprint import Blueprint, BlueprintError, load_blueprint, stage_names


@pytest.fixture(autouse=True)
def empty_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run in an empty directory, so that no ./summit.toml is picked up."""
    monkeypatch.chdir(tmp_path)


def write(tmp_path: Path, text: str, name: str = "summit.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_are_stage_1() -> None:
    blueprint = load_blueprint(environ={})
    assert isinstance(blueprint, Blueprint)
    assert blueprint.stage == "1"
    assert blueprint.data_dir == Path(".summit")
    assert blueprint.ports.sql == "sqlite:///{data_dir}/app.db"
    assert blueprint.port_url("sql") == "sqlite:///.summit/app.db"
    assert blueprint.port_url("objects") == "file://.summit/objects"
    assert blueprint.port_url("cache") == "memory://?max_items=10000"
    assert blueprint.port_url("queue") == "sqlite:///.summit/queue.db?max_receives=5"
    assert (blueprint.server.host, blueprint.server.port, blueprint.server.workers) == ("127.0.0.1", 8000, 1)
    assert blueprint.worker.in_process is True
    assert "SQLite" in blueprint.description


def test_the_search_port_per_stage(tmp_path: Path) -> None:
    """Stage 1: FTS5 in a file of its own; from 1+ the stage's PostgreSQL, as the sql port."""
    assert load_blueprint(environ={}).port_url("search") == "sqlite:///.summit/search.db"
    for stage in ("1+", "1k", "10k"):
        assert load_blueprint(environ={}, overrides={"stage": stage}).ports.search == "{postgres}"
    data = tmp_path / "data"
    (data / "run").mkdir(parents=True)
    (data / "run" / "endpoints.json").write_text('{"postgres": "postgresql://summit@127.0.0.1:6432/summit?passfile=/p&prepared_statements=off"}')
    running = load_blueprint(environ={}, overrides={"stage": "1+", "data_dir": str(data)})
    assert running.port_url("search") == running.port_url("sql") == "postgresql://summit@127.0.0.1:6432/summit?passfile=/p&prepared_statements=off"


def test_from_1k_the_presets_put_tls_and_the_waf_tier_at_the_edge() -> None:
    """Cumulative: 1k turns on HAProxy with TLS and two WAF processes, 10k keeps them; 1 and 1+ have no edge."""
    for stage in ("1", "1+"):
        engines = load_blueprint(environ={}, overrides={"stage": stage}).engines
        assert not (engines.haproxy.enabled or engines.haproxy.tls or engines.waf.enabled), stage
    for stage in ("1k", "10k"):
        blueprint = load_blueprint(environ={}, overrides={"stage": stage})
        haproxy, waf = blueprint.engines.haproxy, blueprint.engines.waf
        assert haproxy.enabled and haproxy.tls and haproxy.https_port == 8443 and blueprint.tls, stage
        assert waf.enabled and waf.processes == 2 == blueprint.server.processes, stage
        assert blueprint.auth.cookie_secure is True and blueprint.public_url == "https://127.0.0.1:8443"
        assert "WAF" in blueprint.description and "HTTPS" in blueprint.description
    plain = load_blueprint(environ={"SUMMIT_ENGINES__HAPROXY__TLS": "false", "SUMMIT_ENGINES__WAF__ENABLED": "false"},
                           overrides={"stage": "10k"})
    assert not plain.tls and not plain.engines.waf.enabled and plain.public_url == "http://127.0.0.1:8000"


def test_stage_names_start_with_1() -> None:
    assert stage_names()[0] == "1"


def test_file_overrides_the_preset(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
data_dir = "/srv/summit"
[server]
port = 9000
[ports]
cache = "memory://?max_items=5"
""",
    )
    blueprint = load_blueprint(path, environ={})
    assert blueprint.server.port == 9000
    assert blueprint.server.host == "127.0.0.1"  # untouched keys keep the preset's value
    assert blueprint.port_url("cache") == "memory://?max_items=5"
    assert blueprint.port_url("sql") == "sqlite:////srv/summit/app.db"
    assert blueprint.port_url("objects") == "file:///srv/summit/objects"


def test_summit_toml_in_the_working_directory_is_read(tmp_path: Path) -> None:
    write(tmp_path, "[server]\nport = 8123\n")
    assert load_blueprint(environ={}).server.port == 8123


def test_summit_config_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\nworkers = 3\n", name="other.toml")
    assert load_blueprint(environ={"SUMMIT_CONFIG": str(path)}).server.workers == 3


def test_environment_beats_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\nport = 9000\nhost = '0.0.0.0'\n")
    environ = {
        "SUMMIT_SERVER__PORT": "9100",
        "SUMMIT_PORTS__SQL": "sqlite:///other.db",
        "SUMMIT_WORKER__IN_PROCESS": "false",
        "UNRELATED": "ignored",
    }
    blueprint = load_blueprint(path, environ=environ)
    assert blueprint.server.port == 9100
    assert blueprint.server.host == "0.0.0.0"
    assert blueprint.ports.sql == "sqlite:///other.db"
    assert blueprint.worker.in_process is False


def test_overrides_beat_the_environment(tmp_path: Path) -> None:
    blueprint = load_blueprint(environ={"SUMMIT_SERVER__PORT": "9100"}, overrides={"server": {"port": 9200}})
    assert blueprint.server.port == 9200


def test_unknown_key_in_the_file_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\nprot = 9000\n")
    with pytest.raises(BlueprintError) as caught:
        load_blueprint(path, environ={})
    message = str(caught.value)
    assert "unknown key 'server.prot'" in message
    assert str(path) in message


def test_unknown_section_in_the_file_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "[servers]\nport = 9000\n")
    with pytest.raises(BlueprintError, match="unknown key 'servers'"):
        load_blueprint(path, environ={})


def test_unknown_key_in_the_environment_is_named() -> None:
    with pytest.raises(BlueprintError) as caught:
        load_blueprint(environ={"SUMMIT_PORTS__SQLL": "sqlite:///x.db"})
    assert "unknown key 'ports.sqll'" in str(caught.value)
    assert "environment variable SUMMIT_PORTS__SQLL" in str(caught.value)


@pytest.mark.parametrize("order", [("SUMMIT_PORTS", "SUMMIT_PORTS__SQL"), ("SUMMIT_PORTS__SQL", "SUMMIT_PORTS")])
def test_a_section_and_its_key_in_the_environment_conflict_in_any_order(order: tuple[str, str]) -> None:
    with pytest.raises(BlueprintError, match="conflicts"):
        load_blueprint(environ=dict.fromkeys(order, "x"))


def test_bad_type_names_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\nport = 'eighty'\n")
    with pytest.raises(BlueprintError) as caught:
        load_blueprint(path, environ={})
    assert "'server.port'" in str(caught.value)
    assert "eighty" in str(caught.value)
    with pytest.raises(BlueprintError, match="'server.workers'"):
        load_blueprint(environ={"SUMMIT_SERVER__WORKERS": "0"})


def test_unknown_stage_lists_the_stages(tmp_path: Path) -> None:
    with pytest.raises(BlueprintError) as caught:
        load_blueprint(environ={"SUMMIT_STAGE": "2"})
    assert "unknown stage '2'" in str(caught.value)
    assert ", ".join(stage_names()) in str(caught.value)
    path = write(tmp_path, 'stage = "99k"\n')
    with pytest.raises(BlueprintError, match="unknown stage '99k'; the stages are: 1"):
        load_blueprint(path, environ={})


def test_stage_from_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "stage = 1\n")  # a number is read as the stage's name
    assert load_blueprint(path, environ={}).stage == "1"


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[server\nport = 1\n")
    with pytest.raises(BlueprintError) as caught:
        load_blueprint(path, environ={})
    assert str(path) in str(caught.value)
    assert "not valid TOML" in str(caught.value)


def test_explicit_missing_file_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(BlueprintError, match=f"blueprint file {missing} does not exist"):
        load_blueprint(missing, environ={})
    with pytest.raises(BlueprintError, match="does not exist"):
        load_blueprint(environ={"SUMMIT_CONFIG": str(missing)})


def test_blueprint_error_is_a_value_error() -> None:
    assert issubclass(BlueprintError, ValueError)


def test_the_app_is_named_by_the_preset() -> None:
    app = load_blueprint(environ={}).app
    assert (app.factory, app.migrations) == ("photos.app:create_app", "photos.migrations")
    from photos.app import create_app

    assert app.load_factory() is create_app
    assert app.migrations_package().__name__ == "photos.migrations"


@pytest.mark.parametrize("value", ["photos.app", "photos.app:", ":create_app", "photos/app:create_app", "photos.app:create-app", "1photos.app:x"])
def test_a_bad_app_factory_names_the_key(value: str) -> None:
    with pytest.raises(BlueprintError) as caught:
        load_blueprint(environ={"SUMMIT_APP__FACTORY": value})
    message = str(caught.value)
    assert "'app.factory' (environment variable SUMMIT_APP__FACTORY)" in message
    assert "must be 'package.module:function'" in message and repr(value) in message


def test_a_bad_app_migrations_names_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, "[app]\nmigrations = 'photos/migrations'\n")
    with pytest.raises(BlueprintError) as caught:
        load_blueprint(path, environ={})
    assert "'app.migrations': must be a package name" in str(caught.value) and str(path) in str(caught.value)
    with pytest.raises(BlueprintError, match="unknown key 'app.factroy'"):
        load_blueprint(environ={"SUMMIT_APP__FACTROY": "photos.app:create_app"})


def test_an_app_without_tables_has_no_migrations(tmp_path: Path) -> None:
    app = load_blueprint(write(tmp_path, "[app]\nmigrations = ''\n"), environ={}).app
    assert app.migrations == "" and app.migrations_package() is None
    assert app.factory == "photos.app:create_app"  # the rest of the section keeps the preset's value


def test_the_apps_search_documents() -> None:
    app = load_blueprint(environ={}).app
    assert app.search_documents == "photos.search:documents"
    from photos.search import documents

    assert app.load_search_documents() is documents
    assert load_blueprint(environ={"SUMMIT_APP__SEARCH_DOCUMENTS": ""}).app.load_search_documents() is None  # an app without
    with pytest.raises(BlueprintError) as caught:
        load_blueprint(environ={"SUMMIT_APP__SEARCH_DOCUMENTS": "photos.search"})
    assert "'app.search_documents' (environment variable SUMMIT_APP__SEARCH_DOCUMENTS)" in str(caught.value)
    assert "must be 'package.module:function', e.g. 'photos.search:documents'" in str(caught.value)
    with pytest.raises(BlueprintError, match="app.search_documents: 'photos.search' has no function 'nothing'"):
        load_blueprint(environ={"SUMMIT_APP__SEARCH_DOCUMENTS": "photos.search:nothing"}).app.load_search_documents()


def test_an_app_that_cannot_be_imported_names_the_key() -> None:
    missing = load_blueprint(environ={"SUMMIT_APP__FACTORY": "no_such_app.web:make", "SUMMIT_APP__MIGRATIONS": "no_such_app.db"}).app
    with pytest.raises(BlueprintError, match=r"^app\.factory: cannot import 'no_such_app\.web' \(No module named 'no_such_app'\)"):
        missing.load_factory()
    with pytest.raises(BlueprintError, match=r"^app\.migrations: cannot import 'no_such_app\.db'"):
        missing.migrations_package()
    not_a_function = load_blueprint(environ={"SUMMIT_APP__FACTORY": "photos.app:MEDIA_CACHE_CONTROL"}).app
    with pytest.raises(BlueprintError, match="app.factory: 'photos.app' has no function 'MEDIA_CACHE_CONTROL'"):
        not_a_function.load_factory()


def test_overrides_are_named_as_the_source_of_a_bad_value() -> None:
    with pytest.raises(BlueprintError, match=r"invalid blueprint \(command line or overrides\)"):
        load_blueprint(environ={}, overrides={"app": {"factory": "nope"}})
