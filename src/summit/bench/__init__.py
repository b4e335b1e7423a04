"""Measurement: ``summit bench`` drives a stage with a photo service's user journeys at fixed
arrival rates (open model), measures raw endpoints and baselines with wrk, the service demands
(CPU per request of each tier), and writes a JSON report (the contract that ``summit plan``
reads; see docs/benchmarks.md) and a self-contained HTML page.

Modules: ``loadgen`` (schedule, mix, open-loop runner, percentiles), ``http`` (a lean HTTP/1.1
client), ``scenarios``, ``seed``, ``wrk``, ``baselines``, ``procs`` (processes, CPU and memory),
``report`` (the JSON contract, capacity, compare), ``html`` and ``svg`` (the page), ``runner``
(the whole run), ``net`` (loopback only).
"""

from summit.bench.report import VERSION as REPORT_VERSION

__all__ = ["REPORT_VERSION"]
