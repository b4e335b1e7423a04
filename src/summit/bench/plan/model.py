"""The planner's arithmetic: from users, the user model and service demands to resources per tier.

Every figure is a closed formula (see docs/scaling.md): rates are linear in users, pools are sized
by the utilisation law (cores = rate x CPU demand / target utilisation) and checked against the
p99 target with an M/M/c queue, data and storage grow with uploads and writes over the history the
plan covers. Nothing here does I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from summit.bench.plan.queueing import p99_ms, servers_needed

DAY_S = 86_400
STAGES = ("1", "1+", "1k", "10k", "500k", "1m", "5m", "10m")
# the talk's thresholds: a stage starts when users are MORE than its figure
TALK_THRESHOLDS = (("10m", 10_000_000), ("5m", 5_000_000), ("1m", 1_000_000), ("500k", 500_000), ("10k", 10_000), ("1k", 1_000), ("1+", 1))
STAGE_USERS = {"1": 1, **{stage: limit for stage, limit in TALK_THRESHOLDS}}


class PlanError(ValueError):
    """Bad input to the planner (users, assumptions, a bench report); the message says what to fix."""


def talk_stage(users: float) -> str:
    """The seed stage for ``users`` by the talk's thresholds alone (1, 1+, 1k, ..., 10m)."""
    for stage, limit in TALK_THRESHOLDS:
        if users > limit:
            return stage
    return "1"


def stage_index(stage: str) -> int:
    return STAGES.index(stage)


def _a(default: float, doc: str, source: str = "assumed") -> Any:
    return field(default=default, metadata={"doc": doc, "source": source})


ENGINES = "summit engine notes (shared/ENGINES.md), measured on this 2-core machine"


