"""The rules: each looks at audit records or access-log requests, in time order, and raises or
updates findings. Every rule is a few lines of counting that a person can check by hand:

- ``BruteForce``: failed sign-ins (``auth:SignIn`` or ``auth:Mfa`` failures, lock-out refusals
  included) on one account; ``guard.brute_force_failures`` within ``brute_force_window_seconds``.
- ``CredentialStuffing``: failed sign-ins from one source against ``guard.stuffing_accounts``
  different accounts within the window (a login naming no account counts as one more each time:
  the audit log does not keep what was typed).
- ``RefreshTokenReuse``: each ``auth:RefreshReuse`` record.
- ``Scanning``: ``guard.scan_requests`` requests answered 404, blocked at the front door or blocked
  by the WAF (its events, with the ids of the rules that matched) to one source within ``scan_window_seconds``.
- ``UnusualAdminActivity``: an admin action (``/api/v1/admin/`` calls and ``iam:*`` actions that
  succeeded) by a principal with none in the history, once the history is at least
  ``admin_learning_seconds`` long; or ``admin_burst_actions`` admin actions within the window.
- ``NewSourceWithoutMfa``: a password-only sign-in (``auth:SignIn`` success without
  ``mfa_required``: the account has MFA off) from a network the account never succeeded from
  before, when it has succeeded from others.

A threshold rule keeps, per subject, the recent events of its window (at most what the threshold
needs) in the store; once the threshold is reached within the window, every event of the window
that was not counted yet goes into the subject's finding, and so does each further one while the
window stays full.
"""

from __future__ import annotations

import bisect
import fnmatch
import ipaddress
from typing import Any, Protocol

from summit.security.guard.findings import (
    BRUTE_FORCE,
    CREDENTIAL_STUFFING,
    NEW_SOURCE_WITHOUT_MFA,
    REFRESH_TOKEN_REUSE,
    SCANNING,
    UNUSUAL_ADMIN_ACTIVITY,
)
from summit.security.guard.sources import AuditRecord, Request, to_ms

SIGN_IN_STEPS = ("auth:SignIn", "auth:Mfa")
ADMIN_RESOURCES = ("/api/v1/admin/*",)  # the IAM admin API (summit.security.policies.admin_api)
ADMIN_ACTIONS = ("iam:*",)
MAX_LISTED = 20  # sources or accounts named in a finding's details


class Run(Protocol):
    """What a rule may use of the evaluation it runs in (``detector.Evaluation``)."""

    settings: Any  # the blueprint's [guard] section
    history_start_ms: int | None  # the time of the oldest audit record the guard has read

    def window(self, rule: str, key: str) -> list[list]: ...
    def report(self, type_: str, *, account: str | None = None, source: str | None = None, discriminator: str = "",
               events: list[dict], count: int, times: list[int], severity: float,
               details: dict | None = None, only_if_active: bool = False) -> None: ...
    def active(self, type_: str, *, account: str | None = None, source: str | None = None): ...  # noqa: ANN201
    @property
    def store(self): ...  # noqa: ANN201


def add_to_window(items: list[list], item: list, *, window_ms: int, keep: int) -> None:
    """Insert ``item`` ([time_ms, key, counted, evidence]) in time order, drop what fell out of the
    window (relative to the newest event), and keep at most ``keep`` of the latest."""
    bisect.insort(items, item, key=lambda it: it[0])
    newest = items[-1][0]
    while items and items[0][0] < newest - window_ms:
        items.pop(0)
    del items[: max(0, len(items) - keep)]


def take_uncounted(items: list[list]) -> list[list]:
    fresh = [it for it in items if not it[2]]
    for it in fresh:
        it[2] = 1
    return fresh


def _listed(values: list[str], add: list[str]) -> list[str]:
    out = list(values)
    for value in add:
        if value is not None and value not in out and len(out) < MAX_LISTED:
            out.append(value)
    return out


def _is_failed_sign_in(r: dict) -> bool:
    return r.get("action") in SIGN_IN_STEPS and r.get("result") == "failure"


def _is_completed_sign_in(r: dict) -> bool:
    """A sign-in that gave tokens: a password-only sign-in, or the MFA step after it."""
    return r.get("result") == "success" and (
        (r.get("action") == "auth:SignIn" and r.get("reason") is None) or r.get("action") == "auth:Mfa"
    )


