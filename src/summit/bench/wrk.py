"""Raw single-endpoint throughput with wrk (Debian's), pinned to its own core.

A generated Lua script sets the request and prints wrk's summary as one JSON line, so nothing
depends on the layout of wrk's human-readable output.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from summit.bench.procs import pinned

MARK = "WRKJSON "

_DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"status_errors":%d,"timeout_errors":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"mean_us":%.1f,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end
"""


class WrkMissing(RuntimeError):
    pass


@dataclass
class WrkResult:
    requests: int
    seconds: float
    errors: int  # socket errors and non-2xx/3xx answers
    p50_ms: float
    p90_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def good_rps(self) -> float:
        return max(0, self.requests - self.errors) / self.seconds if self.seconds > 0 else 0.0


def lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r") + '"'


def script(method: str = "GET", headers: dict[str, str] | None = None, body: str | None = None) -> str:
    lines = [f"wrk.method = {lua_string(method)}"]
    for name, value in (headers or {}).items():
        lines.append(f"wrk.headers[{lua_string(name)}] = {lua_string(value)}")
    if body is not None:
        lines.append(f"wrk.body = {lua_string(body)}")
    return "\n".join(lines) + "\n" + _DONE


def parse(output: str) -> WrkResult:
    for line in output.splitlines():
        if line.startswith(MARK):
            data = json.loads(line[len(MARK):])
            errors = data["connect_errors"] + data["read_errors"] + data["write_errors"] + data["status_errors"] + data["timeout_errors"]
            return WrkResult(
                requests=int(data["requests"]),
                seconds=data["duration_us"] / 1e6,
                errors=int(errors),
                p50_ms=data["p50_us"] / 1000,
                p90_ms=data["p90_us"] / 1000,
                p99_ms=data["p99_us"] / 1000,
            )
    raise ValueError("wrk printed no summary line:\n" + output[-2000:])


def available() -> bool:
    return shutil.which("wrk") is not None


def run(
    url: str,
    *,
    seconds: float = 5.0,
    connections: int = 64,
    threads: int = 1,
    core: int | None = None,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: str | None = None,
    timeout: float = 5.0,
) -> WrkResult:
    if not available():
        raise WrkMissing("wrk is not installed: apt-get install -y --no-install-recommends wrk (or scripts/install.sh --bench)")
    with tempfile.TemporaryDirectory(prefix="summit-wrk-") as tmp:
        path = Path(tmp) / "req.lua"
        path.write_text(script(method, headers, body))
        argv = pinned(
            ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", f"--timeout={max(1, round(timeout))}s", "-s", str(path), url],
            core,
        )
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + timeout + 30, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return parse(done.stdout)
