"""Summit Photos on the platform's security services: the user pool (accounts and sessions), IAM
policies (who may do what) and the audit log, opened for one process."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from summit.blueprint import Blueprint
from summit.errors import Conflict
from summit.platform import Platform
from summit.security.audit import AuditLog
from summit.security.identity import KeySet, PoolConfig, UserPool
from summit.security.identity import migrations as identity_migrations
from summit.security.policies.access import Access
from summit.security.identity.throttle import Limits
from summit.security.passwords import PasswordHasher

from photos import migrations, policies
from photos.services.accounts import RESERVED, create_profile


@dataclass
class Security:
    identity: UserPool
    access: Access
    audit: AuditLog


def migrate(sync_url: str) -> None:
    """The platform's tables first (the app's migrations may read them), then the app's."""
    identity_migrations.upgrade(sync_url)
    migrations.upgrade(sync_url)


async def open_security(platform: Platform, blueprint: Blueprint) -> Security:
    audit = AuditLog(blueprint.data_dir)
    await asyncio.to_thread(audit.start)

    async def record(action: str, *, user_id: Any = None, result: str = "success", reason: str | None = None, **_: Any) -> None:
        if result not in ("success", "failure"):  # e.g. "mfa_required": the step succeeded, say which
            result, reason = "success", reason or result
        await audit.record(action, user_id=user_id, result=result, reason=reason)

    auth = blueprint.auth
    pool = UserPool(
        db=platform.db,
        cache=platform.cache,
        mailer=platform.mail,
        keys=await asyncio.to_thread(KeySet, blueprint.data_dir / "keys" / "identity"),
        hasher=PasswordHasher(time_cost=auth.argon2_time_cost, memory_cost=auth.argon2_memory_kib),
        config=PoolConfig(issuer=blueprint.issuer, access_ttl=auth.access_token_ttl_seconds, id_ttl=auth.id_token_ttl_seconds,
                          refresh_ttl=auth.refresh_token_ttl_seconds),
        limits=Limits(account=auth.lockout_account_threshold, address=auth.lockout_address_threshold),
        audit=record,
        reserved_usernames=RESERVED,
    )
    pool.on_confirmed.append(create_profile)
    access = Access(platform.db, baseline=[policies.BASELINE])
    for group, (name, document) in policies.GROUP_POLICIES.items():
        try:
            await access.create_group(group)
        except Conflict:
            pass
        await access.put_policy(name, document)
        await access.attach(name, "group", group)
    return Security(pool, access, audit)
