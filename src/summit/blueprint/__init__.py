"""The blueprint: what a deployment runs, validated, from presets + summit.toml + environment."""

from summit.blueprint.model import Blueprint, BlueprintError, load_blueprint, stage_names

__all__ = ["Blueprint", "BlueprintError", "load_blueprint", "stage_names"]