class BruteForce:
    name = "brute_force"
    SEVERITY, SUCCEEDED = 5.0, 8.0

    def audit(self, run: Run, event: AuditRecord) -> None:
        r, s = event.record, run.settings
        account = r.get("user_id")
        if account is None:
            return
        window_ms = s.brute_force_window_seconds * 1000
        if _is_failed_sign_in(r):
            items = run.window(self.name, account)
            add_to_window(items, [event.time_ms, r.get("source_ip"), 0, event.evidence], window_ms=window_ms, keep=s.brute_force_failures)
            if len(items) >= s.brute_force_failures:
                fresh = take_uncounted(items)
                found = run.active(BRUTE_FORCE, account=account)
                sources = _listed(found.details.get("sources", []) if found else [], [it[1] for it in fresh])
                run.report(BRUTE_FORCE, account=account, events=[it[3] for it in fresh], count=len(fresh),
                           times=[it[0] for it in fresh], severity=self.SEVERITY, details={"sources": sources})
        elif _is_completed_sign_in(r):
            # a success from a source that was failing, while the burst is fresh: the password was guessed
            found = run.active(BRUTE_FORCE, account=account)
            source = r.get("source_ip")
            if found is not None and source in found.details.get("sources", []) and event.time_ms <= to_ms(found.last_seen) + window_ms:
                run.report(BRUTE_FORCE, account=account, events=[event.evidence], count=0, times=[event.time_ms],
                           severity=self.SUCCEEDED, details={"signed_in_from": source}, only_if_active=True)


class CredentialStuffing:
    name = "credential_stuffing"
    SEVERITY, SUCCEEDED = 5.0, 8.0

    def audit(self, run: Run, event: AuditRecord) -> None:
        r, s = event.record, run.settings
        source = r.get("source_ip")
        if source is None:
            return
        window_ms = s.stuffing_window_seconds * 1000
        if _is_failed_sign_in(r) and r.get("action") == "auth:SignIn":
            # who was tried: the account's id, or this very event when the login named no account
            target = r.get("user_id") or f"unknown:{r.get('event_id')}"
            items = run.window(self.name, source)
            add_to_window(items, [event.time_ms, target, 0, event.evidence], window_ms=window_ms, keep=10 * s.stuffing_accounts)
            targets = {it[1] for it in items}
            if len(targets) >= s.stuffing_accounts:
                fresh = take_uncounted(items)
                found = run.active(CREDENTIAL_STUFFING, source=source)
                named = [t for t in targets if not t.startswith("unknown:")]
                accounts = max(len(targets), found.details.get("accounts", 0) if found else 0)
                listed = _listed(found.details.get("listed_accounts", []) if found else [], sorted(named))
                run.report(CREDENTIAL_STUFFING, source=source, events=[it[3] for it in fresh], count=len(fresh),
                           times=[it[0] for it in fresh], severity=self.SEVERITY,
                           details={"accounts": accounts, "listed_accounts": listed})
        elif _is_completed_sign_in(r) and r.get("user_id") is not None:
            found = run.active(CREDENTIAL_STUFFING, source=source)
            if found is not None and event.time_ms <= to_ms(found.last_seen) + window_ms:
                run.report(CREDENTIAL_STUFFING, source=source, events=[event.evidence], count=0, times=[event.time_ms],
                           severity=self.SUCCEEDED, details={"signed_in_to": r["user_id"]}, only_if_active=True)


class RefreshTokenReuse:
    name = "refresh_token_reuse"
    SEVERITY = 7.0

    def audit(self, run: Run, event: AuditRecord) -> None:
        r = event.record
        if r.get("action") != "auth:RefreshReuse":
            return
        run.report(REFRESH_TOKEN_REUSE, account=r.get("user_id"), source=r.get("source_ip"), discriminator=r.get("event_id") or "",
                   events=[event.evidence], count=1, times=[event.time_ms], severity=self.SEVERITY,
                   details={"reason": r.get("reason")})


class Scanning:
    name = "scanning"
    SEVERITY, HEAVY = 2.0, 4.0  # medium from 10 x the threshold

    def request(self, run: Run, request: Request) -> None:
        s = run.settings
        if request.source is None or not self.is_probe(request):
            return
        items = run.window(self.name, request.source)
        kind = 2 if request.waf_rules else int(request.blocked)  # 0 a 404, 1 refused by the front door, 2 blocked by the WAF
        add_to_window(items, [request.time_ms, kind, 0, request.evidence],
                      window_ms=s.scan_window_seconds * 1000, keep=s.scan_requests)
        if len(items) >= s.scan_requests:
            fresh = take_uncounted(items)
            found = run.active(SCANNING, source=request.source)
            known = found.details if found else {}
            total = (found.count if found else 0) + len(fresh)
            details = {"blocked": known.get("blocked", 0) + sum(it[1] == 1 for it in fresh)}
            waf = [it for it in fresh if it[1] == 2]
            if waf or "waf_blocks" in known:  # the rules that matched, but the CRS's anomaly verdicts (949xxx, 959xxx, 980xxx)
                ids = [rule for it in waf for rule in it[3].get("waf_rules", []) if not rule.startswith(self.VERDICTS)]
                details["waf_blocks"] = known.get("waf_blocks", 0) + len(waf)
                details["waf_rules"] = _listed(known.get("waf_rules", []), sorted(set(ids)))
            run.report(SCANNING, source=request.source, events=[it[3] for it in fresh], count=len(fresh),
                       times=[it[0] for it in fresh], severity=self.HEAVY if total >= 10 * s.scan_requests else self.SEVERITY,
                       details=details)

    VERDICTS = ("949", "959", "980")

    @staticmethod
    def is_probe(request: Request) -> bool:
        """A request that found nothing, that the front door refused (HAProxy ``http-request deny``,
        termination state ``PR``), or that the WAF blocked (an event of its log)."""
        return request.status == 404 or request.blocked


