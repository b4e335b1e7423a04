"""Shield at the edge: HAProxy's rate limits per source address (like AWS Shield and WAF rate rules).

The front door counts, per source in a stick table of its ``public`` frontend, the requests and
the new connections over ``window_seconds`` and the connections open now. Above the blueprint's
limits (``[shield.edge]``) a request is answered ``429`` with ``Retry-After`` and the API's JSON
error shape, its message naming the limit (an HTML page to a browser's page load); above the flood thresholds new connections are
refused and requests on open ones are dropped without an answer (``silent-drop``). Sources in
``shield.exempt`` are not counted at all.

The key is ``src``, the address the connection came from: the front door is the edge, so no
header (``X-Forwarded-For``) can move a client's count onto someone else. IPv6 clients count by
their /64 (one host holds a whole /64), IPv4 clients by their address.

``rules(shield, blocklist)`` renders the frontend's block (between two marker comments, nothing else
of the configuration depends on it); ``table(socket)`` reads the counters back through the runtime
API (``show table public``) for ``summit shield``.

**Blocks.** With a ``blocklist`` (the map file of ``summit.security.blocks``: ``<source> <until>``)
a source it lists is answered ``403`` until that time, before any limit is counted against it
(exempt sources excepted); HAProxy compares the time with its own clock, so a block expires by
itself. ``push_blocks`` replaces the running HAProxy's copy of the map atomically through the
runtime API (``prepare map`` / ``add map @version`` / ``commit map``): every request after it sees
the new list, and no reload is needed.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TABLE = "public"  # the frontend that holds the stick table: HAProxy names a proxy's table after it
BEGIN = "    # ---- shield: rate limits per source address (summit.engines.shield, blueprint [shield]) ----\n"
END = "    # ---- shield: end ----\n"
EXPIRE_SECONDS = 60  # an idle source leaves the table after this (a source with open connections stays)
_ACL_WORDS = 32  # addresses per `acl` line (HAProxy takes at most 64 words a line)


@dataclass(frozen=True)
class Shield:
    """The edge's limits per source, from the blueprint's ``[shield]`` (``shield.edge`` and ``shield.exempt``)."""

    window_seconds: int = 10
    request_rate: int = 10_000  # requests per window: more get 429
    connections: int = 200  # open connections: above, requests get 429
    connection_rate: int = 2000  # new connections per window: more get 429
    drop_request_rate: int = 50_000  # requests per window: above, the source is dropped
    drop_connection_rate: int = 10000  # new connections per window: above, they are refused
    table_size: int = 100_000
    exempt: tuple[str, ...] = ()  # networks (CIDR) never counted

    @classmethod
    def for_blueprint(cls, blueprint: Any) -> Shield | None:
        """The blueprint's edge limits, or None when ``shield.edge.enabled`` is off."""
        edge = blueprint.shield.edge
        if not edge.enabled:
            return None
        return cls(window_seconds=edge.window_seconds, request_rate=edge.request_rate, connections=edge.connections,
                   connection_rate=edge.connection_rate, drop_request_rate=edge.drop_request_rate,
                   drop_connection_rate=edge.drop_connection_rate, table_size=edge.table_size, exempt=tuple(blueprint.shield.exempt))

    def limits(self) -> list[tuple[str, str, int, str]]:
        """(name, the acl's fetch, threshold, the message a client gets) for each 429 limit."""
        w = self.window_seconds
        return [
            ("requests", "sc0_http_req_rate", self.request_rate,
             f"too many requests from your address (edge limit requests): more than {self.request_rate} in {w} s; retry in {w} s"),
            ("connections", "sc0_conn_cur", self.connections,
             f"too many open connections from your address (edge limit connections): more than {self.connections} at once; "
             f"close some, then retry in {w} s"),
            ("connection_rate", "sc0_conn_rate", self.connection_rate,
             f"too many new connections from your address (edge limit connection_rate): more than {self.connection_rate} in {w} s; "
             f"reuse them (keep-alive) and retry in {w} s"),
        ]

    def state_of(self, entry: dict[str, Any]) -> list[str]:
        """The limits a table entry is over now: "dropped" (a flood), or the 429 limits' names."""
        if entry["requests"] > self.drop_request_rate or entry["connection_rate"] > self.drop_connection_rate:
            return ["dropped"]
        over = {"requests": entry["requests"] > self.request_rate, "connections": entry["connections"] > self.connections,
                "connection_rate": entry["connection_rate"] > self.connection_rate}
        return [name for name, yes in over.items() if yes]


