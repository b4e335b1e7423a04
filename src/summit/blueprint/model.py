"""Blueprint model and loading.

Precedence, lowest first: the stage preset (``presets.toml``), the blueprint file
(``summit.toml``), environment variables (``SUMMIT_<SECTION>__<KEY>``), then explicit overrides
(command-line options). Unknown keys are errors that name the key, so a typo never passes silently.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import tomllib
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

ENV_PREFIX = "SUMMIT_"
DEFAULT_FILE = "summit.toml"
ENDPOINTS_FILE = "run/endpoints.json"  # under the data directory: written by the control plane
_PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]*)\}")


class BlueprintError(ValueError):
    """The blueprint is invalid; the message names the file, the key and what to fix."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class Ports(_Section):
    sql: str = Field(description="URL of the relational database (sql port)")
    objects: str = Field(description="URL of the object store (objects port)")
    cache: str = Field(description="URL of the cache (cache port)")
    queue: str = Field(description="URL of the work queue (queue port)")
    mail: str = Field(description="URL of the mailer (mail port)")
    search: str = Field(description="URL of the full-text search index (search port)")
    cdn: str = Field("none://", description="URL of the CDN to purge (cdn port); none:// where no CDN runs")


class Server(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)  # the public entry: the app itself, or the load balancer
    workers: int = Field(1, ge=1, le=64)  # worker processes of one app server (granian)
    # app servers, each a process of the stage on a port of its own, behind the load balancer
    # (engines.haproxy) when there is more than one
    processes: int = Field(1, ge=1, le=64)
    # addresses (comma-separated) whose X-Forwarded-For the app believes: the load balancer's, nobody else's
    trusted_proxies: str = ""
    # once the app has started, move what it built into the garbage collector's permanent
    # generation and collect the youngest generation less often (see summit/web/serving.py)
    gc_tuning: bool = True

    @property
    def serving_processes(self) -> int:
        """How many processes serve the app (a per-process cache would differ between them)."""
        return self.workers * self.processes


class Auth(_Section):
    access_token_ttl_seconds: int = Field(300, ge=30, le=24 * 3600)
    id_token_ttl_seconds: int = Field(3600, ge=60, le=24 * 3600)
    refresh_token_ttl_seconds: int = Field(30 * 24 * 3600, ge=300, le=365 * 24 * 3600)
    # the tokens' "iss" and the OpenID discovery base URL; default: http://<server.host>:<server.port>
    issuer: str | None = None
    cookie_secure: bool = False  # Secure cookies and HSTS; true by default when engines.haproxy.tls is on
    # argon2id cost (RFC 9106 "second recommended" profile by default); hashes made with other
    # parameters are upgraded at the next successful log-in
    argon2_time_cost: int = Field(3, ge=1, le=20)
    argon2_memory_kib: int = Field(65536, ge=1024, le=4 * 1024 * 1024)
    # lock-outs: failures in a row before back-off starts (2^(n - threshold) s, at most 15 min)
    lockout_account_threshold: int = Field(5, ge=1, le=100)
    lockout_address_threshold: int = Field(20, ge=1, le=10_000)


class Uploads(_Section):
    max_photo_bytes: int = Field(20 * 1024 * 1024, ge=1024)
    max_pixels: int = Field(50_000_000, ge=10_000)


class GuardBlocking(_Section):
    """Automatic blocking (``[guard.blocking]``): each guard run blocks the source of a finding of one
    of ``types`` with at least ``min_severity``, through the Shield layer (HAProxy's blocklist at the
    edge, the app's own where there is no edge) until ``seconds`` after the finding was last seen.
    Off by default; never the sources of ``shield.exempt``, ``server.trusted_proxies`` or ``never``."""

    enabled: bool = False
    # finding types (globs; `summit guard types` lists them) whose source is blocked; only findings
    # naming a source can block one (a glob that matches no type stops the guard's runs, naming it)
    types: list[str] = ["CredentialAccess:User/CredentialStuffing", "Recon:Network/Scanning"]
    min_severity: float = Field(1.0, ge=1.0, le=8.9, description="findings below this severity block nothing")
    seconds: int = Field(900, ge=1, le=30 * 86400, description="how long a block lasts after the finding was last seen")
    # sources never blocked (besides shield.exempt and server.trusted_proxies): the host's own checks and operator
    never: list[str] = ["127.0.0.1/32", "::1/128"]

    @field_validator("never", mode="before")
    @classmethod
    def _never(cls, value: object) -> list[str]:
        return _networks(value)

    @field_validator("types", mode="before")
    @classmethod
    def _types(cls, value: object) -> object:  # also comma-separated, from the environment
        return [t.strip() for t in value.split(",") if t.strip()] if isinstance(value, str) else value


