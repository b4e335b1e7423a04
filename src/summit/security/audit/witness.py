"""Witnesses: what a starting chain vouches for about the others, and checking it later.

A chain cannot prove that its own end (or all of it) was not removed. So when a chain starts, its
digest 0 records the head of every other chain (last digest's position and signature, and state:
final, live or dead) and the SHA-256 of each unsealed file a dead writer left. ``verify`` checks
that all of it still holds.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from summit.security.audit.format import digest_name
from summit.security.audit.keys import signature_valid
from summit.security.audit.read import ChainDir, Finding, head, list_chains, load_chain, load_digest, sha256_file, writer_alive


def witness(audit_dir: Path, public_key: Ed25519PublicKey, exclude: str) -> list[dict]:
    """What a starting chain vouches for in its first digest: the head of every other chain, and
    the hashes of the unsealed files that dead writers left. A chain that the newest earlier
    witness already saw closed or dead cannot legitimately change, so it is covered through that
    witness (which this one covers in turn) and is not read again."""
    chains = [c for c in list_chains(audit_dir)[0] if c.chain_id != exclude]
    latest, seen = None, {}
    for chain in reversed(chains):
        genesis = _genesis(chain, public_key)
        if genesis is not None:
            latest, seen = chain.chain_id, {w.get("chain"): w for w in genesis.get("witness", ())}
            break
    entries = []
    for chain in chains:
        previous = seen.get(chain.chain_id)
        if chain.chain_id != latest and previous and previous.get("state") in ("final", "dead"):
            continue
        # alive first, then the head, from a listing made after: a writer seals its final digest
        # before it lets its lock go, so a chain found not alive has no digest to come (the listing
        # made at the start could witness a chain that closed meanwhile as dead before its end)
        alive = writer_alive(chain.path)
        if not alive:
            chain = load_chain(chain.path)
        top = head(chain, public_key)
        if top is None:
            continue  # still starting, or damaged: verify reports it
        entry = {"chain": chain.chain_id, "seq": top["seq"], "signature": top["signature"]}
        if top.get("final"):
            entry["state"] = "final"
        elif alive:
            entry["state"] = "live"
        else:
            entry["state"] = "dead"
            entry["tail"] = [
                dict(zip(("file", "sha256", "bytes"), (path.name, *sha256_file(path))))
                for seq, path in sorted(chain.files.items())
                if seq > top["seq"]
            ]
        entries.append(entry)
    return entries


def _genesis(chain: ChainDir, public_key: Ed25519PublicKey) -> dict | None:
    if 0 not in chain.digests:
        return None
    try:
        digest = load_digest(chain.digests[0])
    except ValueError:
        return None
    valid = digest["seq"] == 0 and digest.get("chain") == chain.chain_id and signature_valid(public_key, digest)
    return digest if valid else None


def check_witnesses(chains: list[ChainDir], valid: dict[str, dict[int, dict]]) -> list[Finding]:
    """What every chain's digest 0 witnessed still holds; ``valid`` is each chain's validly
    signed digests by position (from its own check)."""
    findings = []
    by_id = {c.chain_id: c for c in chains}
    for chain in chains:
        genesis = valid[chain.chain_id].get(0)
        for entry in (genesis or {}).get("witness", ()):
            target, seq = entry.get("chain"), entry.get("seq")
            who = f"witnessed by chain {chain.chain_id} at {genesis.get('started_at')}"
            if target not in by_id:
                findings.append(Finding("error", "chain_missing", f"chain {target} is missing ({who})", target))
                continue
            digest = valid[target].get(seq)
            if digest is None and seq in by_id[target].digests:
                pass  # present but invalid: the chain's own check said how
            elif digest is None:
                findings.append(Finding("error", "digest_missing", f"{digest_name(seq)} is missing ({who})", target, digest_name(seq)))
            elif digest.get("signature") != entry.get("signature"):
                findings.append(Finding(
                    "error",
                    "witness_mismatch",
                    f"{digest_name(seq)} is not the one {who}: rewritten",
                    target,
                    digest_name(seq),
                ))
            if entry.get("state") == "dead":
                findings.extend(_check_dead(by_id[target], valid[target], entry, who))
    return findings


def _check_dead(chain: ChainDir, digests: dict[int, dict], entry: dict, who: str) -> list[Finding]:
    """A dead writer's chain cannot change: no later digest, and its unsealed files as witnessed."""
    findings = []
    for seq in sorted(s for s in digests if s > entry["seq"]):
        findings.append(Finding(
            "error",
            "after_death",
            f"{digest_name(seq)} was added after the writer died ({who})",
            chain.chain_id,
            digest_name(seq),
        ))
    for item in entry.get("tail", ()):
        path = chain.path / item["file"]
        if not path.exists():
            findings.append(Finding("error", "file_missing", f"unsealed {item['file']} is missing ({who})", chain.chain_id, item["file"]))
            continue
        sha, size = sha256_file(path)
        if sha == item["sha256"] and size == item["bytes"]:
            findings.append(Finding(
                "note",
                "witnessed",
                f"unsealed {item['file']} is unchanged since it was {who}",
                chain.chain_id,
                item["file"],
            ))
            continue
        if size < item["bytes"]:
            code, what = "file_truncated", f"truncated: {size} of {item['bytes']} bytes left"
        elif size > item["bytes"]:
            code, what = "file_extended", f"{size - item['bytes']} bytes longer"
        else:
            code, what = "file_changed", "changed (same size, another SHA-256)"
        findings.append(Finding("error", code, f"unsealed {item['file']} is {what} since it was {who}", chain.chain_id, item["file"]))
    return findings
