"""IAM for the user pool: groups, roles, named policies attached to users, groups and roles,
permission boundaries, and an authorizer that evaluates a request with summit's IAM policy engine.

Every signed-in user is ``arn:summit:iam::<ACCOUNT>:user/<username>``; the application gives a
baseline policy that applies to every user (the app's own rules, e.g. "authors manage their own
posts"), and groups such as ``moderators`` or ``admins`` get more through attached policies.
A role is assumed for a while (``sts:AssumeRole``, allowed by the role's trust policy): a session
of the role is ``arn:summit:iam::<ACCOUNT>:assumed-role/<role>/<username>`` and has exactly the
role's policies, as in AWS.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, insert, select

from summit.errors import Conflict, Forbidden, Invalid, NotFound
from summit.ports import Connection, Database, IntegrityError
from summit.security.identity import schema
from summit.security.identity.records import Principal
from summit.security.policies import ALLOW, Policy, PolicyError, Request, evaluate, parse_policy

ACCOUNT = "000000000000"
g, gm, pol, att, rl = schema.groups.c, schema.group_members.c, schema.policies.c, schema.attachments.c, schema.roles.c
TARGET_KINDS = ("user", "group", "role", "boundary")


def user_arn(username: str) -> str:
    return f"arn:summit:iam::{ACCOUNT}:user/{username}"


def group_arn(name: str) -> str:
    return f"arn:summit:iam::{ACCOUNT}:group/{name}"


def role_arn(name: str) -> str:
    return f"arn:summit:iam::{ACCOUNT}:role/{name}"


def principal_arn(principal: Principal) -> str:
    if principal.role:
        return f"arn:summit:iam::{ACCOUNT}:assumed-role/{principal.role}/{principal.username}"
    return user_arn(principal.username)


def check_name(value: object, what: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 64 or not all(ch.isascii() and (ch.isalnum() or ch in "+=,.@_-") for ch in value):
        raise Invalid(f"{what} must be 1-64 letters, digits or +=,.@_-", field=what)
    return value


class Access:
    def __init__(self, db: Database, *, baseline: list[Mapping[str, Any]] = ()):  # noqa: B006
        self.db = db
        self.baseline: list[Policy] = [parse_policy(doc) for doc in baseline]
        self._parsed: dict[str, tuple[str, Policy]] = {}  # name -> (document text, parsed)

    # ---- authorizing ----------------------------------------------------------------------------
    async def authorize(self, principal: Principal, action: str, resource: str, context: Mapping[str, Any] | None = None,
                        *, message: str | None = None) -> None:
        """Raise Forbidden (with ``message``, if given) unless the principal's policies allow ``action`` on ``resource``."""
        if principal.role:  # a role session has the role's policies, and only those
            identity, boundaries = await self._policies_of_role(principal.role), []
        else:
            identity, boundaries = await self._policies_of(principal.user_id)
            identity = [*self.baseline, *identity]
        ctx = {"aws:userid": str(principal.user_id), "aws:username": principal.username, "aws:TokenIssueTime": principal.issued_at, **(context or {})}
        request = Request(principal_arn(principal), action, resource, ctx)
        decision = evaluate(request, identity_policies=identity, permission_boundaries=boundaries)
        if decision.decision != ALLOW:
            raise Forbidden(message or f"not allowed: {action} on this resource ({decision.decision})")

    async def allowed(self, principal: Principal, action: str, resource: str, context: Mapping[str, Any] | None = None) -> bool:
        try:
            await self.authorize(principal, action, resource, context)
        except Forbidden:
            return False
        return True

    async def _policies_of(self, user_id: int) -> tuple[list[Policy], list[Policy]]:
        async with self.db.read() as conn:
            groups = [row.group_name for row in await conn.execute(select(gm.group_name).where(gm.user_id == user_id))]
            rows = (await conn.execute(
                select(att.target_kind, pol.name, pol.document)
                .select_from(schema.attachments.join(schema.policies, pol.name == att.policy_name))
                .where(((att.target_kind.in_(("user", "boundary"))) & (att.target == str(user_id)))
                       | ((att.target_kind == "group") & (att.target.in_(groups))))
            )).all()
        identity, boundaries = [], []
        for row in rows:
            (boundaries if row.target_kind == "boundary" else identity).append(self._parse(row.name, row.document))
        return identity, boundaries

    async def _policies_of_role(self, role: str) -> list[Policy]:
        async with self.db.read() as conn:
            rows = (await conn.execute(
                select(pol.name, pol.document)
                .select_from(schema.attachments.join(schema.policies, pol.name == att.policy_name))
                .where(att.target_kind == "role", att.target == role)
            )).all()
        return [self._parse(row.name, row.document) for row in rows]

    async def assume_role(self, principal: Principal, role: object) -> str:
        """Check that ``principal`` may assume ``role`` (its trust policy, and the caller's own
        policies, as AWS evaluates sts:AssumeRole in one account); returns the role's ARN."""
        role = check_name(role, "role")
        if principal.role:
            raise Forbidden("a role session cannot assume another role: use your own sign-in")
        async with self.db.read() as conn:
            row = (await conn.execute(select(rl.trust_policy).where(rl.name == role))).first()
        if row is None:
            raise NotFound(f"no role {role!r}")
        identity, boundaries = await self._policies_of(principal.user_id)
        request = Request(user_arn(principal.username), "sts:AssumeRole", role_arn(role),
                          {"aws:userid": str(principal.user_id), "aws:username": principal.username})
        decision = evaluate(request, identity_policies=[*self.baseline, *identity], permission_boundaries=boundaries,
                            resource_policy=self._parse(f"trust:{role}", row.trust_policy, kind="resource"))
        if decision.decision != ALLOW:
            raise Forbidden(f"not allowed to assume role {role!r}: its trust policy does not name you ({decision.decision})")
        return role_arn(role)

    def _parse(self, name: str, document: str, kind: str = "identity") -> Policy:
        cached = self._parsed.get(name)
        if cached is None or cached[0] != document:
            cached = self._parsed[name] = (document, parse_policy(json.loads(document), kind=kind))
        return cached[1]

    # ---- managing -------------------------------------------------------------------------------
    async def put_policy(self, name: object, document: object) -> None:
        """Create or replace a named policy; the document is validated like AWS validates it."""
        await self._put_document(schema.policies, "document", check_name(name, "policy"), document, "identity", "policy")

    async def put_role(self, name: object, trust_policy: object) -> None:
        """Create or replace a role with its trust policy (a resource policy: who may assume it)."""
        await self._put_document(schema.roles, "trust_policy", check_name(name, "role"), trust_policy, "resource", "trust policy")

    async def _put_document(self, table, column: str, name: str, document: object, kind: str, what: str) -> None:  # noqa: ANN001
        try:
            parse_policy(document, kind=kind)
        except PolicyError as error:
            raise Invalid(f"invalid {what}: {error}", field="document") from None
        async with self.db.write() as conn:
            await conn.execute(delete(table).where(table.c.name == name))
            await conn.execute(insert(table).values(name=name, created_at=time.time(), **{column: json.dumps(document, sort_keys=True)}))

    async def create_group(self, name: object) -> None:
        name = check_name(name, "group")
        try:
            async with self.db.write() as conn:
                await conn.execute(insert(schema.groups).values(name=name, created_at=time.time()))
        except IntegrityError:
            raise Conflict(f"group {name!r} exists already") from None

    async def add_member(self, group: object, user_id: int) -> None:
        group = check_name(group, "group")
        async with self.db.write() as conn:
            await self._require(conn, schema.groups, g.name == group, f"no group {group!r}")
            await self._require(conn, schema.users, schema.users.c.id == user_id, "no such user")
            if (await conn.execute(select(gm.user_id).where(gm.group_name == group, gm.user_id == user_id))).first() is None:
                await conn.execute(insert(schema.group_members).values(group_name=group, user_id=user_id))

    async def remove_member(self, group: object, user_id: int) -> None:
        async with self.db.write() as conn:
            await conn.execute(delete(schema.group_members).where(gm.group_name == group, gm.user_id == user_id))

    async def attach(self, policy: object, kind: str, target: str) -> None:
        """Attach a policy to a user (target: user id), a group (target: name), or as a user's boundary."""
        if kind not in TARGET_KINDS:
            raise Invalid(f"attach to one of {', '.join(TARGET_KINDS)}", field="kind")
        async with self.db.write() as conn:
            await self._require(conn, schema.policies, pol.name == policy, f"no policy {policy!r}")
            if kind == "group":
                await self._require(conn, schema.groups, g.name == target, f"no group {target!r}")
            if kind == "role":
                await self._require(conn, schema.roles, rl.name == target, f"no role {target!r}")
            exists = await conn.execute(select(att.policy_name).where(att.policy_name == policy, att.target_kind == kind, att.target == target))
            if exists.first() is None:
                await conn.execute(insert(schema.attachments).values(policy_name=policy, target_kind=kind, target=target))

    async def detach(self, policy: object, kind: str, target: str) -> None:
        async with self.db.write() as conn:
            await conn.execute(delete(schema.attachments).where(att.policy_name == policy, att.target_kind == kind, att.target == target))

    async def groups(self) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            members = (await conn.execute(select(gm.group_name, schema.users.c.username).select_from(
                schema.group_members.join(schema.users, schema.users.c.id == gm.user_id)))).all()
            policies = (await conn.execute(select(att.target, att.policy_name).where(att.target_kind == "group"))).all()
            names = [row.name for row in await conn.execute(select(g.name).order_by(g.name))]
        return [{"name": n, "members": sorted(m.username for m in members if m.group_name == n),
                 "policies": sorted(p.policy_name for p in policies if p.target == n)} for n in names]

    @staticmethod
    async def _require(conn: Connection, table, where, message: str) -> None:  # noqa: ANN001
        if (await conn.execute(select(table).where(where).limit(1))).first() is None:
            raise NotFound(message)
