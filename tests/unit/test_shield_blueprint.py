"""The blueprint's [shield] section: the edge's limits and the app's, exemptions, errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from summit.blueprint import BlueprintError, load_blueprint


@pytest.fixture(autouse=True)
def empty_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def test_defaults_limit_at_every_stage_and_exempt_nobody() -> None:
    for stage in ("1", "1k", "10k"):
        shield = load_blueprint(environ={}, overrides={"stage": stage}).shield
        assert shield.exempt == [] and shield.edge.enabled and shield.app.enabled and shield.app.limits == {}
        edge = shield.edge
        assert (edge.window_seconds, edge.request_rate, edge.connections, edge.connection_rate) == (10, 10_000, 200, 2000)
        assert edge.drop_request_rate > edge.request_rate and edge.drop_connection_rate > edge.connection_rate


def test_exempt_sources_from_a_file_or_the_environment(tmp_path: Path) -> None:
    (tmp_path / "summit.toml").write_text('[shield]\nexempt = ["127.0.0.1", "10.1.2.3/8", "2001:db8::1/64"]\n')
    assert load_blueprint(environ={}).shield.exempt == ["127.0.0.1/32", "10.0.0.0/8", "2001:db8::/64"]
    env = load_blueprint(environ={"SUMMIT_SHIELD__EXEMPT": " 127.0.0.1, ::1 ,127.0.0.1"}).shield
    assert env.exempt == ["127.0.0.1/32", "::1/128"]  # a comma-separated variable, each once


def test_a_bad_source_names_the_key_and_the_variable() -> None:
    with pytest.raises(BlueprintError) as error:
        load_blueprint(environ={"SUMMIT_SHIELD__EXEMPT": "127.0.0.1,localhost"})
    assert "'shield.exempt' (environment variable SUMMIT_SHIELD__EXEMPT)" in str(error.value)
    assert "'localhost' is not an address or a network" in str(error.value)


def test_drops_sit_above_the_429_limits() -> None:
    with pytest.raises(BlueprintError, match="drop_request_rate \\(100\\) must be above request_rate \\(200\\)"):
        load_blueprint(environ={}, overrides={"shield": {"edge": {"request_rate": 200, "drop_request_rate": 100}}})
    with pytest.raises(BlueprintError, match="drop_connection_rate"):
        load_blueprint(environ={"SUMMIT_SHIELD__EDGE__CONNECTION_RATE": "50", "SUMMIT_SHIELD__EDGE__DROP_CONNECTION_RATE": "50"})


def test_app_rates_are_checked_when_loaded() -> None:
    shield = load_blueprint(environ={}, overrides={"shield": {"app": {"limits": {"comment": "5/minute", "sign_up": "3 per hour"}}}}).shield
    assert shield.app.limits == {"comment": "5/minute", "sign_up": "3 per hour"}
    with pytest.raises(BlueprintError, match="'shield.app.limits'.*'often' is not a rate"):
        load_blueprint(environ={}, overrides={"shield": {"app": {"limits": {"comment": "often"}}}})
    with pytest.raises(BlueprintError, match="unknown key 'shield.edge.rate'"):
        load_blueprint(environ={}, overrides={"shield": {"edge": {"rate": 1}}})