@dataclass(frozen=True)
class Assumptions:
    """What the planner assumes beyond the blueprint's ``workload``. Override any of them with
    ``summit plan --set NAME=VALUE`` or a ``[plan]`` table in the blueprint file."""

    monthly_active_ratio: float = _a(0.8, "monthly actives / users (reported only)")
    history_days: float = _a(365, "days of uploads and writes the data and storage figures hold")
    retention_days: float = _a(0, "photos older than this are deleted (0: kept forever)")
    derived_bytes_per_photo: float = _a(150_000, "bytes of the three WebP thumbnails (150, 640, 1080 px) of one photo")
    images_per_read: float = _a(3, "images a read request (feed, photo, profile page) makes the client fetch")
    served_image_bytes: float = _a(80_000, "average bytes of one image served (mostly the 640 and 1080 px WebP)")
    response_bytes: float = _a(20_000, "average bytes of a dynamic response (compressed HTML or JSON)")
    cdn_hit_ratio: float = _a(0.95, "share of image requests the CDN serves without the origin")
    cache_hit_ratio: float = _a(0.9, "share of read requests answered from the cache without the database")
    cache_bytes_per_dau: float = _a(16_384, "hot cache bytes per daily active user (session, profile, feed page of ids)")
    cache_bytes_per_photo: float = _a(2_048, "hot cache bytes per recent photo (metadata, counters)")
    cache_hot_days: float = _a(7, "photos younger than this are kept hot in the cache")
    cache_fill_ratio: float = _a(0.7, "usable share of a cache node's memory (allocator and eviction headroom)")
    cache_node_bytes: float = _a(32 * 2**30, "memory of one cache node (Redis or memcached instance)")
    cache_ops_per_read: float = _a(3, "cache look-ups per read request")
    cache_ops_per_write: float = _a(2, "cache sets or invalidations per write")
    db_bytes_per_user: float = _a(2_048, "database bytes per account, indexes included")
    db_bytes_per_photo: float = _a(1_024, "database bytes per photo row, indexes included")
    db_bytes_per_write: float = _a(300, "database bytes per other write (like, comment, follow), indexes included")
    max_shard_bytes: float = _a(500e9, "data one PostgreSQL primary holds before the planner shards (keeps the hot set in RAM, restores short)")
    db_cores_per_node: float = _a(16, "cores of one database node")
    db_target_utilisation: float = _a(0.5, "peak CPU share a database node may use (a replica must absorb a failed peer)")
    replicas_min: float = _a(1, "replicas per shard from stage 10k on (in another zone from 1m on)")
    cores_per_node: float = _a(8, "cores of one web, worker or edge machine")
    target_utilisation: float = _a(0.6, "peak CPU share the stateless pools may use (headroom for a lost zone and bursts)")
    worker_target_utilisation: float = _a(0.7, "peak CPU share of the worker pool (the queue absorbs bursts)")
    worker_in_process_cores: float = _a(0.25, "worker CPU (cores) each web process can carry beside its requests before a separate worker tier is needed")
    tasks_per_write: float = _a(1, "background tasks per write (notifications, feed fan-out)")
    latency_budget_web: float = _a(0.5, "share of the p99 target the web tier's own queueing may use")
    edge_node_gbps: float = _a(10, "network bandwidth of one edge (CDN) node, Gbit/s")
    origin_gbps: float = _a(1, "image bandwidth one origin server can serve before a CDN is needed, Gbit/s")
    object_copies: float = _a(3, "copies the object store keeps (SeaweedFS replication; S3 hides it)")
    object_node_bytes: float = _a(16e12, "disk of one object-store volume server")
    broker_msgs_per_node: float = _a(5_000, "acknowledged messages/s one broker node takes (NATS JetStream, Python client)", f"published: {ENGINES}: JetStream ack publish ~5k msg/s")
    lb_nodes_min: float = _a(2, "load balancers in front from stage 1k on (an active/standby pair)")

    def __post_init__(self) -> None:
        for item in fields(self):
            name, value = item.name, getattr(self, item.name)
            if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
                raise PlanError(f"plan assumption {name}={value!r}: must be a number")
            if name in HIT_RATIOS and not 0 <= value <= 1:
                raise PlanError(f"plan assumption {name}={value!r}: must be between 0 and 1")
            if name in FRACTIONS and not 0 < value <= 1:
                raise PlanError(f"plan assumption {name}={value!r}: must be more than 0 and at most 1")
            if value < 0 or (value == 0 and name not in ZERO_OK | HIT_RATIOS):
                raise PlanError(f"plan assumption {name}={value!r}: must be {'>= 0' if name in ZERO_OK else '> 0'}")

    @classmethod
    def with_overrides(cls, values: Mapping[str, Any], base: Assumptions | None = None, where: str = "") -> Assumptions:
        """A copy of ``base`` (defaults if None) with ``values``; an unknown name is a PlanError."""
        known = {f.name for f in fields(cls)}
        for name in values:
            if name not in known:
                near = [k for k in known if name.split("_")[0] in k][:3]
                hint = f" (did you mean {', '.join(near)}?)" if near else ""
                raise PlanError(f"unknown plan assumption {name!r}{' in ' + where if where else ''}{hint}")
        return cls(**{**asdict(base or cls()), **values})

    def describe(self) -> dict[str, dict[str, Any]]:
        return {f.name: {"value": getattr(self, f.name), "doc": f.metadata["doc"], "source": f.metadata["source"]} for f in fields(self)}


ZERO_OK = {"retention_days", "tasks_per_write", "replicas_min", "images_per_read", "derived_bytes_per_photo", "lb_nodes_min"}
HIT_RATIOS = {"cache_hit_ratio", "cdn_hit_ratio"}
FRACTIONS = {"monthly_active_ratio", "cache_fill_ratio", "db_target_utilisation", "target_utilisation", "worker_target_utilisation", "latency_budget_web"}


def daily_per_dau(workload: Any) -> dict[str, float]:
    """Requests a daily active user makes per day, by class. Writes are 1/(1 + reads_per_write) of
    requests; uploads count as writes (the same split as ``summit bench``'s mix), and are never
    fewer than the user model says: a write share too small for the uploads grows to hold them."""
    requests = float(workload.sessions_per_day) * float(workload.requests_per_session)
    uploads = float(workload.uploads_per_dau)
    requests = max(requests, uploads)
    writes = max(requests / (1 + float(workload.reads_per_write)), uploads)
    return {"requests": requests, "reads": requests - writes, "writes": writes - uploads, "uploads": uploads}