def rules(shield: Shield | None, blocklist: Path | None = None) -> str:
    """The frontend's shield block: the stick table, tracking, the drops and the 429s ('' without a
    shield); with ``blocklist`` (a map file's absolute path) also the 403 of blocked sources."""
    if shield is None:
        return ""
    w = shield.window_seconds
    store = f"conn_cur,conn_rate({w}s),http_req_rate({w}s),gpc0,gpc0_rate({w}s)"
    lines = [f"    stick-table type ipv6 size {shield.table_size} expire {max(EXPIRE_SECONDS, 2 * w)}s store {store}"]
    unless = ""
    if shield.exempt:
        for start in range(0, len(shield.exempt), _ACL_WORDS):
            lines.append("    acl shield_exempt src " + " ".join(shield.exempt[start:start + _ACL_WORDS]))
        unless = " unless shield_exempt"
    limits = shield.limits()
    lines += [
        f"    acl shield_flood sc0_http_req_rate gt {shield.drop_request_rate}",
        f"    acl shield_connection_flood sc0_conn_rate gt {shield.drop_connection_rate}",
        *(f"    acl shield_{name} {fetch} gt {threshold}" for name, fetch, threshold, _ in limits),
        "    acl shield_page req.hdr(accept) -m sub text/html",
        "    acl shield_api path_beg /api/",
        f"    tcp-request connection track-sc0 src,ipmask(32,64){unless}  # the connection's own address: no header moves it",
        "    tcp-request connection sc-inc-gpc0(0) if shield_flood || shield_connection_flood  # refusals, for summit shield",
        "    tcp-request connection reject if shield_flood || shield_connection_flood  # a flood: new connections refused at once",
        "    http-request sc-inc-gpc0(0) if " + " || ".join(f"shield_{name}" for name, *_ in limits),  # a flood is over them too
        "    http-request silent-drop if shield_flood  # ... and its requests on open ones get no answer",
    ]
    if blocklist is not None:
        lines += _block_rules(blocklist, unless)
    headers = f"hdr Retry-After {w} hdr Cache-Control no-store hdr X-Request-Id %[unique-id]"
    for name, _, _, message in limits:
        page = ('<!doctype html><html lang="en"><meta charset="utf-8"><title>Too many requests</title>'
                f"<h1>Too many requests</h1><p>{_html(message)}.</p><p>Request id: %[unique-id]</p></html>")
        error = '{"error":{"code":"rate_limited","message":"' + message + '"},"request_id":"%[unique-id]"}'  # the API's error shape
        lines.append(f"    http-request return status 429 content-type \"text/html; charset=utf-8\" lf-string '{page}' {headers} "
                     f"if shield_{name} shield_page !shield_api")
        lines.append(f"    http-request return status 429 content-type application/json lf-string '{error}' {headers} if shield_{name}")
    return BEGIN + "\n".join(lines) + "\n" + END


_UNSAFE = " ,()'\"\\#"  # characters HAProxy's sample arguments cannot hold
BLOCKED_MESSAGE = "requests from your address are blocked (summit shield) after suspicious activity; retry in %[var(txn.shield_blocked)] s"


def _block_rules(blocklist: Path, unless: str) -> list[str]:
    """A listed source gets 403 until its time: the map gives the time, minus now is what is left."""
    path = str(blocklist)
    if not blocklist.is_absolute() or any(ch in path for ch in _UNSAFE):
        raise ValueError(f"the blocklist's path {path!r} must be absolute, without spaces, commas, quotes or parentheses (HAProxy's syntax)")
    headers = "hdr Retry-After %[var(txn.shield_blocked)] hdr Cache-Control no-store hdr X-Request-Id %[unique-id]"
    page = ('<!doctype html><html lang="en"><meta charset="utf-8"><title>Blocked</title>'
            f"<h1>Blocked</h1><p>{_html(BLOCKED_MESSAGE)}.</p><p>Request id: %[unique-id]</p></html>")
    error = '{"error":{"code":"forbidden","message":"' + BLOCKED_MESSAGE + '"},"request_id":"%[unique-id]"}'
    return [
        "    http-request set-var(txn.shield_now) date",
        f"    http-request set-var(txn.shield_blocked) src,map_ip_int({path},0),sub(txn.shield_now){unless}  # seconds left, if blocked",
        "    acl shield_blocked var(txn.shield_blocked) -m int gt 0",
        (f"    http-request return status 403 content-type \"text/html; charset=utf-8\" lf-string '{page}' {headers} "
         "if shield_blocked shield_page !shield_api"),
        f"    http-request return status 403 content-type application/json lf-string '{error}' {headers} if shield_blocked",
    ]


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# ---- reading the table back (summit shield) ----------------------------------------------------

_ENTRY = re.compile(r"^0x[0-9a-f]+: (.*)$")
_FIELD = re.compile(r"(\w+)(?:\((\d+)\))?=(\S*)")


def parse_table(text: str) -> list[dict[str, Any]]:
    """``show table`` output as entries: source, requests, connections, connection_rate, refused
    (429s and drops counted while the source stayed in the table), refused_rate (in the window),
    expires_in_ms. Entries are HAProxy's, in its order."""
    entries = []
    for line in text.splitlines():
        match = _ENTRY.match(line.strip())
        if not match:
            continue
        fields = {name: value for name, _, value in _FIELD.findall(match.group(1))}
        entries.append({
            "source": source_of(fields.get("key", "")),
            "requests": int(fields.get("http_req_rate", 0) or 0),
            "connections": int(fields.get("conn_cur", 0) or 0),
            "connection_rate": int(fields.get("conn_rate", 0) or 0),
            "refused": int(fields.get("gpc0", 0) or 0),
            "refused_rate": int(fields.get("gpc0_rate", 0) or 0),
            "expires_in_ms": int(fields.get("exp", 0) or 0),
        })
    return entries


