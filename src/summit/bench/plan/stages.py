"""Which seed stage a plan is, and the next bottleneck.

A *ceiling* is a single thing that stops being enough as users grow: one web process, one database
node for the reads, one primary for the writes, one database for the data, one cache node, the
web process running the worker, ... Each one, once crossed, needs what a seed stage adds (a load
balancer, replicas, sharding, ...). Every resource grows with users, so each ceiling is crossed at
one user count, found by bisection on the model. A plan's stage is the later of the talk's
threshold and the latest ceiling crossed; its next bottleneck is the first ceiling still ahead.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from summit.bench.plan.model import STAGE_USERS, STAGES, Assumptions, compute, stage_index

MAX_USERS = 10**10

WHAT_STAGE_ADDS = {
    "1": "one server, fixed address, DNS",
    "1+": "separate database; sign-up and login; IAM, audit, WAF, TLS, KMS, secrets",
    "1k": "load balancer, horizontal web tier",
    "10k": "read replicas; object store + CDN; cache; key-value store with TTL",
    "500k": "autoscaling on metrics; automation and deploy pipeline",
    "1m": "multi-AZ; separate web, worker and app tiers; internal and external LBs; queues",
    "5m": "split databases by role; sharding; each function's data in the store that fits",
    "10m": "microservices; multi-region; deep analysis of the whole stack",
}


@dataclass(frozen=True)
class Ceiling:
    name: str
    stage: str
    tier: str
    action: str
    crossed: Callable[[dict[str, Any], Assumptions], bool]


def _autoscale(p: dict[str, Any], a: Assumptions) -> bool:
    # autoscaling pays once the web fleet at peak is two machines or more above the average
    return (p["web"]["busy_cores"] - p["web"]["busy_cores_average"]) / a.target_utilisation >= 2 * a.cores_per_node


CEILINGS = (
    Ceiling("one web process", "1k", "web", "put a load balancer in front and run several stateless web processes", lambda p, a: p["web"]["cores"] > 1),
    Ceiling("one WAF process", "1k", "waf", "run the WAF as a horizontal tier behind the load balancer", lambda p, a: p["waf"]["cores"] > 1),
    Ceiling("database reads without a cache", "10k", "db", "put a cache (Redis) in front of the database",
            lambda p, a: p["db"]["read_busy_cores_uncached"] + p["db"]["write_busy_cores"] > p["db"]["node_capacity_cores"]),
    Ceiling("one database node for the reads", "10k", "db", "add read replicas with read-your-writes routing", lambda p, a: p["db"]["load_replicas_per_shard"] > 0),
    Ceiling("images served by the origin", "10k", "cdn", "serve photos from the object store through a CDN",
            lambda p, a: p["cdn"]["egress_bytes_per_s"] * 8 / 1e9 > a.origin_gbps),
    Ceiling("one cache node", "10k", "cache", "run the cache as a cluster (keys hashed over several nodes)", lambda p, a: p["cache"]["nodes"] > 1),
    Ceiling("a fixed web fleet", "500k", "web", "autoscale the web tier on metrics between a minimum and a maximum", _autoscale),
    Ceiling("the worker inside the web process", "1m", "worker", "run thumbnails and tasks in a worker tier fed by a queue",
            lambda p, a: p["worker"]["busy_cores"] > a.worker_in_process_cores * p["web"]["cores"]),
    Ceiling("one load-balancer node", "1m", "lb", "split external and internal load balancers; several front nodes behind DNS",
            lambda p, a: p["lb"]["cores"] > a.cores_per_node),
    Ceiling("one broker node", "1m", "queue", "run the broker as a cluster and partition the queues", lambda p, a: p["queue"]["brokers"] > 1),
    Ceiling("one primary for the writes", "5m", "db", "shard the writes over several primaries",
            lambda p, a: p["db"]["write_busy_cores"] > p["db"]["node_capacity_cores"]),
    Ceiling("one database for the data", "5m", "db", "shard the data: logical shards on several PostgreSQL clusters",
            lambda p, a: p["db"]["data_bytes"] > a.max_shard_bytes),
)


def first_users(test: Callable[[float], bool], low: float = 1, high: float = MAX_USERS) -> int | None:
    """The smallest whole user count in [low, high] where ``test`` holds (``test`` must be
    monotonic: false, then true); None if it never holds up to ``high``."""
    if test(low):
        return math.ceil(low)
    if not test(high):
        return None
    lo, hi = math.log(low), math.log(high)
    while math.exp(hi) - math.exp(lo) > 1 and hi - lo > 1e-9:
        mid = (lo + hi) / 2
        if test(math.exp(mid)):
            hi = mid
        else:
            lo = mid
    users = math.floor(math.exp(lo))
    while not test(users):
        users += 1
    return users


def crossings(workload: Any, a: Assumptions, demands: Mapping[str, Mapping[str, float]]) -> list[dict[str, Any]]:
    """Every ceiling with the user count where it is crossed (None: not below 10^10), in order."""
    out = []
    for ceiling in CEILINGS:
        users = first_users(lambda u, c=ceiling: c.crossed(compute(u, workload, a, demands, queueing=False), a))
        out.append({"name": ceiling.name, "stage": ceiling.stage, "tier": ceiling.tier, "action": ceiling.action, "users": users})
    return sorted(out, key=lambda c: (c["users"] is None, c["users"] or 0, stage_index(c["stage"])))


def stage_of(users: float, talk: str, ceilings: list[dict[str, Any]]) -> dict[str, Any]:
    crossed = [c for c in ceilings if c["users"] is not None and c["users"] <= users]
    structure = max((c["stage"] for c in crossed), key=stage_index, default="1")
    stage = max(talk, structure, key=stage_index)
    return {
        "stage": stage,
        "talk": talk,
        "structure": structure,
        "adds": WHAT_STAGE_ADDS[stage],
        "crossed": [c["name"] for c in crossed],
        "why": [f"{c['name']} (from {c['users']:,} users) needs stage {c['stage']}: {c['action']}" for c in crossed if stage_index(c["stage"]) > stage_index(talk)],
        "next_talk_stage": next(({"stage": s, "users": STAGE_USERS[s] + 1} for s in STAGES[stage_index(talk) + 1:]), None),
    }


def next_bottleneck(users: float, workload: Any, a: Assumptions, demands: Mapping[str, Mapping[str, float]], ceilings: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The first ceiling ahead of ``users``; past all of them, the next shard split."""
    ahead = [c for c in ceilings if c["users"] is not None and c["users"] > users]
    if ahead:
        return {**ahead[0], "kind": "ceiling"}
    shards = compute(users, workload, a, demands, queueing=False)["db"]["shards"]
    split = first_users(lambda u: compute(u, workload, a, demands, queueing=False)["db"]["shards"] > shards, low=max(users, 1))
    if split is None:
        return None
    return {"name": f"shard {shards + 1}", "stage": "5m", "tier": "db", "kind": "resize", "users": split,
            "action": f"move logical shards onto a new PostgreSQL cluster ({shards} -> {shards + 1} primaries)"}
