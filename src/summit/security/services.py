"""The security services of one process, opened together from the blueprint: the user pool
(``identity``), the IAM authorizer (``access``) and the audit log (``audit``).

The application hands over only what is its own (the policies its users get, the usernames its
routes need, the hook that adds its rows to a new account); how the pool is keyed, hashed,
throttled and audited is the platform's, read from the blueprint's ``[auth]`` section::

    security = await Security.open(platform, baseline=[BASELINE], group_policies=GROUPS,
                                   reserved_usernames=RESERVED, on_confirmed=[create_profile])
    security.install(app)            # the routers, middleware and dependencies find it there
    ...
    await security.close()
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from summit.errors import Conflict
from summit.platform import Platform
from summit.security.audit import AuditLog
from summit.security.identity import KeySet, PoolConfig, UserPool
from summit.security.identity.pool import Hook
from summit.security.identity.throttle import Limits
from summit.security.passwords import PasswordHasher
from summit.security.policies.access import Access

Document = Mapping[str, Any]


@dataclass
class Security:
    identity: UserPool  # accounts, sessions, tokens (like Cognito)
    access: Access  # who may do what (IAM-style policies)
    audit: AuditLog  # who did what (like CloudTrail)

    @classmethod
    async def open(
        cls,
        platform: Platform,
        *,
        baseline: Iterable[Document] = (),
        group_policies: Mapping[str, tuple[str, Document]] | None = None,
        reserved_usernames: Iterable[str] = (),
        on_confirmed: Iterable[Hook] = (),
    ) -> Security:
        """Start this process's audit chain, open the user pool on the platform's ports, and make
        sure each group of ``group_policies`` (group -> (policy name, document)) exists with its
        policy attached. ``baseline`` applies to every signed-in user."""
        blueprint, auth = platform.blueprint, platform.blueprint.auth
        audit = AuditLog(blueprint.data_dir)
        await asyncio.to_thread(audit.start)
        try:
            pool = UserPool(
                db=platform.db,
                cache=platform.cache,
                mailer=platform.mail,
                keys=await asyncio.to_thread(KeySet, blueprint.data_dir / "keys" / "identity"),
                hasher=PasswordHasher(time_cost=auth.argon2_time_cost, memory_cost=auth.argon2_memory_kib),
                config=PoolConfig(issuer=blueprint.issuer, access_ttl=auth.access_token_ttl_seconds,
                                  id_ttl=auth.id_token_ttl_seconds, refresh_ttl=auth.refresh_token_ttl_seconds),
                limits=Limits(account=auth.lockout_account_threshold, address=auth.lockout_address_threshold),
                audit=_pool_events_to(audit),
                reserved_usernames=frozenset(reserved_usernames),
            )
            pool.on_confirmed.extend(on_confirmed)
            await pool.seal_plaintext()  # emails an upgrade or an app's migration left in clear (usually none)
            access = Access(platform.db, baseline=list(baseline))
            for group, (name, document) in (group_policies or {}).items():
                await _attach_to_group(access, group, name, document)
        except BaseException:
            await asyncio.to_thread(audit.close)
            raise
        return cls(pool, access, audit)

    def install(self, app: Any) -> None:  # noqa: ANN401  (any Starlette or FastAPI app)
        """Put the services where the pool's routers, the admin API, the browser-session
        middleware and the audit middleware look for them: on ``app.state``."""
        app.state.security = self
        app.state.identity, app.state.access, app.state.audit = self.identity, self.access, self.audit

    async def close(self) -> None:
        """Seal this process's audit chain (the ports belong to the platform, which closes them)."""
        await asyncio.to_thread(self.audit.close)


async def _attach_to_group(access: Access, group: str, name: str, document: Document) -> None:
    try:
        await access.create_group(group)
    except Conflict:
        pass  # made by an earlier start, or by another process starting now
    await access.put_policy(name, document)
    await access.attach(name, "group", group)


def _pool_events_to(audit: AuditLog):  # noqa: ANN202
    """The pool reports an authentication step's outcome ("success", "failure", "mfa_required");
    the audit log records success or failure, so an intermediate outcome is a success whose
    reason says which."""

    async def record(action: str, *, user_id: Any = None, result: str = "success", reason: str | None = None, **_: Any) -> None:  # noqa: ANN401
        if result not in ("success", "failure"):
            result, reason = "success", reason or result
        await audit.record(action, user_id=user_id, result=result, reason=reason)

    return record
