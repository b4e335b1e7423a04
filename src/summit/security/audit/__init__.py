"""The audit log, like CloudTrail: who did what, on what, when, from where, with what result.

Every state-changing API call and every authentication event is recorded by user ID (never by
personal data) in append-only JSON Lines files under ``<data_dir>/audit/``, one chain per writing
process. When a file is sealed, its SHA-256 goes into a digest that carries the previous digest's
signature and is signed with Ed25519 (``<data_dir>/keys/audit-signing.key.kms``, stored only
encrypted by the KMS; the public key beside it), so each chain proves the order and completeness of its files.
``summit audit verify`` checks the chains, ``summit audit search`` finds records.

Per process (in the app's lifespan, after any fork)::

    audit = AuditLog(blueprint.data_dir)
    await asyncio.to_thread(audit.start)
    ...
    await asyncio.to_thread(audit.close)

Per request (middleware), so that records carry the source address, user agent and request id::

    token = bind_origin(Origin.from_scope(scope, request_id=rid))
    try: ...
    finally: reset_origin(token)

Then, wherever something happens::

    await audit.record("auth:SignIn", user_id=user.id, resource="arn:summit:auth:::session", status=200)
    await audit.record("auth:SignIn", result="failure", reason="bad_password", status=401)

See ``docs/audit.md`` for the format, what verification proves and what it does not.
"""

from summit.security.audit.format import AuditError, AuditEvent, Origin, bind_origin, current_origin, reset_origin
from summit.security.audit.read import Finding, Query, search
from summit.security.audit.verifier import Report, verify
from summit.security.audit.writer import AuditLog

__all__ = [
    "AuditError",
    "AuditEvent",
    "AuditLog",
    "Finding",
    "Origin",
    "Query",
    "Report",
    "bind_origin",
    "current_origin",
    "reset_origin",
    "search",
    "verify",
]


def __dir__() -> list[str]:
    """``dir()`` shows what the package offers, not the modules it is built from (PEP 562)."""
    return sorted(__all__)
