"""What the WAF tier costs: requests per second of one GET through nginx + ModSecurity + the OWASP
CRS (the stage's WAF unit, ``summit.engines.waf``, paranoia level 1) against nginx alone proxying
to the same origin, in one run (the ratio is what to read):

    .venv/bin/python bench/waf.py [--seconds 10] [--connections 32]

Starts, with the control plane's supervisor, in a directory of its own under /tmp: an origin (nginx
answering a 1 KiB page from memory, so the origin is never what limits), nginx alone in front of it
(one worker, keep-alive to the origin: what the WAF process does minus ModSecurity), and one WAF
process in front of the same origin. The servers are pinned to CPU 0 and wrk to CPU 1, so each
proxy gets one core and the client never takes it. The request is an app-like page load: a path
with a query string, a browser's headers and session cookies carrying a JWT (ModSecurity inspects
every one of them). Needs Debian's nginx, libnginx-mod-http-modsecurity, modsecurity-crs and wrk
(`summit engines install nginx`, `scripts/install.sh --bench`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil

from summit.engines import Command, Engine, Layout, Supervisor
from summit.engines.layout import free_port, tcp_open
from summit.engines.waf import Waf, WafSettings, binary

JWT = ("eyJhbGciOiJFZERTQSIsImtpZCI6IjIwMjUtMDEtMDEiLCJ0eXAiOiJKV1QifQ."
       "eyJpc3MiOiJodHRwOi8vMTI3LjAuMC4xOjgwMDAiLCJzdWIiOiIxMjM0NSIsImV4cCI6MTc2NTAwMDAwMH0."
       "k3_f3aT-Qx9ZcWb0pVt4n0_yX2e1rLhYw8c9Gq0m4Jz7bD2sN6uA5oK1iE3lR8vH0tF9pC7gB4nM2xQ")
HEADERS = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en-GB,en;q=0.9",
    "Cookie": f"summit_session={JWT}; summit_csrf=Zk9aa0xYbWJ2cQ; summit_rp=0/16B3F28",
}
PATH = "/u/ann?tab=posts&cursor=eyJpZCI6IjUxMDgzODcxODEzNjE4OTk1NyJ9"


class Nginx(Engine):
    """A plain nginx process of the bench: ``body`` is its http block's server part."""

    kind = "nginx"

    def __init__(self, name: str, port: int, server: str, upstream: str = ""):
        super().__init__(name, "bench", port)
        self.server, self.upstream = server, upstream

    def prepare(self, layout: Layout) -> None:
        home = layout.engine_dir(self.name)
        (home / "tmp").mkdir(parents=True, exist_ok=True)
        user = "user www-data www-data;" if os.geteuid() == 0 else ""
        temp = "\n".join(f"    {kind}_temp_path {home}/tmp/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        (home / "nginx.conf").write_text(f"""daemon off;
worker_processes 1;
pid {home}/nginx.pid;
error_log stderr warn;
{user}
events {{ worker_connections 4096; }}
http {{
    access_log off;
{temp}
{self.upstream}
    server {{
        listen 127.0.0.1:{self.port} backlog=1024;
{self.server}
    }}
}}
""")

    def command(self, layout: Layout) -> Command:
        home = layout.engine_dir(self.name)
        return Command([binary(), "-p", str(home), "-c", str(home / "nginx.conf"), "-e", "stderr"], stop_signal=15)

    def ready(self, layout: Layout) -> bool:
        return tcp_open(self.host, self.port, timeout=0.2)


def pin(pid: int, cpu: int) -> None:
    """Pin a process and its children (nginx's workers) to one CPU."""
    for process in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
        process.cpu_affinity([cpu])


def wrk(url: str, seconds: int, connections: int) -> tuple[float, str]:
    argv = ["taskset", "-c", "1", shutil.which("wrk") or "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for key, value in HEADERS.items():
        argv += ["-H", f"{key}: {value}"]
    done = subprocess.run([*argv, url], capture_output=True, text=True, check=True, timeout=seconds + 30)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", done.stdout).group(1))
    p50 = re.search(r"^\s+50%\s+(\S+)", done.stdout, re.MULTILINE).group(1)  # the latency distribution's line
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", done.stdout)
    if errors:
        raise SystemExit(f"{url}: {errors.group(1)} answers were not 2xx: the bench's request was blocked?\n{done.stdout}")
    return rate, p50


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: scripts/install.sh --bench (Debian's wrk)")
    if os.cpu_count() < 2:
        sys.exit("needs 2 CPUs: the servers on CPU 0, wrk on CPU 1")
    root = Path(tempfile.mkdtemp(prefix="summit-bench-waf-", dir="/tmp"))
    root.chmod(0o755)
    page = "x" * 1024
    origin = Nginx("origin", free_port(), f'        location / {{ default_type text/html; return 200 "{page}"; }}')
    keepalive = f"    upstream origin {{ server {origin.address}; keepalive 64; }}"
    plain = Nginx("nginx-alone", free_port(), """        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_buffering off;
        }""", keepalive)
    waf = Waf("waf-1", free_port(), [origin], WafSettings())
    layout = Layout(root)
    supervisor = Supervisor(layout, [origin, plain, waf], on_event=lambda text: None)
    try:
        asyncio.run(supervisor.start())  # on a failure it stops what it started, and raises
        for engine in (origin, plain, waf):
            pin(supervisor.unit(engine.name).process.pid, 0)
        rows = []
        for label, engine in (("nginx alone -> origin", plain), ("nginx + ModSecurity + CRS (PL1) -> origin", waf)):
            wrk(f"http://{engine.address}{PATH}", 2, args.connections)  # warm up
            rate, p50 = wrk(f"http://{engine.address}{PATH}", args.seconds, args.connections)
            rows.append((label, rate, p50))
    finally:
        asyncio.run(supervisor.stop())
        shutil.rmtree(root, ignore_errors=True)
    print(f"GET {PATH} with a browser's headers and a JWT cookie; wrk -t1 -c{args.connections} -d{args.seconds}s on CPU 1, "
          "each proxy (one worker) and the origin on CPU 0")
    print(f"{'':44} {'req/s':>10} {'p50':>9}")
    for label, rate, p50 in rows:
        print(f"{label:44} {rate:10,.0f} {p50:>9}")
    print(f"the WAF serves {rows[1][1] / rows[0][1]:.1%} of nginx alone's rate: "
          f"{1e6 / rows[1][1] - 1e6 / rows[0][1]:,.0f} µs more CPU per request on one core")


if __name__ == "__main__":
    main()
