"""The guard's evaluation: read what the logs gained since the last run, feed it to the rules in
time order, keep the findings. One run is one transaction of the guard's store.

    detector = Detector.for_blueprint(blueprint)
    report = detector.run()              # incremental: only lines not read before
    detector.findings(since="2026-01-01T00:00:00.000Z", types=["CredentialAccess:*"])
    detector.archive(finding_id)

With ``guard.blocking.enabled`` a run then blocks the sources of its new and updated findings of
the chosen types (``blocking.Blocker``: the Shield's blocklist, pushed to the running front door).
``on_finding(finding, change)`` is called after each run's commit (and its blocks) for every finding
it created (``change == "new"``) or changed (``"updated"``).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from summit.security.audit.format import iso_ms
from summit.security.guard.blocking import Applied, Blocker
from summit.security.guard.findings import Finding, dedup_key
from summit.security.guard.rules import AUDIT_RULES, REQUEST_RULES, WINDOWS
from summit.security.guard.sources import LogFile, access_log_files, audit_records, default_access_logs, requests, to_ms
from summit.security.guard.store import GuardError, GuardStore

OnFinding = Callable[[Finding, str], None]


@dataclass
class RunReport:
    """What one run read and what it found."""

    audit_records: int = 0
    requests: int = 0
    logs: list[str] = field(default_factory=list)  # the access logs it looked at (under the data directory)
    new: list[Finding] = field(default_factory=list)
    updated: list[Finding] = field(default_factory=list)
    seconds: float = 0.0
    blocking: Applied | None = None  # what automatic blocking did (None: it is off)

    def as_dict(self) -> dict[str, Any]:
        return {"audit_records": self.audit_records, "requests": self.requests, "logs": self.logs,
                "new": [f.id for f in self.new], "updated": [f.id for f in self.updated], "seconds": round(self.seconds, 3),
                "blocking": self.blocking.as_dict() if self.blocking is not None else None}


class Evaluation:
    """The state one run gives the rules: settings, sliding windows, findings (kept in memory and
    written to the store at the end of the run)."""

    def __init__(self, store: GuardStore, settings: Any, now: str):  # noqa: ANN401  (blueprint.guard)
        self.store, self.settings, self.now = store, settings, now
        self.history_start_ms = int(store.meta("history_start") or 0) or None
        self._windows: dict[tuple[str, str], list[list]] = {}
        self._findings: dict[str, Finding | None] = {}
        self._new: set[str] = set()
        self._dirty: set[str] = set()
        self.newest_ms = 0

    def seen(self, time_ms: int) -> None:
        if self.history_start_ms is None:
            self.history_start_ms = time_ms
            self.store.set_meta("history_start", str(time_ms))
        self.newest_ms = max(self.newest_ms, time_ms)

    def window(self, rule: str, key: str) -> list[list]:
        slot = (rule, key)
        if slot not in self._windows:
            self._windows[slot] = self.store.window(rule, key)
        return self._windows[slot]

    def _active(self, key: str) -> Finding | None:
        if key not in self._findings:
            self._findings[key] = self.store.active(key)
        return self._findings[key]

    def active(self, type_: str, *, account: str | None = None, source: str | None = None) -> Finding | None:
        return self._active(dedup_key(type_, account, source))

    def report(self, type_: str, *, account: str | None = None, source: str | None = None, discriminator: str = "",
               events: list[dict], count: int, times: list[int], severity: float,
               details: dict | None = None, only_if_active: bool = False) -> None:
        key = dedup_key(type_, account, source, discriminator)
        finding = self._active(key)
        first, last = iso_ms(min(times)), iso_ms(max(times))
        limit = self.settings.evidence_limit
        if finding is None:
            if only_if_active:
                return
            finding = Finding(secrets.token_hex(8), type_, severity, account, source, first, last, count, [],
                              dict(details or {}), created_at=self.now, updated_at=self.now)
            self._findings[key] = finding
            self._new.add(key)
        else:
            finding.first_seen, finding.last_seen = min(finding.first_seen, first), max(finding.last_seen, last)
            finding.count += count
            finding.severity = max(finding.severity, severity)
            finding.details.update(details or {})
            finding.updated_at = self.now
        for event in events:  # the first events, and in the last place the latest one
            if len(finding.evidence) < limit:
                finding.evidence.append(event)
            else:
                finding.evidence[-1] = event
        self._dirty.add(key)

    def flush(self) -> tuple[list[Finding], list[Finding]]:
        """Write windows and findings to the store; returns (new, updated) findings."""
        for (rule, key), items in self._windows.items():
            self.store.save_window(rule, key, items)
        for rule, setting in WINDOWS.items():
            self.store.forget_windows(rule, self.newest_ms - getattr(self.settings, setting) * 1000)
        new, updated = [], []
        for key in sorted(self._dirty):
            finding = self._findings[key]
            assert finding is not None
            if key in self._new:
                self.store.insert(finding, key)
                new.append(finding)
            else:
                self.store.update(finding)
                updated.append(finding)
        return new, updated


class Detector:
    def __init__(self, data_dir: Path, settings: Any, *, access_logs: list[str] | None = None,  # noqa: ANN401
                 on_finding: OnFinding | None = None, clock: Callable[[], float] = time.time, blocker: Blocker | None = None):
        """``settings``: the blueprint's ``[guard]`` section. ``access_logs``: globs under the data
        directory (default: ``settings.access_logs``, else the app's JSON access logs). ``blocker``:
        automatic blocking (``Blocker.for_blueprint``; None: none)."""
        self.data_dir = Path(data_dir)
        self.settings = settings
        self.access_logs = list(access_logs if access_logs is not None else settings.access_logs or default_access_logs(False))
        self.on_finding = on_finding
        self.clock = clock
        self.blocker = blocker

    @classmethod
    def for_blueprint(cls, blueprint: Any, *, on_finding: OnFinding | None = None) -> Detector:  # noqa: ANN401
        """The stage's data directory and settings; the access logs of its front door unless
        ``guard.access_logs`` names others; automatic blocking when ``guard.blocking.enabled``."""
        settings = blueprint.guard
        logs = settings.access_logs or default_access_logs(blueprint.engines.haproxy.enabled)
        return cls(blueprint.data_dir, settings, access_logs=logs, on_finding=on_finding, blocker=Blocker.for_blueprint(blueprint))

    def _store(self) -> GuardStore:
        return GuardStore(self.data_dir)

    def run(self) -> RunReport:
        """Evaluate the rules over what the logs gained since the last run."""
        started = time.perf_counter()
        report = RunReport()
        with self._store() as store:
            store.begin()
            try:
                evaluation = Evaluation(store, self.settings, iso_ms(int(self.clock() * 1000)))
                files: list[LogFile] = []
                for record in audit_records(store, self.data_dir, files):
                    evaluation.seen(record.time_ms)
                    for rule in AUDIT_RULES:
                        rule.audit(evaluation, record)
                    report.audit_records += 1
                try:
                    logs = access_log_files(store, self.data_dir, self.access_logs)
                except ValueError as error:
                    raise GuardError(str(error)) from None
                report.logs = [log.name for log in logs]
                for request in requests(logs):
                    evaluation.newest_ms = max(evaluation.newest_ms, request.time_ms)
                    for rule in REQUEST_RULES:
                        rule.request(evaluation, request)
                    report.requests += 1
                report.new, report.updated = evaluation.flush()
                for log in files + logs:
                    log.save()
                store.commit()
            except BaseException:
                store.rollback()
                raise
        if self.blocker is not None:
            report.blocking = self.blocker.apply(report.new + report.updated)
        report.seconds = time.perf_counter() - started
        if self.on_finding is not None:
            for finding in report.new:
                self.on_finding(finding, "new")
            for finding in report.updated:
                self.on_finding(finding, "updated")
        return report

    def findings(self, *, since: str | None = None, types: list[str] | None = None, archived: bool = False) -> list[Finding]:
        """Kept findings last seen at or after ``since`` (ISO 8601), newest first; ``types`` are
        globs (``CredentialAccess:*``); archived ones too when ``archived``."""
        if since is not None:
            since = iso_ms(to_ms(since))
        with self._store() as store:
            return store.findings(since=since, types=types, archived=archived)

    def archive(self, finding_id: str) -> Finding:
        """Mark a finding handled: it leaves the active list; if its subject acts again, a new one opens."""
        with self._store() as store:
            return store.archive(finding_id, iso_ms(int(self.clock() * 1000)))

    def summary(self) -> dict[str, int]:
        with self._store() as store:
            return store.summary()
