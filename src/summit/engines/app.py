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

    def __init__(self, name: str, blueprint: Blueprint, port: int | None = None, needs: tuple[str, ...] = ()):
        """The app on ``port`` (default: the public port, when it is the stage's only app server;
        behind a load balancer each gets a loopback port of its own)."""
        public = port is None
        super().__init__(name, "web", blueprint.server.port if public else port, needs=needs)
        self.blueprint = blueprint
        self.host = blueprint.server.host if public else "127.0.0.1"

    @property
    def url(self) -> str:
        host = self.host if ":" not in self.host else f"[{self.host}]"
        return f"http://{host}:{self.port}"

    def command(self, layout: Layout) -> Command:
        b = self.blueprint
        env = {
            "SUMMIT_STAGE": b.stage,
            "SUMMIT_DATA_DIR": str(layout.data_dir),
            "SUMMIT_SERVER__HOST": self.host,
            "SUMMIT_SERVER__PORT": str(self.port),
            "SUMMIT_SERVER__WORKERS": str(b.server.workers),
            "SUMMIT_SERVER__PROCESSES": str(b.server.processes),
            "SUMMIT_SERVER__TRUSTED_PROXIES": b.server.trusted_proxies,
            "SUMMIT_AUTH__ISSUER": b.issuer,  # the public URL: every app server issues and checks the same
            "SUMMIT_AUTH__COOKIE_SECURE": "true" if b.auth.cookie_secure else "false",  # follows TLS at the front door
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
