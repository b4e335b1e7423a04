"""``verify``: check every chain of the audit log, and report each problem with a specific message.

Per chain: every digest is signed by this log's key and links to the one before it; digests run
from 0 without a gap, each in its own place; every sealed file is present and hashes to what its
digest says; after the last digest comes nothing (a closed chain), the open file of a live writer,
or the unsealed file a crashed writer left (a warning). Across chains: what each chain's first
digest witnessed about the others (their heads, and the unsealed files of dead writers) still holds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from summit.security.audit.format import AUDIT_DIR, digest_name, file_name
from summit.security.audit.keys import KEY_FILE, PUBLIC_KEY_FILE, SEALED_KEY_FILE, key_id, load_public_key, signature_valid
from summit.security.audit.read import ChainDir, Finding, list_chains, load_digest, sha256_file, writer_alive
from summit.security.audit.witness import check_witnesses


@dataclass
class ChainSummary:
    chain: str
    state: str  # closed | live | unsealed | broken
    files: int = 0
    records: int = 0
    first_time: str | None = None
    last_time: str | None = None


@dataclass
class Report:
    data_dir: str
    key_id: str | None = None
    chains: list[ChainSummary] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]

    def summary(self) -> dict:
        firsts = [c.first_time for c in self.chains if c.first_time]
        lasts = [c.last_time for c in self.chains if c.last_time]
        states = [c.state for c in self.chains]
        return {
            "chains": len(self.chains),
            **{state: states.count(state) for state in ("closed", "live", "unsealed", "broken")},
            "files": sum(c.files for c in self.chains),
            "records": sum(c.records for c in self.chains),
            "first_time": min(firsts, default=None),
            "last_time": max(lasts, default=None),
        }

    def as_dict(self) -> dict:
        levels = {"errors": "error", "warnings": "warning", "notes": "note"}
        return {
            "ok": self.ok,
            "data_dir": self.data_dir,
            "key_id": self.key_id,
            "summary": self.summary(),
            **{name: [asdict(f) for f in self.findings if f.level == level] for name, level in levels.items()},
            "chains": [asdict(c) for c in self.chains],
        }


def verify(data_dir: Path, *, public_key: Path | None = None) -> Report:
    """Verify the audit log in ``data_dir`` against its public key, or against ``public_key``
    (a PEM file kept elsewhere: then a replaced key pair in the data directory is caught too).
    Raises ValueError if ``public_key`` cannot be read."""
    report = Report(str(data_dir))
    chains, strays = list_chains(data_dir / AUDIT_DIR)
    keys = data_dir / "keys"
    if public_key is None and not (keys / PUBLIC_KEY_FILE).exists():
        if chains:
            report.findings.append(Finding("error", "public_key_missing", f"{keys / PUBLIC_KEY_FILE} is missing: nothing can be verified"))
        return report
    pub = load_public_key(public_key or keys / PUBLIC_KEY_FILE)
    report.key_id = key_id(pub)
    if (keys / KEY_FILE).exists():
        report.findings.append(Finding("warning", "plaintext_key", f"{keys / KEY_FILE} is the signing key in plaintext: "
                                       "start the app (or `summit up`) once to seal it under the KMS, which removes it"))
    for private in (keys / KEY_FILE, keys / SEALED_KEY_FILE):
        if private.exists() and private.stat().st_mode & 0o077:
            mode = oct(private.stat().st_mode & 0o777)
            report.findings.append(Finding("warning", "key_permissions", f"{private} is readable by others (mode {mode}): it should be 0600"))
    for name in strays:
        report.findings.append(Finding("error", "unexpected_entry", f"{AUDIT_DIR}/{name} is not a chain directory (added or renamed)"))
    valid: dict[str, dict[int, dict]] = {}
    for chain in chains:
        checker = _ChainCheck(chain, pub, report.key_id)
        valid[chain.chain_id] = checker.run()
        report.chains.append(checker.summary)
        report.findings.extend(checker.findings)
    report.findings.extend(check_witnesses(chains, valid))
    seen, unique = set(), []
    for finding in report.findings:  # a witness may repeat what a chain's own check found
        key = (finding.level, finding.code, finding.chain, finding.file)
        if key not in seen:
            seen.add(key)
            unique.append(finding)
    report.findings = unique
    return report


class _ChainCheck:
    def __init__(self, chain: ChainDir, pub: Ed25519PublicKey, kid: str):
        self.chain, self.pub, self.kid = chain, pub, kid
        self.findings: list[Finding] = []
        self.summary = ChainSummary(chain.chain_id, "closed")

    def add(self, level: str, code: str, message: str, file: str | None = None) -> None:
        self.findings.append(Finding(level, code, message, self.chain.chain_id, file))

    def run(self) -> dict[int, dict]:
        digests = self._digests()
        named = set(digests) | set(self.chain.digests)
        top = max(named, default=-1)
        for seq in range(top + 1):
            if seq not in named:
                what = f"{file_name(seq)} is not sealed" if seq else "the chain's first digest"
                self.add("error", "digest_missing", f"{digest_name(seq)} is missing ({what})", digest_name(seq))
        for seq, digest in sorted(digests.items()):
            expected = None if seq == 0 else digests.get(seq - 1, {}).get("signature", digest.get("prev_signature"))
            if digest.get("prev_signature") != expected:
                self.add(
                    "error",
                    "broken_link",
                    f"{digest_name(seq)} does not follow {digest_name(seq - 1)}: replaced or reordered",
                    digest_name(seq),
                )
        final = min((s for s, d in digests.items() if d.get("final")), default=None)
        for seq in sorted(s for s in named if final is not None and s > final):
            self.add(
                "error",
                "after_final",
                f"{digest_name(seq)} comes after the chain's final digest {digest_name(final)}",
                digest_name(seq),
            )
        self._sealed_files(digests)
        self._tail(digests, top, final)
        return digests

    def _digests(self) -> dict[int, dict]:
        digests: dict[int, dict] = {}
        for seq, path in sorted(self.chain.digests.items()):
            try:
                digest = load_digest(path)
            except ValueError as error:
                self.add("error", "digest_unreadable", f"{path.name} is {error}", path.name)
                continue
            if digest.get("key_id") != self.kid:
                self.add(
                    "error",
                    "wrong_key",
                    f"{path.name} is signed by key {digest.get('key_id')}, not by this log's key {self.kid}",
                    path.name,
                )
            elif not signature_valid(self.pub, digest):
                self.add(
                    "error",
                    "bad_signature",
                    f"{path.name}: its signature does not verify (the digest was altered, or signed with another key)",
                    path.name,
                )
            elif digest.get("chain") != self.chain.chain_id:
                self.add("error", "digest_foreign", f"{path.name} belongs to chain {digest.get('chain')} (copied or moved here)", path.name)
            elif digest["seq"] in digests:
                self.add("error", "digest_duplicate", f"{path.name} repeats digest {digest['seq']}", path.name)
            else:
                if digest["seq"] != seq:
                    self.add(
                        "error",
                        "digest_misplaced",
                        f"{path.name} holds {digest_name(digest['seq'])}: digests renamed or reordered",
                        path.name,
                    )
                digests[digest["seq"]] = digest
        return digests

    def _count(self, records: int, first: str | None, last: str | None) -> None:
        summary = self.summary
        summary.files += 1
        summary.records += records
        if first:
            summary.first_time = min(summary.first_time or first, first)
        if last:
            summary.last_time = max(summary.last_time or last, last)

    def _sealed_files(self, digests: dict[int, dict]) -> None:
        by_hash = {d.get("sha256"): s for s, d in digests.items() if d.get("file")}
        for seq, digest in sorted(digests.items()):
            name = digest.get("file")
            if seq == 0 or name is None:
                if seq in self.chain.files:
                    self.add(
                        "error",
                        "unexpected_file",
                        f"{file_name(seq)} is not part of the chain (its digest seals no file)",
                        file_name(seq),
                    )
                continue
            if name != file_name(seq):
                self.add("error", "digest_misplaced", f"{digest_name(seq)} seals a file named {name!r}", digest_name(seq))
            path = self.chain.files.get(seq)
            if path is None:
                span = f"{digest.get('records')} records, {digest.get('first_time')} to {digest.get('last_time')}"
                self.add("error", "file_missing", f"{file_name(seq)} is missing (sealed by {digest_name(seq)}: {span})", file_name(seq))
                continue
            sha, size = sha256_file(path)
            sealed = digest.get("bytes", -1)
            if sha == digest.get("sha256") and size == sealed:
                self._count(digest.get("records", 0), digest.get("first_time"), digest.get("last_time"))
            elif by_hash.get(sha, seq) != seq:
                self.add(
                    "error",
                    "file_misplaced",
                    f"{path.name} holds what was sealed as {file_name(by_hash[sha])}: files swapped or renamed",
                    path.name,
                )
            elif size < sealed:
                self.add("error", "file_truncated", f"{path.name} is truncated: {size} of {sealed} sealed bytes left", path.name)
            elif size > sealed:
                self.add("error", "file_extended", f"{path.name} has {size - sealed} bytes more than were sealed", path.name)
            else:
                self.add(
                    "error",
                    "file_changed",
                    f"{path.name} was changed: same size, but its SHA-256 is not the one sealed in {digest_name(seq)}",
                    path.name,
                )

    def _tail(self, digests: dict[int, dict], top: int, final: int | None) -> None:
        tail = sorted(s for s in self.chain.files if s > top)
        for name in self.chain.others:
            self.add("error", "unexpected_entry", f"{name} in the chain's directory is not part of the chain (added or renamed)", name)
        if final is not None:
            for seq in tail:
                self.add("error", "after_final", f"{file_name(seq)} comes after the chain's final digest", file_name(seq))
            return
        counts = [self._tail_file(seq) for seq in tail]
        if top == -1 and any(counts):  # records are taken only once digest 0 is written
            self.add("error", "digest_missing", f"{digest_name(0)} is missing (the chain's first digest)", digest_name(0))
        if top >= 0 and top not in digests:
            self.summary.state = "broken"  # the last digest is invalid (reported): where the chain ends is unknown
            return
        first = max(top + 1, 1)  # files count from 1
        if tail and tail != list(range(first, first + len(tail))):
            self.add(
                "error",
                "file_missing",
                f"unsealed files {', '.join(map(file_name, tail))} do not follow {digest_name(top)} without a gap",
            )
        if writer_alive(self.chain.path):
            self.summary.state = "live"
        elif tail:
            self.summary.state = "unsealed"
            if len(tail) > 2 or any(counts[1:]):
                self.add(
                    "error",
                    "digest_missing",
                    f"{len(tail)} files with records follow the last digest {digest_name(top)}: a crash leaves one, so digests were deleted",
                )
            self.add(
                "warning",
                "unsealed",
                f"{', '.join(map(file_name, tail))} unsealed: the writer stopped without closing (a crash or kill); "
                f"its {sum(counts)} records are not covered by a digest",
                file_name(tail[0]),
            )
        elif not self.chain.digests:
            self.summary.state = "broken"
            self.add("warning", "empty_chain", "the chain holds nothing: its writer died while starting")
        else:
            self.summary.state = "broken"
            self.add(
                "error",
                "no_final_digest",
                f"the chain ends at {digest_name(top)} without a final digest, and no unsealed file follows: its last file(s) and digest(s) were deleted",
            )

    def _tail_file(self, seq: int) -> int:
        """Check an unsealed file's header; count its records (a torn last line is not one)."""
        path = self.chain.files[seq]
        data = path.read_bytes()
        if not data:
            return 0  # created, header not yet written (a live writer, or a crash at that instant)
        lines = data.split(b"\n")
        try:
            header = orjson.loads(lines[0])
            where = (header.get("chain"), header.get("seq"))
        except (orjson.JSONDecodeError, AttributeError):
            where = None
        if where != (self.chain.chain_id, seq):
            self.add(
                "error",
                "file_misplaced",
                f"{path.name}'s header does not name it as file {seq} of this chain: moved, renamed or altered",
                path.name,
            )
        records = [line for line in lines[1:] if line]
        times = []
        for line in records:
            try:
                times.append(orjson.loads(line)["time"])
            except (orjson.JSONDecodeError, KeyError, TypeError):
                pass
        self._count(len(times), min(times, default=None), max(times, default=None))
        return len(times)