class Guard(_Section):
    """Threat detection over the audit and access logs (``summit guard``, like GuardDuty): each
    rule's threshold and window. The defaults stay quiet under normal use (docs/guard.md)."""

    # UnauthorizedAccess:User/BruteForce: this many failed sign-ins (or MFA codes) on one account,
    # from any sources, within the window (the pool locks the account after 5 in a row)
    brute_force_failures: int = Field(10, ge=2, le=100_000)
    brute_force_window_seconds: int = Field(900, ge=1, le=7 * 86400)
    # CredentialAccess:User/CredentialStuffing: one source fails to sign in to this many different
    # accounts within the window (a login that names no account counts as one more each time)
    stuffing_accounts: int = Field(10, ge=2, le=100_000)
    stuffing_window_seconds: int = Field(900, ge=1, le=7 * 86400)
    # Recon:Network/Scanning: this many 404s (or WAF blocks) answered to one source within the window
    scan_requests: int = Field(30, ge=2, le=1_000_000)
    scan_window_seconds: int = Field(60, ge=1, le=86400)
    # PrivilegeEscalation:User/UnusualAdminActivity: a principal's first admin action once the guard
    # has this much history to know the usual admins by, or this many admin actions within the window
    admin_learning_seconds: int = Field(7 * 86400, ge=0, le=365 * 86400)
    admin_burst_actions: int = Field(30, ge=2, le=100_000)
    admin_burst_window_seconds: int = Field(600, ge=1, le=7 * 86400)
    # UnauthorizedAccess:User/NewSourceWithoutMfa: addresses in one network count as one source
    new_source_ipv4_prefix: int = Field(32, ge=8, le=32)
    new_source_ipv6_prefix: int = Field(64, ge=16, le=128)
    evidence_limit: int = Field(10, ge=1, le=1000, description="audit events or log lines kept per finding")
    # access logs to read, globs under the data directory; [] reads the stage's front door: HAProxy's
    # log behind it (logs/haproxy.log), else the app's JSON access lines (logs/summit-up.log, app.log, web-*.log)
    access_logs: list[str] = []
    blocking: GuardBlocking = Field(default_factory=GuardBlocking)


def _networks(value: object) -> list[str]:
    """Sources as CIDRs (``10.0.0.0/8``; a bare address is its /32 or /128), from a list or a
    comma-separated string (an environment variable); ValueError naming the bad one."""
    import ipaddress

    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise ValueError("must be a list of addresses or networks (CIDR), e.g. ['127.0.0.1', '10.0.0.0/8']")
    networks = []
    for item in items:
        text = str(item).strip()
        if not text:
            continue
        try:
            networks.append(str(ipaddress.ip_network(text, strict=False)))
        except ValueError:
            raise ValueError(f"{text!r} is not an address or a network (CIDR), e.g. 127.0.0.1 or 10.0.0.0/8") from None
    return list(dict.fromkeys(networks))


def _rate(value: str) -> str:
    """A rate in the ``limits`` library's notation ("10/minute", "100 per hour"), or ValueError."""
    from limits import parse_many

    try:
        parsed = parse_many(value)
    except ValueError:
        parsed = []
    if len(parsed) != 1:
        raise ValueError(f"{value!r} is not a rate: write N/second, N/minute, N/hour or N/day (e.g. '10/minute', '100 per hour')")
    return value