def source_of(key: str) -> str:
    """A table key as people write it: ``::ffff:192.0.2.7`` is ``192.0.2.7``; an IPv6 key is its /64."""
    try:
        address = ipaddress.IPv6Address(key)
    except ValueError:
        return key
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return f"{address}/64"


def key_of(source: str) -> str:
    """The table key of a source (``192.0.2.7``, ``2001:db8::1`` or ``2001:db8::/64``), as ``clear table`` takes it."""
    text = source.strip()
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValueError(f"{source!r} is not an address: give an IPv4 address, or an IPv6 address or /64") from None
    if network.version == 4:
        if network.prefixlen != 32:
            raise ValueError(f"{source!r}: the edge counts an IPv4 client by its address, not a network")
        return f"::ffff:{network.network_address}"
    return str(ipaddress.ip_network(f"{network.network_address}/64", strict=False).network_address)


def table(socket_path: Path) -> list[dict[str, Any]]:
    """The edge's counters now, one entry per source (OSError when HAProxy does not answer)."""
    from summit.engines.haproxy import runtime

    answer = runtime(socket_path, f"show table {TABLE}")
    if "No such table" in answer or "Unknown" in answer.split("\n", 1)[0]:
        return []
    return parse_table(answer)


def clear(socket_path: Path, source: str) -> bool:
    """Forget a source's counters now (it is counted afresh from its next connection); False if unknown."""
    from summit.engines.haproxy import runtime

    key = key_of(source)
    known = any(entry["source"] == source_of(key) for entry in table(socket_path))
    runtime(socket_path, f"clear table {TABLE} key {key}")
    return known


# ---- blocks (summit shield block / unblock, summit guard's automatic blocking) ----------------

def blocklist_map(data_dir: Path) -> Path:
    """The blocklist's map file of a stage, as HAProxy's configuration names it (absolute): the file
    itself, or, when its path holds a character HAProxy's syntax cannot (a space ...), a symbolic
    link to it in the temporary directory (``prepare_blocklist`` makes it)."""
    import hashlib
    import tempfile

    from summit.security.blocks import Blocklist

    real = Blocklist(Path(data_dir).resolve()).map_path
    if not any(ch in str(real) for ch in _UNSAFE):
        return real
    return Path(tempfile.gettempdir()) / f"summit-blocked-{hashlib.sha256(str(real).encode()).hexdigest()[:16]}.map"


def prepare_blocklist(data_dir: Path) -> Path:
    """Before HAProxy starts: the map file written from the blocklist (it must exist to be loaded),
    and the link to it when the configuration names one. Returns the path the configuration names."""
    from summit.security.blocks import Blocklist

    real = Blocklist(Path(data_dir).resolve()).ensure_map()
    named = blocklist_map(data_dir)
    if named != real:
        named.unlink(missing_ok=True)
        named.symlink_to(real)
    return named


def running_socket(data_dir: Path) -> Path | None:
    """The runtime socket of the stage's running HAProxy (its stats port in ``engines/ports.json``), or None."""
    import json

    from summit.engines.haproxy import runtime_socket
    from summit.engines.layout import Layout

    layout = Layout(Path(data_dir).resolve())
    try:
        port = json.loads((layout.data_dir / "engines" / "ports.json").read_text())["haproxy-stats"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    path = runtime_socket(layout, int(port))
    return path if path.exists() else None


def push_blocks(socket_path: Path, map_path: Path, blocks: list[Any]) -> None:
    """Make the running HAProxy's copy of the map hold exactly ``blocks`` (``source``, ``until``), in
    one step: a new version of the map is filled, then committed (OSError when HAProxy does not
    answer, RuntimeError when it refuses)."""
    from summit.engines.haproxy import runtime

    answer = runtime(socket_path, f"prepare map {map_path}")
    match = re.search(r"New version created: (\d+)", answer)
    if match is None:
        raise RuntimeError(f"HAProxy has no map {map_path} (started before blocks existed? restart it): {answer.strip()}")
    version = match.group(1)
    if blocks:
        payload = "\n".join(f"{b.source} {int(b.until)}" for b in blocks)
        answer = runtime(socket_path, f"add map @{version} {map_path} <<\n{payload}\n")
        if answer.strip():
            raise RuntimeError(f"HAProxy refused the blocklist: {answer.strip()}")
    answer = runtime(socket_path, f"commit map @{version} {map_path}")
    if answer.strip():
        raise RuntimeError(f"HAProxy could not commit the blocklist: {answer.strip()}")


def served_blocks(socket_path: Path, map_path: Path) -> dict[str, int]:
    """What the running HAProxy blocks now: source -> until (epoch seconds), from ``show map``."""
    from summit.engines.haproxy import runtime

    found = {}
    for line in runtime(socket_path, f"show map {map_path}").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].startswith("0x") and parts[2].isdigit():
            found[parts[1]] = int(parts[2])
    return found
