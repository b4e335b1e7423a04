"""Queueing formulas for the planner: the utilisation law and the M/M/c queue (Erlang C).

A tier of ``c`` identical servers (cores) receiving Poisson arrivals at ``rate`` per second, each
request needing ``service_ms`` of one server on average (exponential), is an M/M/c queue. The
planner uses it to check that a pool sized by utilisation also meets the p99 target, and
``summit plan check`` uses it to predict the highest rate a measured stage holds.
"""

from __future__ import annotations

import math


def erlang_c(servers: int, offered: float) -> float:
    """Probability that an arrival waits, for ``servers`` servers and ``offered`` = rate x service
    (in Erlangs). 1.0 when the queue is unstable (offered >= servers)."""
    if servers < 1:
        raise ValueError("servers must be at least 1")
    if offered <= 0:
        return 0.0
    if offered >= servers:
        return 1.0
    blocking = 1.0  # Erlang B by the stable recursion B(k) = a B(k-1) / (k + a B(k-1))
    for k in range(1, servers + 1):
        blocking = offered * blocking / (k + offered * blocking)
    rho = offered / servers
    return blocking / (1 - rho * (1 - blocking))


def response_tail(t_s: float, rate: float, service_s: float, servers: int, wait: float | None = None) -> float:
    """P(response time > t_s) in M/M/c: the wait (0 with probability 1-C, else exponential with
    rate c*mu - lambda) plus an exponential service with rate mu. ``wait`` is C if known."""
    mu = 1.0 / service_s
    theta = servers * mu - rate
    if theta <= 0:
        return 1.0
    if wait is None:
        wait = erlang_c(servers, rate * service_s)
    if abs(theta - mu) < 1e-9 * mu:
        both = (1 + mu * t_s) * math.exp(-mu * t_s)
    else:
        both = (mu * math.exp(-theta * t_s) - theta * math.exp(-mu * t_s)) / (mu - theta)
    return (1 - wait) * math.exp(-mu * t_s) + wait * both


def p99_ms(rate: float, service_ms: float, servers: int, quantile: float = 0.99) -> float:
    """The ``quantile`` of the response time (ms) of an M/M/c queue; infinity if unstable."""
    if service_ms <= 0:
        return 0.0
    service_s = service_ms / 1000
    if rate * service_s >= servers:
        return math.inf
    target = 1 - quantile
    wait = erlang_c(servers, rate * service_s)
    low, high = 0.0, service_s
    while response_tail(high, rate, service_s, servers, wait) > target:
        high *= 2
        if high > 1e7:
            return math.inf
    for _ in range(60):
        mid = (low + high) / 2
        if response_tail(mid, rate, service_s, servers, wait) > target:
            low = mid
        else:
            high = mid
    return high * 1000


def servers_needed(rate: float, service_ms: float, target_utilisation: float, p99_budget_ms: float | None = None) -> int:
    """Cores for a pool: enough to stay under ``target_utilisation`` (utilisation law, U = X S / c),
    then more while the M/M/c p99 is over ``p99_budget_ms`` (if given). At least 1."""
    busy = rate * service_ms / 1000
    servers = max(1, math.ceil(busy / target_utilisation - 1e-9))
    if p99_budget_ms is not None and service_ms > 0 and rate > 0:
        if service_ms * math.log(100) > p99_budget_ms:  # even an idle server misses the budget
            return servers
        while p99_ms(rate, service_ms, servers) > p99_budget_ms:
            servers += 1
    return servers


def max_rate(service_ms: float, servers: int, p99_target_ms: float) -> float:
    """The highest Poisson rate (per second) that an M/M/c pool holds with p99 under the target:
    the capacity that ``summit plan check`` predicts. 0 if even an idle pool misses the target."""
    if service_ms <= 0:
        return math.inf
    ceiling = servers * 1000 / service_ms
    if p99_ms(ceiling * 1e-9, service_ms, servers) > p99_target_ms:
        return 0.0
    low, high = 0.0, ceiling
    for _ in range(80):
        mid = (low + high) / 2
        if p99_ms(mid, service_ms, servers) <= p99_target_ms:
            low = mid
        else:
            high = mid
    return low