def mean_demand(demands: Mapping[str, float], shares: Mapping[str, float]) -> float:
    """Mix-weighted CPU ms per request of one tier from its per-class demands."""
    total = sum(shares.values()) or 1.0
    return sum(shares[k] * demands[k] for k in ("reads", "writes", "uploads") if k in shares) / total


def compute(users: float, workload: Any, assumptions: Assumptions, demands: Mapping[str, Mapping[str, float]], *, queueing: bool = True) -> dict[str, Any]:
    """Resources for ``users`` (the tiers' figures; stages and bottlenecks are added by plan.py).

    ``demands[tier][kind]`` are CPU milliseconds: web reads/writes/uploads, worker upload/task,
    db read (a read request that misses the cache)/write, and one request or op for lb, waf, edge,
    cache."""
    a, d = assumptions, demands
    stage = talk_stage(users)
    per_dau = daily_per_dau(workload)
    dau = users * float(workload.daily_active_ratio)
    per_day = {k: v * dau for k, v in per_dau.items()}
    peak = float(workload.peak_to_average)
    rate = {k: per_day[k] / DAY_S * peak for k in ("reads", "writes", "uploads")}
    average = {k: per_day[k] / DAY_S for k in ("reads", "writes", "uploads")}
    total_rps = sum(rate.values())
    all_writes = rate["writes"] + rate["uploads"]

    # web: CPU per class at peak, utilisation law, then the M/M/c p99 check
    # per-upload demands scale with the photo's size from the size they were measured or published at
    photo = float(workload.photo_bytes)
    upload_ms = d["web"]["upload"] * photo / d["web"].get("upload_photo_bytes", photo)
    thumb_ms = d["worker"]["upload"] * photo / d["worker"].get("upload_photo_bytes", photo)
    web_ms = {"reads": d["web"]["read"], "writes": d["web"]["write"], "uploads": upload_ms}
    web_busy = sum(rate[k] * web_ms[k] for k in rate) / 1000
    web_busy_avg = sum(average[k] * web_ms[k] for k in average) / 1000
    web_service = mean_demand(web_ms, rate) if total_rps else web_ms["reads"]
    budget = float(workload.p99_target_ms) * a.latency_budget_web
    web_cores = servers_needed(total_rps, web_service, a.target_utilisation, budget if queueing else None)
    web_p99 = p99_ms(total_rps, web_service, web_cores) if queueing else None

    # edge of the request path: load balancer (all requests, images included) and WAF (dynamic)
    image_rps = rate["reads"] * a.images_per_read
    lb_busy = (total_rps + image_rps) * d["lb"]["request"] / 1000
    waf_busy = total_rps * d["waf"]["request"] / 1000

    # worker: thumbnails per upload plus background tasks per write
    tasks = all_writes * a.tasks_per_write
    worker_busy = (rate["uploads"] * thumb_ms + tasks * d["worker"]["task"]) / 1000
    queue_msgs = rate["uploads"] + tasks

    # cache: hot working set and operations
    uploads_day = per_day["uploads"]
    cache_set = dau * a.cache_bytes_per_dau + uploads_day * a.cache_hot_days * a.cache_bytes_per_photo
    cache_memory = cache_set / a.cache_fill_ratio
    cache_ops = rate["reads"] * a.cache_ops_per_read + all_writes * a.cache_ops_per_write
    cache_busy = cache_ops * d["cache"]["op"] / 1000  # Redis runs commands on one core per node
    cache_nodes = max(1, math.ceil(cache_memory / a.cache_node_bytes - 1e-9), math.ceil(cache_busy / a.target_utilisation - 1e-9))

    # database: CPU of reads that miss the cache and of writes; data held; shards and replicas
    db_reads = rate["reads"] * (1 - a.cache_hit_ratio)
    read_busy = db_reads * d["db"]["read"] / 1000
    read_busy_uncached = rate["reads"] * d["db"]["read"] / 1000
    write_busy = all_writes * d["db"]["write"] / 1000
    node_cap = a.db_cores_per_node * a.db_target_utilisation
    kept = a.history_days if not a.retention_days else min(a.history_days, a.retention_days)
    data = users * a.db_bytes_per_user + (per_day["uploads"] * a.db_bytes_per_photo + per_day["writes"] * a.db_bytes_per_write) * kept
    shards = max(1, math.ceil(data / a.max_shard_bytes - 1e-9), math.ceil(write_busy / node_cap - 1e-9))
    read_s, write_s = read_busy / shards, write_busy / shards
    load_replicas = 0 if read_s + write_s <= node_cap else math.ceil(read_s / node_cap - 1e-9)
    replicas = max(load_replicas, int(a.replicas_min) if stage_index(stage) >= stage_index("10k") else 0)

    # objects: originals + thumbnails; CDN and egress
    per_photo = float(workload.photo_bytes) + a.derived_bytes_per_photo
    growth_day = uploads_day * per_photo
    stored = growth_day * kept
    egress = image_rps * a.served_image_bytes
    origin = egress * (1 - a.cdn_hit_ratio)
    edge_busy = image_rps * a.cdn_hit_ratio * d["edge"]["request"] / 1000
    edge_nodes = max(1, math.ceil(edge_busy / (a.cores_per_node * a.target_utilisation) - 1e-9), math.ceil(egress * 8 / 1e9 / (a.edge_node_gbps * a.target_utilisation) - 1e-9))

    def pool(busy: float, util: float) -> dict[str, Any]:
        cores = max(1, math.ceil(busy / util - 1e-9))
        return {"busy_cores": busy, "cores": cores, "nodes": math.ceil(cores / a.cores_per_node)}

    lb = pool(lb_busy, a.target_utilisation)
    lb["nodes"] = max(lb["nodes"], int(a.lb_nodes_min)) if stage_index(stage) >= stage_index("1k") else 0
    worker = pool(worker_busy, a.worker_target_utilisation)
    return {
        "users": users,
        "talk_stage": stage,
        "people": {"users": users, "daily_active": dau, "monthly_active": users * max(a.monthly_active_ratio, float(workload.daily_active_ratio))},
        "per_day": per_day,
        "peak_rps": {"total": total_rps, **rate, "images": image_rps},
        "average_rps": {"total": sum(average.values()), **average},
        "web": {
            "processes": web_cores, "cores": web_cores, "nodes": math.ceil(web_cores / a.cores_per_node),
            "busy_cores": web_busy, "busy_cores_average": web_busy_avg, "cpu_ms_per_request": web_service,
            "predicted_p99_ms": web_p99, "p99_budget_ms": budget, "upload_cpu_ms": upload_ms,
        },
        "lb": lb,
        "waf": pool(waf_busy, a.target_utilisation),
        "worker": {**worker, "processes": worker["cores"], "thumbnail_cpu_ms": thumb_ms},
        "queue": {"messages_per_s": queue_msgs, "thumbnail_jobs_per_s": rate["uploads"], "tasks_per_s": tasks,
                  "brokers": max(1, math.ceil(queue_msgs / (a.broker_msgs_per_node * a.target_utilisation) - 1e-9))},
        "cache": {"memory_bytes": cache_memory, "working_set_bytes": cache_set, "ops_per_s": cache_ops, "busy_cores": cache_busy, "nodes": cache_nodes},
        "db": {
            "read_qps": db_reads, "write_tps": all_writes, "read_busy_cores": read_busy, "read_busy_cores_uncached": read_busy_uncached,
            "write_busy_cores": write_busy, "node_capacity_cores": node_cap, "data_bytes": data, "shards": shards,
            "primaries": shards, "replicas_per_shard": replicas, "replicas": replicas * shards, "load_replicas_per_shard": load_replicas,
        },
        "objects": {"stored_bytes": stored, "growth_bytes_per_day": growth_day, "growth_bytes_per_year": growth_day * 365,
                    "bytes_per_photo": per_photo, "raw_bytes": stored * a.object_copies,
                    "volume_servers": max(1, math.ceil(stored * a.object_copies / a.object_node_bytes - 1e-9))},
        "cdn": {"image_rps": image_rps, "egress_bytes_per_s": egress, "hit_ratio": a.cdn_hit_ratio, "offload_bytes_per_s": egress - origin,
                "origin_bytes_per_s": origin, "origin_rps": image_rps * (1 - a.cdn_hit_ratio), "edge_nodes": edge_nodes,
                "dynamic_egress_bytes_per_s": total_rps * a.response_bytes},
    }