class ShieldEdge(_Section):
    """Rate limits at the front door (HAProxy, stage 1k and later), per source address (an IPv6
    client by its /64): HAProxy counts in a stick table and answers 429 above a limit, or drops the
    source's connections above a flood threshold. The defaults sit far above one person's use, and
    above the fault tests' loads from one loopback address (at most 8,000 requests within seconds)."""

    enabled: bool = True
    window_seconds: int = Field(10, ge=1, le=3600, description="the window request and connection rates are counted over")
    request_rate: int = Field(10_000, ge=1, le=10_000_000, description="requests per window from one source; more get 429")
    connections: int = Field(200, ge=1, le=1_000_000, description="concurrent connections of one source; above, its requests get 429")
    connection_rate: int = Field(2000, ge=1, le=10_000_000, description="new connections per window from one source; more get 429")
    # a gross flood: new connections are refused and requests on open ones dropped without an answer
    drop_request_rate: int = Field(50_000, ge=1, le=100_000_000, description="requests per window above which the source is dropped")
    drop_connection_rate: int = Field(10000, ge=1, le=100_000_000, description="new connections per window above which they are refused")
    table_size: int = Field(100_000, ge=100, le=100_000_000, description="sources the stick table keeps (least recent go first)")

    @model_validator(mode="after")
    def _drops_above_limits(self) -> ShieldEdge:
        if self.drop_request_rate <= self.request_rate:
            raise ValueError(f"drop_request_rate ({self.drop_request_rate}) must be above request_rate ({self.request_rate}): "
                             "a source is answered 429 first, dropped only when it floods")
        if self.drop_connection_rate <= self.connection_rate:
            raise ValueError(f"drop_connection_rate ({self.drop_connection_rate}) must be above connection_rate ({self.connection_rate})")
        return self


class ShieldApp(_Section):
    """Rate limits in the app, per user or address and route (the app declares them, with rates
    these may override by name), counted in Redis when the cache port is Redis, else in process."""

    enabled: bool = True
    # the rates of the app's declared limits, by name (docs/shield.md lists photos'): name = "N/minute"; an unknown name is an error
    limits: dict[str, str] = {}
    timeout_ms: int = Field(200, ge=1, le=60_000, description="a count Redis does not answer within this is skipped (fail open)")
    log_interval_seconds: int = Field(60, ge=1, le=86_400, description="while Redis is out, one log line per interval")

    @field_validator("limits")
    @classmethod
    def _rates(cls, value: dict[str, str]) -> dict[str, str]:
        return {name: _rate(rate) for name, rate in value.items()}


class Shield(_Section):
    """Rate limits and flood absorption (like AWS Shield and WAF rate rules): at the edge and in the app."""

    # sources never limited, at the edge or in the app: addresses or networks (CIDR); also a
    # comma-separated string (SUMMIT_SHIELD__EXEMPT=127.0.0.1,10.0.0.0/8)
    exempt: list[str] = []
    edge: ShieldEdge = ShieldEdge()
    app: ShieldApp = ShieldApp()

    @field_validator("exempt", mode="before")
    @classmethod
    def _exempt(cls, value: object) -> list[str]:
        return _networks(value)


class PostgresEngine(_Section):
    """PostgreSQL servers the control plane runs: a primary and ``replicas`` streaming replicas."""

    enabled: bool = False
    replicas: int = Field(0, ge=0, le=8, description="streaming replicas of the primary")
    # commits wait until one replica has them (ANY 1); a commit that waits longer than
    # commit_timeout_ms is reported as unknown, never left hanging
    synchronous: bool = False
    max_connections: int = Field(100, ge=10, le=10_000)
    shared_buffers_mb: int = Field(128, ge=16, le=1024 * 1024)


class PgBouncerEngine(_Section):
    """PgBouncer in transaction pooling in front of each PostgreSQL server."""

    enabled: bool = False
    pool_size: int = Field(20, ge=1, le=1000, description="server connections per database and user")
    max_client_conn: int = Field(1000, ge=10, le=100_000)


