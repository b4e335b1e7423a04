"""The control plane: the engine processes of a stage (PostgreSQL, PgBouncer, the app server...),
each rendered from the blueprint, started on loopback, probed until ready, restarted when it dies
and stopped cleanly, by one supervisor.

    stage = plan(blueprint)             # the engines, their ports, the URLs the app reaches them by
    publish(stage)
    supervisor = Supervisor(stage.layout, stage.engines)
    await supervisor.run(stop_event)    # like `docker compose up` in the foreground
"""

from summit.engines.layout import Engine, EngineError, Layout
from summit.engines.process import Command, Process
from summit.engines.stage import StagePlan, plan, publish, unpublish
from summit.engines.supervisor import Supervisor

__all__ = ["Command", "Engine", "EngineError", "Layout", "Process", "StagePlan", "Supervisor", "plan", "publish", "unpublish"]
