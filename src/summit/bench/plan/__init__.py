"""``summit plan``: what the service needs at any number of users, from one to ten million and on.

The modules: ``planner`` (inputs and plans: the entry points below), ``model`` (the arithmetic),
``queueing`` (utilisation law, M/M/c), ``demands`` (bench reports and published figures),
``stages`` (seed stage, ceilings, next bottleneck), ``check`` (model against a measured
capacity: ``check.check``), ``chart`` (SVG/HTML) and ``render`` (tables). Only the names below are the package's
face; the submodules' other names are for the planner itself and its tests.
"""

from summit.bench.plan.demands import load_report, resolve
from summit.bench.plan.model import STAGES, Assumptions, PlanError
from summit.bench.plan.planner import SERIES, apply_settings, load_inputs, make_plans, parse_users, sweep

__all__ = [
    "Assumptions",
    "PlanError",
    "SERIES",
    "STAGES",
    "apply_settings",
    "load_inputs",
    "load_report",
    "make_plans",
    "parse_users",
    "resolve",
    "sweep",
]
