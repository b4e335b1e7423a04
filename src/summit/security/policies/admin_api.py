"""The IAM admin API of the user pool: groups, their members, roles, and policies. Every call is itself
authorized by policy (``iam:*`` actions on ``arn:summit:iam::<account>:group/...`` and
``...:policy/...``), so only principals allowed those actions (the ``admins`` group) get through."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from sqlalchemy import select
from starlette.responses import Response

from summit.errors import NotFound
from summit.security.identity import schema
from summit.security.policies.access import ACCOUNT, Access, check_name, group_arn, role_arn
from summit.security.identity.api import _JSON
from summit.security.identity.records import Principal
from summit.security.identity.web import require_principal

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])
Me = Annotated[Principal, Depends(require_principal)]


async def access_of(request: Request) -> Access:  # async: FastAPI runs a plain def dependency on a thread
    return request.app.state.access


AccessDep = Annotated[Access, Depends(access_of)]


def policy_arn(name: str) -> str:
    return f"arn:summit:iam::{ACCOUNT}:policy/{name}"


async def _user_id(request: Request, username: str) -> int:
    async with request.app.state.identity.db.read() as conn:
        row = (await conn.execute(select(schema.users.c.id).where(schema.users.c.username == username.strip().lower()[:64]))).first()
    if row is None:
        raise NotFound("no such user")
    return row.id


@router.get("/groups")
async def list_groups(me: Me, access: AccessDep) -> Response:
    """Groups with their members and attached policies."""
    await access.authorize(me, "iam:ListGroups", group_arn("*"))
    return _JSON({"groups": await access.groups()})


@router.put("/groups/{group}", status_code=201)
async def create_group(group: str, me: Me, access: AccessDep) -> Response:
    await access.authorize(me, "iam:CreateGroup", group_arn(check_name(group, "group")))
    await access.create_group(group)
    return Response(status_code=201)


@router.put("/groups/{group}/members/{username}", status_code=204)
async def add_member(group: str, username: str, request: Request, me: Me, access: AccessDep) -> Response:
    await access.authorize(me, "iam:AddUserToGroup", group_arn(check_name(group, "group")))
    await access.add_member(group, await _user_id(request, username))
    return Response(status_code=204)


@router.delete("/groups/{group}/members/{username}", status_code=204)
async def remove_member(group: str, username: str, request: Request, me: Me, access: AccessDep) -> Response:
    await access.authorize(me, "iam:RemoveUserFromGroup", group_arn(check_name(group, "group")))
    await access.remove_member(group, await _user_id(request, username))
    return Response(status_code=204)


@router.put("/policies/{name}", status_code=204)
async def put_policy(name: str, me: Me, access: AccessDep, document: Annotated[dict[str, Any], Body()]) -> Response:
    """Create or replace a named policy (AWS IAM JSON; validated)."""
    await access.authorize(me, "iam:CreatePolicy", policy_arn(check_name(name, "policy")))
    await access.put_policy(name, document)
    return Response(status_code=204)


@router.put("/groups/{group}/policies/{name}", status_code=204)
async def attach_group_policy(group: str, name: str, me: Me, access: AccessDep) -> Response:
    await access.authorize(me, "iam:AttachGroupPolicy", group_arn(check_name(group, "group")))
    await access.attach(name, "group", group)
    return Response(status_code=204)


@router.delete("/groups/{group}/policies/{name}", status_code=204)
async def detach_group_policy(group: str, name: str, me: Me, access: AccessDep) -> Response:
    await access.authorize(me, "iam:DetachGroupPolicy", group_arn(check_name(group, "group")))
    await access.detach(name, "group", group)
    return Response(status_code=204)


@router.put("/roles/{role}", status_code=204)
async def put_role(role: str, me: Me, access: AccessDep, trust_policy: Annotated[dict[str, Any], Body()]) -> Response:
    """Create or replace a role; the body is its trust policy (who may assume it: a resource policy
    with a Principal, e.g. {"AWS": "arn:summit:iam::000000000000:user/alice"})."""
    await access.authorize(me, "iam:CreateRole", role_arn(check_name(role, "role")))
    await access.put_role(role, trust_policy)
    return Response(status_code=204)


@router.put("/roles/{role}/policies/{name}", status_code=204)
async def attach_role_policy(role: str, name: str, me: Me, access: AccessDep) -> Response:
    await access.authorize(me, "iam:AttachRolePolicy", role_arn(check_name(role, "role")))
    await access.attach(name, "role", role)
    return Response(status_code=204)


@router.delete("/roles/{role}/policies/{name}", status_code=204)
async def detach_role_policy(role: str, name: str, me: Me, access: AccessDep) -> Response:
    await access.authorize(me, "iam:DetachRolePolicy", role_arn(check_name(role, "role")))
    await access.detach(name, "role", role)
    return Response(status_code=204)
