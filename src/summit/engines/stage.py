"""What a stage runs: the engines its blueprint asks for, their ports, and the URLs the app
reaches them by.

``plan(blueprint)`` allocates ports (kept in the data directory, so a restart reuses them) and
builds the engines in the order they start; ``publish(plan)`` writes the URLs the ports'
``{postgres}`` placeholders stand for (``run/endpoints.json``) and the app's password file, so
that the app, ``summit db`` and any other command on the same data directory reach the same
engines.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from summit.blueprint import Blueprint
from summit.blueprint.model import ENDPOINTS_FILE
from summit.engines.app import AppServer
from summit.engines.certs import for_blueprint as stage_certificates
from summit.engines.haproxy import HAProxy, Tls
from summit.engines.varnish import Varnish
from summit.engines.waf import Waf, WafSettings
from summit.engines.layout import HOST, Engine, Layout, write_private
from summit.engines.pgbouncer import PgBouncer, PoolSettings
from summit.engines.postgres import APP_DATABASE, APP_ROLE, READER_ROLE, PostgresServer, PostgresSettings
from summit.engines.redis import RedisServer, RedisSettings
from summit.engines.seaweedfs import PORTS as SEAWEEDFS_PORTS, SeaweedFS, SeaweedSettings, credentials_file
from summit.engines.shield import Shield as EdgeShield


@dataclass
class StagePlan:
    blueprint: Blueprint
    layout: Layout
    engines: list[Engine] = field(default_factory=list)  # in start order; the app last when served
    endpoints: dict[str, str] = field(default_factory=dict)

    def engine(self, name: str) -> Engine:
        for engine in self.engines:
            if engine.name == name:
                return engine
        raise KeyError(name)

    def of_kind(self, kind: str) -> list[Engine]:
        return [e for e in self.engines if e.kind == kind]


def plan(blueprint: Blueprint, *, with_app: bool = True) -> StagePlan:
    """The engines of ``blueprint``'s stage (and the app server, unless ``with_app`` is False)."""
    layout = Layout(blueprint.data_dir.resolve())
    result = StagePlan(blueprint, layout)
    pg = blueprint.engines.postgres
    if pg.enabled:
        _plan_postgres(blueprint, layout, result)
    if blueprint.engines.redis.enabled:
        _plan_redis(blueprint, layout, result)
    if blueprint.engines.seaweedfs.enabled:
        _plan_seaweedfs(blueprint, layout, result)
    if with_app:
        _plan_web(blueprint, layout, result)
    return result


def _plan_web(blueprint: Blueprint, layout: Layout, result: StagePlan) -> None:
    """The app server on the public port; or, behind HAProxy, ``server.processes`` of them."""
    needs = tuple(e.name for e in result.engines if e.kind in ("pgbouncer", "redis", "seaweedfs") or (e.kind == "postgres" and not blueprint.engines.pgbouncer.enabled))
    if not blueprint.engines.haproxy.enabled:
        result.engines.append(AppServer("app", blueprint, needs=needs))
        return
    names = [f"web-{n}" for n in range(1, blueprint.server.processes + 1)]
    ports = layout.ports([*names, "haproxy-stats"])
    internal = [e for e in result.engines if e.kind in ("pgbouncer", "redis")] if blueprint.engines.haproxy.internal else []
    if internal:  # the app servers reach those through HAProxy: it starts before them
        needs = (*(n for n in needs if n not in {e.name for e in internal}), "haproxy")
    webs = [AppServer(name, blueprint, port=ports[name], needs=needs) for name in names]
    edge = _plan_cdn(blueprint, layout, result, webs) if blueprint.engines.varnish.enabled else None  # media never pass the WAF
    wafs = _plan_waf(blueprint, layout, webs) if blueprint.engines.waf.enabled else []  # WAF tier: between HAProxy and webs
    tls = Tls(blueprint.engines.haproxy.https_port, stage_certificates(blueprint, layout),
              check_interval=blueprint.certs.check_interval_seconds) if blueprint.tls else None
    front = HAProxy("haproxy", blueprint.server.host, blueprint.server.port, ports["haproxy-stats"], wafs or webs, cdn=edge,
                    internal=_internal_ports(layout, result, internal), check_interval_ms=blueprint.engines.haproxy.check_interval_ms,
                    tls=tls,
                    shield=EdgeShield.for_blueprint(blueprint))  # rate limits per source: summit.engines.shield
    result.endpoints["public"] = blueprint.public_url  # where clients reach the stage: https:// behind TLS
    result.engines += [front, *webs, *wafs] if internal else [*webs, *wafs, front]


# ---- the WAF tier (engines.waf; summit.engines.waf) ---------------------------------------------

def _plan_waf(blueprint: Blueprint, layout: Layout, webs: list[Engine]) -> list[Engine]:
    """``engines.waf.processes`` nginx + ModSecurity processes, each proxying to every app server;
    HAProxy's ``web`` backend sends the dynamic path to them (the CDN's paths go around them)."""
    waf = blueprint.engines.waf
    names = [f"waf-{n}" for n in range(1, waf.processes + 1)]
    ports = layout.ports(names)
    hosts = ["127.0.0.1", "[::1]"]
    if _is_address(blueprint.server.host) and blueprint.server.host not in ("127.0.0.1", "::1"):
        hosts.append(f"[{blueprint.server.host}]" if ":" in blueprint.server.host else blueprint.server.host)
    settings = WafSettings(
        paranoia_level=waf.paranoia_level, inbound_anomaly_threshold=waf.inbound_anomaly_threshold,
        # above the app's own limits (a photo and its form; 1 MiB otherwise), so the app refuses with its message
        max_body_bytes=blueprint.uploads.max_photo_bytes + 2 * 1024 * 1024, max_body_no_files_bytes=2 * 1024 * 1024,
        hosts=tuple(hosts),
    )
    return [Waf(name, ports[name], webs, settings) for name in names]