class HAProxyEngine(_Section):
    """HAProxy: the front door and application load balancer (L7) in front of the app servers."""

    enabled: bool = False
    check_interval_ms: int = Field(500, ge=100, le=60_000, description="active health checks of each server")
    # the internal network load balancer (L4): the app reaches PgBouncer and Redis through HAProxy
    # in TCP mode (one hop more, one place to move or drain them)
    internal: bool = False
    # TLS at the front door (certificates.md): HTTPS on https_port with the stage's certificate
    # ([certs]), server.port answers 301 to it (but /healthz), HSTS; auth.cookie_secure follows
    tls: bool = False
    https_port: int = Field(8443, ge=1, le=65535, description="where HTTPS listens when tls is on")


class VarnishEngine(_Section):
    """Varnish as the CDN: an edge tier, then a regional tier, in front of the app servers."""

    enabled: bool = False
    size_mb: int = Field(128, ge=16, le=1024 * 1024, description="memory per tier for cached objects")


class WafEngine(_Section):
    """The WAF tier (AWS WAF): nginx with ModSecurity v3 and the OWASP Core Rule Set between HAProxy
    and the app servers, for the dynamic path only (the CDN's paths never pass it; see waf.md)."""

    enabled: bool = False
    processes: int = Field(1, ge=1, le=16, description="nginx + ModSecurity processes, each on a loopback port of its own")
    # the CRS's paranoia level: 1 blocks the classic attacks with few false positives; each level
    # above adds rules (and false positives the exclusions do not cover)
    paranoia_level: int = Field(1, ge=1, le=4, description="OWASP CRS paranoia level (1 to 4)")
    # the anomaly score at which a request is blocked: a critical rule scores 5, an error 4, a warning 3
    inbound_anomaly_threshold: int = Field(5, ge=1, le=1000, description="CRS inbound anomaly score that blocks a request")


class RedisEngine(_Section):
    """Redis as the shared cache (the cache port's ``{redis}``): nothing persisted, LRU-bounded."""

    enabled: bool = False
    maxmemory_mb: int = Field(256, ge=8, le=1024 * 1024, description="memory for cached entries; the least recently used go first")


class SeaweedFSEngine(_Section):
    """SeaweedFS as the S3 object store (the objects port's ``{s3}``): one all-in-one ``weed server``."""

    enabled: bool = False
    volume_size_limit_mb: int = Field(64, ge=8, le=30_000, description="size at which a volume stops taking writes")


class Engines(_Section):
    """The engine processes a stage runs beside the app (``summit up`` starts them)."""

    postgres: PostgresEngine = PostgresEngine()
    pgbouncer: PgBouncerEngine = PgBouncerEngine()
    haproxy: HAProxyEngine = HAProxyEngine()
    varnish: VarnishEngine = VarnishEngine()
    redis: RedisEngine = RedisEngine()
    seaweedfs: SeaweedFSEngine = SeaweedFSEngine()
    waf: WafEngine = WafEngine()

    def any(self) -> bool:
        return self.postgres.enabled or self.haproxy.enabled or self.redis.enabled or self.seaweedfs.enabled


_DNS_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def domain_name(value: str) -> str:
    """``value`` as certificates carry a DNS name (lower case, no final dot), or ValueError saying what to fix."""
    import ipaddress

    text = value.strip().lower().removesuffix(".")
    hint = "give a DNS name such as localhost or photos.example"
    if not text:
        raise ValueError(f"is empty: {hint}")
    if any(mark in text for mark in ("/", ":", "@", " ")):
        raise ValueError(f"must be a bare DNS name, without a scheme, port, path or spaces: {hint}")
    if "*" in text:
        raise ValueError(f"cannot be a wildcard: {hint} (the CA may also vouch for names under it)")
    try:
        ipaddress.ip_address(text)
    except ValueError:
        pass
    else:
        raise ValueError(f"is an address, not a DNS name: {hint} (127.0.0.1 and ::1 are always in the certificate)")
    if len(text) > 253:
        raise ValueError(f"is longer than 253 characters: {hint}")
    bad = [label for label in text.split(".") if not _DNS_LABEL.match(label)]
    if bad:
        raise ValueError(f"has an invalid label {bad[0]!r} (1 to 63 letters, digits or inner hyphens between dots; "
                         f"no underscores): {hint}")
    if text.rsplit(".", 1)[-1].isdigit():
        raise ValueError(f"ends in a numeric label, as no DNS name does: {hint}")
    return text


