"""Varnish: the stage's CDN, in two tiers like CloudFront's edge locations and regional edge caches.

HAProxy sends photo and static paths (``/media/``, ``/static/``) to the edge tier; an edge's origin
is the regional tier; the regional tier's origin is the app servers (round robin, each
health-checked). Only those paths are cached: anything else passes. Each tier honours the
``Cache-Control`` the app sets (a year, immutable, for content-addressed photos; none for pages),
streams large objects as they arrive, caches errors for a second only (a deleted photo must not
linger), and takes ``PURGE`` from loopback (the cdn port's adapter sends it to every tier). Each
response says whether it was a hit (``X-Cache``) and in which tier (``X-Cache-Tier``).
"""

from __future__ import annotations

import os
import shutil
import signal
import urllib.error
import urllib.request
from pathlib import Path

from summit.engines.layout import Engine, EngineError, Layout, chown, owned_dir, tcp_open
from summit.engines.process import Command

CACHED = r"^/(media|static)/"
RUN_USER = "varnish"  # Debian's varnish package: varnishd's management process, as root drops to it


def binary() -> str:
    found = shutil.which("varnishd") or ("/usr/sbin/varnishd" if Path("/usr/sbin/varnishd").exists() else None)
    if found is None:
        raise EngineError("Varnish is not installed: run `summit engines install` (Debian's varnish)")
    return found


class Varnish(Engine):
    kind = "varnish"

    def __init__(self, name: str, port: int, tier: str, origins: list[Engine], *, size_mb: int = 128):
        super().__init__(name, f"CDN, {tier} tier", port, needs=tuple(o.name for o in origins if o.kind == "varnish"))
        self.tier = tier
        self.origins = origins
        self.size_mb = size_mb

    def work_dir(self, layout: Layout) -> Path:
        return layout.engine_dir(self.name) / "work"

    def render(self) -> str:
        backends = []
        for origin in self.origins:
            probe = "" if origin.kind == "varnish" else (
                '\n    .probe = { .url = "/healthz"; .interval = 1s; .timeout = 1s; .window = 3; .threshold = 2; }')
            backends.append(f'backend {origin.name.replace("-", "_")} {{\n    .host = "{origin.host}";\n    .port = "{origin.port}";'
                            f"\n    .connect_timeout = 1s;\n    .first_byte_timeout = 30s;{probe}\n}}")
        adds = "\n    ".join(f"origins.add_backend({o.name.replace('-', '_')});" for o in self.origins)
        return f"""vcl 4.1;
# rendered by summit before each start: edit the blueprint, not this file
import directors;

{chr(10).join(backends)}

acl purgers {{ "127.0.0.1"; }}

sub vcl_init {{
    new origins = directors.round_robin();
    {adds}
}}

sub vcl_recv {{
    set req.backend_hint = origins.backend();
    if (req.method == "PURGE") {{
        if (client.ip !~ purgers) {{ return (synth(405, "purge is for the stage only")); }}
        return (purge);
    }}
    if (req.url !~ "{CACHED}" || (req.method != "GET" && req.method != "HEAD")) {{ return (pass); }}
    unset req.http.Cookie;
    unset req.http.Authorization;
    return (hash);
}}

sub vcl_hash {{
    # one site: the path names the object, whichever address (and so Host) a request came by
    hash_data(req.url);
    return (lookup);
}}

sub vcl_backend_response {{
    set beresp.do_stream = true;
    if (beresp.status >= 400) {{ set beresp.ttl = 1s; set beresp.grace = 0s; }}
}}

sub vcl_deliver {{
    if (obj.hits > 0) {{ set resp.http.X-Cache = "HIT"; }} else {{ set resp.http.X-Cache = "MISS"; }}
    set resp.http.X-Cache-Tier = "{self.tier}";
}}
"""

    def prepare(self, layout: Layout) -> None:
        user = RUN_USER if os.geteuid() == 0 else None
        home = owned_dir(layout.engine_dir(self.name), user)
        (home / "default.vcl").write_text(self.render())
        chown(home / "default.vcl", user)
        work = self.work_dir(layout)
        if work.exists():
            shutil.rmtree(work)  # varnishd's shared memory of a previous run

    def command(self, layout: Layout) -> Command:
        home = layout.engine_dir(self.name)
        argv = [binary(), "-F", "-a", f"{self.host}:{self.port}", "-f", str(home / "default.vcl"),
                "-s", f"malloc,{self.size_mb}m", "-n", str(self.work_dir(layout)), "-p", "default_grace=0"]
        if os.geteuid() != 0:
            argv += ["-j", "none"]
        return Command(argv, stop_signal=signal.SIGTERM, grace=10.0)

    def ready(self, layout: Layout) -> bool:
        if not tcp_open(self.host, self.port):
            return False
        try:  # any HTTP answer from varnishd itself (a purge of nothing) means it is serving
            request = urllib.request.Request(f"http://{self.host}:{self.port}/summit-ready", method="PURGE")
            with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310 (loopback)
                return response.status == 200
        except urllib.error.HTTPError:
            return True
        except (urllib.error.URLError, OSError):
            return False
