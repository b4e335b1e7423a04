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

``rules(shield)`` renders the frontend's block (between two marker comments, nothing else of the
configuration depends on it); ``table(socket)`` reads the counters back through the runtime API
(``show table public``) for ``summit shield``.
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


def rules(shield: Shield | None) -> str:
    """The frontend's shield block: the stick table, tracking, the drops and the 429s ('' without a shield)."""
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
    headers = f"hdr Retry-After {w} hdr Cache-Control no-store hdr X-Request-Id %[unique-id]"
    for name, _, _, message in limits:
        page = ('<!doctype html><html lang="en"><meta charset="utf-8"><title>Too many requests</title>'
                f"<h1>Too many requests</h1><p>{_html(message)}.</p><p>Request id: %[unique-id]</p></html>")
        error = '{"error":{"code":"rate_limited","message":"' + message + '"},"request_id":"%[unique-id]"}'  # the API's error shape
        lines.append(f"    http-request return status 429 content-type \"text/html; charset=utf-8\" lf-string '{page}' {headers} "
                     f"if shield_{name} shield_page !shield_api")
        lines.append(f"    http-request return status 429 content-type application/json lf-string '{error}' {headers} if shield_{name}")
    return BEGIN + "\n".join(lines) + "\n" + END


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