class Certs(_Section):
    """The stage's certificate authority and the front door's certificate (``summit certs``)."""

    domain: str = Field("localhost", description="the DNS name the front door's certificate is for")
    validity_days: int = Field(90, ge=1, le=397, description="life of a new leaf certificate; renewed with a third left")
    check_interval_seconds: int = Field(3600, ge=1, le=86_400, description="how often the control plane checks it")

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        return domain_name(value)


class Worker(_Section):
    # run queue consumers inside the web process (stage 1); later stages run a worker tier
    in_process: bool = True
    concurrency: int = Field(2, ge=1, le=64)


def _is_module_path(text: str) -> bool:
    return all(part.isidentifier() for part in text.split("."))


def _import(module: str, key: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise BlueprintError(f"{key}: cannot import {module!r} ({error}); check the name, or install the app") from None


def _load_function(path: str, key: str) -> Callable[..., Any]:
    module, _, name = path.partition(":")
    found = getattr(_import(module, key), name, None)
    if not callable(found):
        raise BlueprintError(f"{key}: {module!r} has no function {name!r}")
    return found


class App(_Section):
    """The application the platform serves, named by import path: the platform finds the app's
    factory and migrations through these names and never imports the app's code by itself."""

    factory: str = Field(description="the app's ASGI factory, 'package.module:function'")
    migrations: str = Field(description="the package of the app's Alembic history; '' if it keeps no tables")
    # `summit search reindex` feeds the search port from it: an async generator function
    # (platform) -> documents (summit.ports.Document, or (kind, id, fields, rank) tuples)
    search_documents: str = Field("", description="the app's search documents, 'package.module:function'; '' if it has none")

    @field_validator("factory", "search_documents")
    @classmethod
    def _function_path(cls, value: str, info: ValidationInfo) -> str:
        if info.field_name == "search_documents" and not value:
            return value
        module, colon, name = value.partition(":")
        if not (colon and _is_module_path(module) and name.isidentifier()):
            example = "photos.app:create_app" if info.field_name == "factory" else "photos.search:documents"
            raise ValueError(f"must be 'package.module:function', e.g. '{example}'")
        return value

    @field_validator("migrations")
    @classmethod
    def _migrations_path(cls, value: str) -> str:
        if value and not _is_module_path(value):
            raise ValueError("must be a package name such as 'photos.migrations' (or '' for an app without tables)")
        return value

    def load_factory(self) -> Callable[..., Any]:
        """Import the factory (what the server will call), or raise BlueprintError naming app.factory."""
        return _load_function(self.factory, "app.factory")

    def load_search_documents(self) -> Callable[..., Any] | None:
        """Import the app's search documents generator (None if it names none), or BlueprintError."""
        return _load_function(self.search_documents, "app.search_documents") if self.search_documents else None

    def find_factory(self) -> None:
        """Check that the factory's module exists without importing it (a supervisor that only
        starts the app's processes need not hold the app in memory), or raise BlueprintError."""
        import importlib.util

        module = self.factory.partition(":")[0]
        try:
            found = importlib.util.find_spec(module)
        except (ImportError, ValueError) as error:
            raise BlueprintError(f"app.factory: cannot find {module!r} ({error}); check the name, or install the app") from None
        if found is None:
            raise BlueprintError(f"app.factory: cannot find {module!r}; check the name, or install the app")

    def migrations_package(self) -> ModuleType | None:
        """The package of the app's Alembic history (None if the app has none), or BlueprintError."""
        return _import(self.migrations, "app.migrations") if self.migrations else None


class Workload(_Section):
    """The user model that `summit bench` drives and `summit plan` sizes for."""

    daily_active_ratio: float = Field(0.5, gt=0, le=1, description="daily actives / users")
    sessions_per_day: float = Field(8, gt=0)
    requests_per_session: float = Field(15, gt=0)
    peak_to_average: float = Field(2.5, ge=1, description="peak hour rate / average rate")
    reads_per_write: float = Field(100, gt=0)
    uploads_per_dau: float = Field(0.3, ge=0, description="photo uploads per daily active user per day")
    photo_bytes: int = Field(2_000_000, gt=0, description="average uploaded photo size")
    p99_target_ms: float = Field(250, gt=0, description="a stage holds a rate if p99 stays under this")
    max_error_ratio: float = Field(0.001, ge=0, lt=1, description="... and errors stay under this")


class Blueprint(_Section):
    stage: str = "1"
    description: str = ""
    data_dir: Path = Path(".summit")
    ports: Ports
    app: App
    server: Server = Server()
    auth: Auth = Auth()
    guard: Guard = Guard()
    shield: Shield = Shield()
    uploads: Uploads = Uploads()
    worker: Worker = Worker()
    workload: Workload = Workload()
    engines: Engines = Engines()
    certs: Certs = Certs()
    # the capacity planner's assumptions (summit plan), NAME = number; the planner validates names
    plan: dict[str, float] = {}

    @field_validator("stage")
    @classmethod
    def _known_stage(cls, value: str) -> str:
        if value not in stage_names():
            raise ValueError(f"unknown stage {value!r}; the stages are: {', '.join(stage_names())}")
        return value

    @property
    def tls(self) -> bool:
        """Does the front door speak HTTPS (``engines.haproxy.tls``)?"""
        return self.engines.haproxy.enabled and self.engines.haproxy.tls

    @property
    def public_url(self) -> str:
        """Where clients reach the stage: ``https://HOST:HTTPS_PORT`` behind TLS, else ``http://HOST:PORT``."""
        host = self.server.host if ":" not in self.server.host else f"[{self.server.host}]"
        if self.tls:
            return f"https://{host}:{self.engines.haproxy.https_port}"
        return f"http://{host}:{self.server.port}"

    @property
    def issuer(self) -> str:
        return (self.auth.issuer or self.public_url).rstrip("/")

    @model_validator(mode="after")
    def _engines_fit(self) -> Blueprint:
        if self.engines.pgbouncer.enabled and not self.engines.postgres.enabled:
            raise ValueError("engines.pgbouncer needs engines.postgres (PgBouncer pools connections to it)")
        if self.engines.varnish.enabled and not self.engines.haproxy.enabled:
            raise ValueError("engines.varnish needs engines.haproxy (the front door sends photo paths to it)")
        if self.server.processes > 1 and not self.engines.haproxy.enabled:
            raise ValueError("server.processes > 1 needs engines.haproxy (a load balancer in front of them)")
        if self.engines.waf.enabled and not self.engines.haproxy.enabled:
            raise ValueError("engines.waf needs engines.haproxy (the WAF tier sits between the front door and the app servers)")
        haproxy = self.engines.haproxy
        if haproxy.tls and not haproxy.enabled:
            raise ValueError("engines.haproxy.tls needs engines.haproxy.enabled (TLS ends at the front door: stage 1k and later)")
        if haproxy.tls and haproxy.https_port == self.server.port:
            raise ValueError(f"engines.haproxy.https_port and server.port are both {self.server.port}: HTTPS needs a port of "
                             "its own (server.port answers HTTP with a redirect to it)")
        if self.tls and "cookie_secure" not in self.auth.model_fields_set:  # behind TLS, cookies go over HTTPS only
            self.auth = self.auth.model_copy(update={"cookie_secure": True})
        return self

    def port_url(self, port: str) -> str:
        """The port's URL: ``{data_dir}`` filled in, and ``{engine}`` placeholders (``{postgres}``)
        replaced by the URL that the running stage's control plane published for that engine."""
        url = getattr(self.ports, port).replace("{data_dir}", str(self.data_dir))
        if "{" not in url:
            return url
        endpoints = self.endpoints()

        def fill(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in endpoints:
                if not endpoints:
                    raise BlueprintError(
                        f"ports.{port} ({url}) uses {{{name}}}, the address of an engine of this stage, and no stage "
                        f"is running in {self.data_dir}: start it with `summit up --stage {self.stage}` (or give a full URL)"
                    )
                raise BlueprintError(f"ports.{port} ({url}): this stage runs no engine {{{name}}}; it runs: {', '.join(sorted(endpoints))}")
            return endpoints[name]

        url = _PLACEHOLDER.sub(fill, url)
        head, sep, query = url.partition("?")
        return head + sep + query.replace("?", "&")  # "{postgres}?max_receives=5": options join its own

    def endpoints(self) -> dict[str, str]:
        """What the running stage's control plane published: engine name -> URL ({} if none runs)."""
        try:
            return json.loads((self.data_dir / ENDPOINTS_FILE).read_text())
        except (FileNotFoundError, ValueError):
            return {}


def _presets() -> dict[str, Any]:
    text = resources.files("summit.blueprint").joinpath("presets.toml").read_text()
    return tomllib.loads(text)["stages"]


def stage_names() -> list[str]:
    return list(_presets())


def _preset(stage: str) -> dict[str, Any]:
    presets = _presets()
    if stage not in presets:
        raise BlueprintError(f"unknown stage {stage!r}; the stages are: {', '.join(presets)}")
    preset = dict(presets[stage])
    base = preset.pop("base", None)
    return _merge(_preset(base), preset) if base else preset


def _merge(low: dict[str, Any], high: dict[str, Any]) -> dict[str, Any]:
    out = dict(low)
    for key, value in high.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _from_env(environ: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """SUMMIT_STAGE=10k, SUMMIT_PORTS__SQL=postgresql://... -> (nested dict, dotted key -> variable)."""
    tree: dict[str, Any] = {}
    names: dict[str, str] = {}
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name == ENV_PREFIX + "CONFIG":
            continue
        path = name[len(ENV_PREFIX):].lower().split("__")
        names[".".join(path)] = name
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise BlueprintError(f"environment variable {name} conflicts with {ENV_PREFIX}{part.upper()}")
        if isinstance(node.get(path[-1]), dict):
            raise BlueprintError(f"environment variable {name} conflicts with {name}__... variables")
        node[path[-1]] = environ[name]
    return tree, names


def _describe(error: ValidationError, source: str, env_names: dict[str, str]) -> str:
    lines = [f"invalid blueprint ({source}):"]
    for item in error.errors():
        key = ".".join(str(p) for p in item["loc"]) or "(top level)"
        label = f"'{key}'" + (f" (environment variable {env_names[key]})" if key in env_names else "")
        if item["type"] == "extra_forbidden":
            lines.append(f"  unknown key {label}: remove it or check its spelling")
        elif item["type"] == "missing":
            lines.append(f"  missing key {label}")
        elif not item["loc"]:  # a rule across sections: the input is the whole blueprint, no help
            lines.append(f"  {item['msg'].removeprefix('Value error, ')}")
        else:
            lines.append(f"  {label}: {item['msg'].removeprefix('Value error, ')} (got {item.get('input')!r})")
    return "\n".join(lines)


def load_blueprint(
    path: str | Path | None = None,
    *,
    environ: dict[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> Blueprint:
    """Load the blueprint: preset < file < environment < overrides.

    ``path`` None means ``$SUMMIT_CONFIG`` or ``./summit.toml`` if it exists; defaults otherwise.
    """
    environ = dict(os.environ if environ is None else environ)
    explicit = path is not None or "SUMMIT_CONFIG" in environ
    file = Path(path or environ.get("SUMMIT_CONFIG") or DEFAULT_FILE)
    from_file: dict[str, Any] = {}
    if file.is_file():
        try:
            from_file = tomllib.loads(file.read_text())
        except tomllib.TOMLDecodeError as error:
            raise BlueprintError(f"{file}: not valid TOML: {error}") from error
    elif explicit:
        raise BlueprintError(f"blueprint file {file} does not exist")
    from_env, env_names = _from_env(environ)
    layers = [from_file, from_env, overrides or {}]
    stage = "1"
    for layer in layers:
        stage = str(layer.get("stage", stage))
    merged = _preset(stage)
    for layer in layers:
        merged = _merge(merged, layer)
    merged["stage"] = stage
    named = ((str(file), from_file), ("environment", layers[1]), ("command line or overrides", layers[2]))
    sources = ", ".join(s for s, used in named if used) or "defaults"
    try:
        return Blueprint.model_validate(merged)
    except ValidationError as error:
        raise BlueprintError(_describe(error, sources, env_names)) from None
