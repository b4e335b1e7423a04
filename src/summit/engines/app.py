"""The app server as an engine of the stage: ``summit serve`` (granian and the blueprint's app
factory) in a process of its own, ready when ``/healthz`` answers 200."""

from __future__ import annotations

import os
import signal
import sys
import urllib.error
import urllib.request

from summit.blueprint import Blueprint
from summit.engines.layout import Engine, Layout, tcp_open
from summit.engines.process import Command


class AppServer(Engine):
    kind = "app"
    ready_timeout = 90.0

    def __init__(self, name: str, blueprint: Blueprint, needs: tuple[str, ...] = ()):
        super().__init__(name, "web", blueprint.server.port, needs=needs)
        self.blueprint = blueprint
        self.host = blueprint.server.host

    @property
    def url(self) -> str:
        host = self.host if ":" not in self.host else f"[{self.host}]"
        return f"http://{host}:{self.port}"

    def command(self, layout: Layout) -> Command:
        b = self.blueprint
        env = {
            "SUMMIT_STAGE": b.stage,
            "SUMMIT_DATA_DIR": str(layout.data_dir),
            "SUMMIT_SERVER__HOST": b.server.host,
            "SUMMIT_SERVER__PORT": str(b.server.port),
            "SUMMIT_SERVER__WORKERS": str(b.server.workers),
            "SUMMIT_APP__FACTORY": b.app.factory,
        }
        if os.environ.get("SUMMIT_CONFIG"):
            env["SUMMIT_CONFIG"] = os.environ["SUMMIT_CONFIG"]
        return Command([sys.executable, "-m", "summit", "serve"], env=env, stop_signal=signal.SIGINT, grace=20.0)

    def ready(self, layout: Layout) -> bool:
        if not tcp_open(self.host, self.port):
            return False
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=3) as response:  # noqa: S310 (loopback)
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False
