"""IAM roles: a trust policy says who may assume a role; a session of the role has exactly the role's
policies (neither the user's own nor the app's baseline), as AWS evaluates them."""

from __future__ import annotations

import httpx

from summit.security.audit import Query, search
from summit.security.policies.access import ACCOUNT


def user_arn(name: str) -> str:
    return f"arn:summit:iam::{ACCOUNT}:user/{name}"


MODERATE = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["photos:DeletePost", "photos:DeleteComment"], "Resource": "*"}]}


async def _admin(app, make_user):  # noqa: ANN001, ANN202
    admin = await make_user()
    await app.state.access.add_member("admins", int(admin.id))
    return admin


async def test_a_trusted_user_assumes_a_role_and_acts_with_its_policies_only(app, client: httpx.AsyncClient, make_user, make_post) -> None:  # noqa: ANN001
    admin = await _admin(app, make_user)
    alice, bob, carol = await make_user(), await make_user(), await make_user()
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": user_arn(alice.username)}, "Action": "sts:AssumeRole"}]}
    assert (await client.put("/api/v1/admin/roles/moderator", headers=admin.auth, json=trust)).status_code == 204
    assert (await client.put("/api/v1/admin/policies/Moderate", headers=admin.auth, json=MODERATE)).status_code == 204
    assert (await client.put("/api/v1/admin/roles/moderator/policies/Moderate", headers=admin.auth)).status_code == 204

    bobs = await make_post(bob, "bob's photo")
    alices = await make_post(alice, "alice's photo")
    # alice's own sign-in cannot delete bob's post
    assert (await client.delete(f"/api/v1/posts/{bobs['id']}", headers=alice.auth)).status_code == 403
    # carol is not named by the trust policy
    refused = await client.post("/api/v1/sessions/role", headers=carol.auth, json={"role": "moderator"})
    assert refused.status_code == 403 and "trust policy" in refused.json()["error"]["message"]

    r = await client.post("/api/v1/sessions/role", headers=alice.auth, json={"role": "moderator"})
    assert r.status_code == 201, r.text
    assert r.json()["role_arn"] == f"arn:summit:iam::{ACCOUNT}:role/moderator"
    as_role = {"Authorization": f"Bearer {r.json()['access_token']}"}
    # the role session has the role's policies only: it may moderate, but not edit even alice's own post
    assert (await client.patch(f"/api/v1/posts/{alices['id']}", headers=as_role, json={"caption": "x"})).status_code == 403
    assert (await client.delete(f"/api/v1/posts/{bobs['id']}", headers=as_role)).status_code == 204
    assert (await client.get(f"/api/v1/posts/{bobs['id']}")).status_code == 404
    # a role session cannot chain into another role
    chained = await client.post("/api/v1/sessions/role", headers=as_role, json={"role": "moderator"})
    assert chained.status_code == 403
    # signing out everywhere ends the role session too (same user, older token)
    assert (await client.delete("/api/v1/sessions/all", headers=alice.auth)).status_code == 204
    assert (await client.get("/api/v1/me", headers=as_role)).status_code == 401


async def test_a_deny_on_the_role_and_detaching_take_effect_at_once(app, client: httpx.AsyncClient, make_user, make_post) -> None:  # noqa: ANN001
    admin = await _admin(app, make_user)
    dan, erin = await make_user(), await make_user()
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": user_arn(dan.username)}, "Action": "sts:AssumeRole"}]}
    await client.put("/api/v1/admin/roles/cleaner", headers=admin.auth, json=trust)
    await client.put("/api/v1/admin/policies/Moderate", headers=admin.auth, json=MODERATE)
    await client.put("/api/v1/admin/roles/cleaner/policies/Moderate", headers=admin.auth)
    session = (await client.post("/api/v1/sessions/role", headers=dan.auth, json={"role": "cleaner"})).json()["access_token"]
    as_role = {"Authorization": f"Bearer {session}"}
    first, second = await make_post(erin), await make_post(erin)
    assert (await client.delete(f"/api/v1/posts/{first['id']}", headers=as_role)).status_code == 204
    assert (await client.delete("/api/v1/admin/roles/cleaner/policies/Moderate", headers=admin.auth)).status_code == 204
    assert (await client.delete(f"/api/v1/posts/{second['id']}", headers=as_role)).status_code == 403


async def test_roles_bad_input_and_authorization(app, client: httpx.AsyncClient, make_user) -> None:  # noqa: ANN001
    admin = await _admin(app, make_user)
    frank = await make_user()
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"}]}
    # only admins manage roles
    assert (await client.put("/api/v1/admin/roles/r1", headers=frank.auth, json=trust)).status_code == 403
    # a trust policy is a resource policy: it needs a Principal
    no_principal = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole"}]}
    bad = await client.put("/api/v1/admin/roles/r1", headers=admin.auth, json=no_principal)
    assert bad.status_code == 422 and "Principal" in bad.json()["error"]["message"]
    assert (await client.put("/api/v1/admin/roles/bad name", headers=admin.auth, json=trust)).status_code == 422
    assert (await client.put("/api/v1/admin/roles/r1/policies/Nope", headers=admin.auth)).status_code == 404
    missing = await client.post("/api/v1/sessions/role", headers=frank.auth, json={"role": "ghost"})
    assert missing.status_code == 404 and "ghost" in missing.json()["error"]["message"]
    assert (await client.post("/api/v1/sessions/role", json={"role": "ghost"})).status_code == 401
    # a role anyone may assume, with no policies: its session may do nothing
    assert (await client.put("/api/v1/admin/roles/empty", headers=admin.auth, json=trust)).status_code == 204
    r = await client.post("/api/v1/sessions/role", headers=frank.auth, json={"role": "empty"})
    assert r.status_code == 201
    assert (await client.get("/api/v1/admin/groups", headers={"Authorization": f"Bearer {r.json()['access_token']}"})).status_code == 403
    # assuming a role is an audited authentication event
    found = search(app.state.ctx.platform.blueprint.data_dir, Query(action="sts:AssumeRole"))
    assert any(record.user_id == frank.id for record in found)