class UnusualAdminActivity:
    name = "admin_activity"
    FIRST, BURST, BOTH = 6.0, 5.0, 8.0

    def audit(self, run: Run, event: AuditRecord) -> None:
        r, s = event.record, run.settings
        principal = r.get("user_id")
        if principal is None or r.get("result") != "success" or not self.is_admin_action(r):
            return
        window_ms = s.admin_burst_window_seconds * 1000
        items = run.window(self.name, principal)
        item = [event.time_ms, None, 0, event.evidence]
        add_to_window(items, item, window_ms=window_ms, keep=s.admin_burst_actions)
        store = run.store
        reasons: list[str] = []
        if not store.admin_known(principal) and event.time_ms - run.history_start_ms >= s.admin_learning_seconds * 1000:
            reasons.append("first_admin_action")
        if len(items) >= s.admin_burst_actions:
            reasons.append("burst")
        found = run.active(UNUSUAL_ADMIN_ACTIVITY, account=principal)
        recent = found is not None and event.time_ms <= to_ms(found.last_seen) + window_ms
        store.learn_admin(principal, r.get("time"))
        if not reasons and not recent:
            return
        fresh = [item] if "burst" not in reasons else take_uncounted(items)
        item[2] = 1
        known = list(found.details.get("reasons", [])) if found is not None else []
        all_reasons = _listed(known, reasons)
        severity = self.BOTH if len(all_reasons) == 2 else self.FIRST if "first_admin_action" in all_reasons else self.BURST
        run.report(UNUSUAL_ADMIN_ACTIVITY, account=principal, events=[it[3] for it in fresh], count=len(fresh),
                   times=[it[0] for it in fresh], severity=severity, details={"reasons": all_reasons})

    @staticmethod
    def is_admin_action(r: dict) -> bool:
        resource, action = r.get("resource") or "", r.get("action") or ""
        return any(fnmatch.fnmatchcase(resource, p) for p in ADMIN_RESOURCES) or any(fnmatch.fnmatchcase(action, p) for p in ADMIN_ACTIONS)


class NewSourceWithoutMfa:
    name = "new_source"
    SEVERITY = 3.0

    def audit(self, run: Run, event: AuditRecord) -> None:
        r, s = event.record, run.settings
        account, source = r.get("user_id"), r.get("source_ip")
        if account is None or source is None or r.get("result") != "success":
            return
        if r.get("action") == "auth:SignIn" and r.get("reason") == "mfa_required":
            return  # the password alone proved nothing yet: the MFA step's success will
        network = self.network(source, s.new_source_ipv4_prefix, s.new_source_ipv6_prefix)
        store = run.store
        known = store.known_networks(account)
        if r.get("action") == "auth:SignIn" and r.get("reason") is None and known and network not in known:
            run.report(NEW_SOURCE_WITHOUT_MFA, account=account, source=source, events=[event.evidence], count=1,
                       times=[event.time_ms], severity=self.SEVERITY,
                       details={"network": network, "known_networks": len(known)})
        store.learn_network(account, network, r.get("time"))

    @staticmethod
    def network(source: str, v4_prefix: int, v6_prefix: int) -> str:
        try:
            address = ipaddress.ip_address(source)
        except ValueError:
            return source  # not an address (a test client's name): itself
        prefix = v4_prefix if address.version == 4 else v6_prefix
        return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


AUDIT_RULES = (BruteForce(), CredentialStuffing(), RefreshTokenReuse(), UnusualAdminActivity(), NewSourceWithoutMfa())
REQUEST_RULES = (Scanning(),)
WINDOWS = {  # rule -> the setting holding its window, for forgetting stale windows
    BruteForce.name: "brute_force_window_seconds",
    CredentialStuffing.name: "stuffing_window_seconds",
    Scanning.name: "scan_window_seconds",
    UnusualAdminActivity.name: "admin_burst_window_seconds",
}
