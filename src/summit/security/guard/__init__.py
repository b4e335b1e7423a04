"""Threat detection, like GuardDuty: rules over the audit log and the access log raise findings.

The rules (``rules``) read the audit log's records (``summit.security.audit``) and the front door's
access log (HAProxy's, or the app's own JSON access lines at stage 1) incrementally, from where the
last run stopped (``sources``), and keep their findings, deduplicated by type and subject, in
``<data_dir>/guard/guard.db`` (``store``). ``summit guard findings`` runs them and lists what they
found; ``summit guard archive ID`` marks a finding handled. Thresholds and windows come from the
blueprint's ``[guard]`` section. See ``docs/guard.md``.

    detector = Detector.for_blueprint(blueprint, on_finding=hook)   # hook(finding, "new" | "updated")
    detector.run()
    for finding in detector.findings(since="2026-01-01T00:00:00Z"):
        print(finding.severity_label, finding.type, finding.title)
"""

from summit.security.guard.detector import Detector, RunReport
from summit.security.guard.findings import FINDING_TYPES, Finding, severity_label
from summit.security.guard.store import GuardError

__all__ = ["Detector", "FINDING_TYPES", "Finding", "GuardError", "RunReport", "severity_label"]


def __dir__() -> list[str]:
    """``dir()`` shows what the package offers, not the modules it is built from (PEP 562)."""
    return sorted(__all__)
