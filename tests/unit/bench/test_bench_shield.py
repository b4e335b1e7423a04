"""The bench exempts its load generators from the rate limits of a stage it starts (shield.exempt)."""

from __future__ import annotations

from summit.bench.phases.stage import LOAD_GENERATOR, SHIELD_NOTE, shield_exemption
from summit.blueprint import load_blueprint


def test_the_load_generators_address_joins_the_blueprints_exemptions() -> None:
    own = load_blueprint(environ={}, overrides={"stage": "10k", "shield": {"exempt": ["192.0.2.0/24"]}})
    env = shield_exemption(own)
    assert env == {"SUMMIT_SHIELD__EXEMPT": f"192.0.2.0/24,{LOAD_GENERATOR}/32"}
    started = load_blueprint(environ=env, overrides={"stage": "10k", "shield": {}})  # what `summit up` reads
    assert started.shield.exempt == ["192.0.2.0/24", "127.0.0.1/32"]
    assert shield_exemption(started) == env  # already there: once
    assert "127.0.0.1" in SHIELD_NOTE.format(address=LOAD_GENERATOR) and "shield.exempt" in SHIELD_NOTE
