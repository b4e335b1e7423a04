"""Findings: what the guard's rules raise, their types, severities, and how they read.

A finding names a type (GuardDuty's ``ThreatPurpose:ResourceType/ThreatFamily`` naming), a
severity from 1.0 to 8.9 (low below 4, medium below 7, high from 7, as GuardDuty grades them), a
subject (an account, a source address, or both), when it was first and last seen, how many events
it counts, and a bounded sample of the evidence: the audit events (by id) or access-log lines that
raised it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

BRUTE_FORCE = "UnauthorizedAccess:User/BruteForce"
CREDENTIAL_STUFFING = "CredentialAccess:User/CredentialStuffing"
REFRESH_TOKEN_REUSE = "CredentialAccess:User/RefreshTokenReuse"
SCANNING = "Recon:Network/Scanning"
UNUSUAL_ADMIN_ACTIVITY = "PrivilegeEscalation:User/UnusualAdminActivity"
NEW_SOURCE_WITHOUT_MFA = "UnauthorizedAccess:User/NewSourceWithoutMfa"

# type -> what raises it (shown by `summit guard findings` and docs/guard.md)
FINDING_TYPES: dict[str, str] = {
    BRUTE_FORCE: "many failed sign-ins on one account within a window, from any sources",
    CREDENTIAL_STUFFING: "one source failing to sign in to many different accounts within a window",
    REFRESH_TOKEN_REUSE: "a spent refresh token presented again (the pool revoked its whole sign-in)",
    SCANNING: "a burst of 404s (or WAF blocks) answered to one source",
    UNUSUAL_ADMIN_ACTIVITY: "a principal's first admin action, or a burst of admin actions",
    NEW_SOURCE_WITHOUT_MFA: "a password-only sign-in (MFA off) from a source the account never used",
}


def severity_label(severity: float) -> str:
    """GuardDuty's bands: low 1.0-3.9, medium 4.0-6.9, high 7.0-8.9."""
    if severity >= 7.0:
        return "high"
    if severity >= 4.0:
        return "medium"
    return "low"


def dedup_key(type_: str, account: str | None, source: str | None, discriminator: str = "") -> str:
    """One active finding per type and subject (and per event, for the types raised per event)."""
    return "|".join((type_, account or "", source or "", discriminator))


@dataclass
class Finding:
    id: str
    type: str
    severity: float
    account: str | None  # a user id, as the audit log names users
    source: str | None  # a client address
    first_seen: str  # ISO 8601 UTC with milliseconds, as the audit log writes times
    last_seen: str
    count: int  # events counted: failed sign-ins, 404s, admin actions ...
    evidence: list[dict[str, Any]] = field(default_factory=list)  # at most guard.evidence_limit
    details: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    updated_at: str = ""
    archived_at: str | None = None

    @property
    def severity_label(self) -> str:
        return severity_label(self.severity)

    @property
    def archived(self) -> bool:
        return self.archived_at is not None

    @property
    def subject(self) -> str:
        parts = []
        if self.account:
            parts.append(f"account {self.account}")
        if self.source:
            parts.append(f"source {self.source}")
        return ", ".join(parts) or "-"

    @property
    def title(self) -> str:
        """One line that says what happened, from the finding's own figures."""
        d, n = self.details, self.count
        if self.type == BRUTE_FORCE:
            sources = d.get("sources") or []
            text = f"{n} failed sign-ins on account {self.account} from {len(sources)} source(s)"
            return text + (f"; then a sign-in succeeded from {d['signed_in_from']}" if d.get("signed_in_from") else "")
        if self.type == CREDENTIAL_STUFFING:
            text = f"{n} failed sign-ins from {self.source} against {d.get('accounts', '?')} different accounts"
            return text + (f"; then it signed in to account {d['signed_in_to']}" if d.get("signed_in_to") else "")
        if self.type == REFRESH_TOKEN_REUSE:
            return f"a spent refresh token of account {self.account} was replayed from {self.source or 'an unknown source'}"
        if self.type == SCANNING:
            blocked, waf = d.get("blocked", 0), d.get("waf_blocks", 0)
            parts = [f"{blocked} blocked by the front door"] * bool(blocked) + [f"{waf} blocked by the WAF"] * bool(waf)
            return f"{n} requests from {self.source} answered 404" + (f" or blocked ({', '.join(parts)})" if parts else "")
        if self.type == UNUSUAL_ADMIN_ACTIVITY:
            reasons = d.get("reasons") or []
            what = []
            if "first_admin_action" in reasons:
                what.append("first admin action by this principal")
            if "burst" in reasons:
                what.append("a burst of admin actions")
            return f"{n} admin action(s) by account {self.account}: " + " and ".join(what)
        if self.type == NEW_SOURCE_WITHOUT_MFA:
            return f"account {self.account} (MFA off) signed in from {self.source}, never seen for it before"
        return self.type

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "severity": self.severity,
            "severity_label": self.severity_label,
            "title": self.title,
            "account": self.account,
            "source": self.source,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "count": self.count,
            "evidence": list(self.evidence),
            "details": dict(self.details),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "archived": self.archived,
            "archived_at": self.archived_at,
        }
