"""summit: grow one web service from its first user to ten million, stage by stage.

The application talks to the ports (``summit.ports``); the wiring (``summit.wiring``) picks an
adapter for each port from a URL in the blueprint (``summit.blueprint``).
"""

__version__ = "0.1.0"
