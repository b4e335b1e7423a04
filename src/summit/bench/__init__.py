"""Measurement: ``summit bench`` drives a stage with a photo service's user journeys at fixed
arrival rates (open model), measures raw endpoints and baselines with wrk, the service demands
(CPU per request of each tier) and what the server counted (``/metrics``), and writes a JSON
report (the contract that ``summit plan`` reads; see docs/benchmarks.md) and a self-contained
HTML page. ``summit bench profile`` profiles one route under load.

Modules: ``runner`` (the run: its phases in order) and ``phases/`` (one module per phase),
``session`` (what the phases share), ``options``; ``loadgen`` (schedule, mix, open-loop runner,
percentiles), ``http`` (a lean HTTP/1.1 client), ``scenarios``, ``seed``, ``mailcodes``
(confirmation codes through the mail port), ``counters`` (``/metrics`` differences), ``wrk``,
``baselines``, ``procs`` (processes, CPU and memory), ``report`` (the JSON contract, capacity,
compare), ``headline`` (the key figures), ``html``, ``html_mix``, ``htmlkit`` and ``svg`` (the
page), ``profile`` and ``flame`` (profiles and flame graphs), ``net`` (loopback only); ``plan/``
is the capacity planner.
"""

from summit.bench.report import VERSION as REPORT_VERSION

__all__ = ["REPORT_VERSION"]