def _is_address(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True

# ---- end of the WAF tier ------------------------------------------------------------------------


def _internal_ports(layout: Layout, result: StagePlan, engines: list[Engine]) -> dict[str, tuple[int, Engine]]:
    """A TCP listener of HAProxy for each internal service, and the app's URLs moved onto them."""
    ports = layout.ports([f"l4-{e.name}" for e in engines])
    listeners = {e.name: (ports[f"l4-{e.name}"], e) for e in engines}
    for name, (port, engine) in listeners.items():
        for key, url in result.endpoints.items():
            result.endpoints[key] = url.replace(f"@{engine.address}/", f"@127.0.0.1:{port}/").replace(f"={engine.address}", f"=127.0.0.1:{port}")
    return listeners


def _plan_cdn(blueprint: Blueprint, layout: Layout, result: StagePlan, webs: list[Engine]) -> Engine:
    """Varnish in two tiers: the regional one in front of the app servers, the edge in front of
    it; the front door sends photo and static paths to the edge. Returns the edge."""
    ports = layout.ports(["varnish-regional", "varnish-edge"])
    size = blueprint.engines.varnish.size_mb
    regional = Varnish("varnish-regional", ports["varnish-regional"], "regional", webs, size_mb=size)
    edge = Varnish("varnish-edge", ports["varnish-edge"], "edge", [regional], size_mb=size)
    result.engines += [regional, edge]
    result.endpoints["cdn"] = f"varnish://{regional.address},{edge.address}"  # purges: nearest the origin first
    return edge


def _plan_postgres(blueprint: Blueprint, layout: Layout, result: StagePlan) -> None:
    pg, bouncer = blueprint.engines.postgres, blueprint.engines.pgbouncer
    servers = ["postgres-primary", *(f"postgres-replica-{n}" for n in range(1, pg.replicas + 1))]
    poolers = [f"pgbouncer-{name.removeprefix('postgres-')}" for name in servers] if bouncer.enabled else []
    ports = layout.ports(servers + poolers)
    settings = PostgresSettings(
        max_connections=pg.max_connections, shared_buffers_mb=pg.shared_buffers_mb, synchronous=pg.synchronous,
        replica_names=tuple(name.replace("-", "_") for name in servers[1:]),
    )
    primary = PostgresServer(servers[0], ports[servers[0]], settings)
    members = [primary, *(PostgresServer(name, ports[name], settings, primary=primary) for name in servers[1:])]
    result.engines += members
    fronts: list[Engine] = list(members)
    if bouncer.enabled:
        pool = PoolSettings(pool_size=bouncer.pool_size, max_client_conn=bouncer.max_client_conn)
        fronts = [PgBouncer(name, ports[name], server, pool) for name, server in zip(poolers, members)]
        result.engines += fronts
    passfile = layout.secrets_dir / "pgpass"
    query = [f"passfile={passfile}", f"reader={READER_ROLE}"]
    if layout.app_login.exists():  # the app logs in as the rotated secret db/app (summit.ops.dblogin)
        query.append(f"login={layout.app_login}")
    query += [f"replica={front.address}" for front in fronts[1:]]
    if bouncer.enabled:
        query.append("prepared_statements=off")  # PgBouncer 1.18 in transaction pooling keeps none
    if pg.synchronous:
        query.append("synchronous=on")
    result.endpoints["postgres"] = f"postgresql://{APP_ROLE}@{fronts[0].address}/{APP_DATABASE}?" + "&".join(query)


def _plan_redis(blueprint: Blueprint, layout: Layout, result: StagePlan) -> None:
    """Redis as the shared cache; ``{redis}`` carries its password (endpoints.json is owner-only)."""
    port = layout.ports(["redis"])["redis"]
    server = RedisServer("redis", port, RedisSettings(maxmemory_mb=blueprint.engines.redis.maxmemory_mb))
    result.engines.append(server)
    result.endpoints["redis"] = server.url(layout)


def _plan_seaweedfs(blueprint: Blueprint, layout: Layout, result: StagePlan) -> None:
    """SeaweedFS as the S3 store; ``{s3}`` names a credentials file, never a key."""
    ports = layout.ports([f"seaweedfs-{part}" for part in SEAWEEDFS_PORTS])
    store = SeaweedFS("seaweedfs", {part: ports[f"seaweedfs-{part}"] for part in SEAWEEDFS_PORTS},
                      SeaweedSettings(volume_size_limit_mb=blueprint.engines.seaweedfs.volume_size_limit_mb))
    result.engines.append(store)
    result.endpoints["s3"] = store.url(layout)


def publish(stage: StagePlan) -> None:
    """Write the stage's endpoints and the app's password file (owner-only)."""
    layout = stage.layout
    if stage.blueprint.engines.postgres.enabled:
        passwords = PostgresServer.passwords(layout)
        write_private(layout.secrets_dir / "pgpass", "".join(f"{HOST}:*:*:{role}:{passwords[role]}\n" for role in (APP_ROLE, READER_ROLE)))
    if stage.blueprint.engines.seaweedfs.enabled:
        credentials_file(layout)
    path: Path = layout.data_dir / ENDPOINTS_FILE
    write_private(path, json.dumps(stage.endpoints, indent=2, sort_keys=True))  # owner-only: URLs may carry a password


def unpublish(layout: Layout) -> None:
    (layout.data_dir / ENDPOINTS_FILE).unlink(missing_ok=True)
