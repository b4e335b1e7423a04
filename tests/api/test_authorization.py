"""API: authorization through IAM policies (photos.policies): authors manage their own posts and
comments, the ``moderators`` group may delete any post or comment, ``admins`` may do anything,
including the admin API (/api/v1/admin), where policies are put, validated and attached."""

from __future__ import annotations

from api_helpers import API

from summit.testing.http import assert_error

ADMIN = f"{API}/admin"
DENY_POST_DELETION = {
    "Version": "2012-10-17",
    "Statement": [{"Sid": "NoPostDeletion", "Effect": "Deny", "Action": "photos:DeletePost", "Resource": "arn:summit:photos:::post/*"}],
}


async def _comment(client, user, post_id: str, body: str = "a comment") -> dict:  # noqa: ANN001
    r = await client.post(f"{API}/posts/{post_id}/comments", headers=user.auth, json={"body": body})
    assert r.status_code == 201, r.text
    return r.json()


async def _post(client, post_id: str) -> dict:  # noqa: ANN001
    return (await client.get(f"{API}/posts/{post_id}")).json()


async def test_others_cannot_edit_or_delete_a_post_or_a_comment(client, make_user, make_post):
    alice, bob = await make_user(), await make_user()
    post = await make_post(alice, "alice's")
    comment = await _comment(client, alice, post["id"])
    assert_error(await client.patch(f"{API}/posts/{post['id']}", headers=bob.auth, json={"caption": "pwned"}), 403, "author")
    assert_error(await client.delete(f"{API}/posts/{post['id']}", headers=bob.auth), 403, "author")
    assert_error(await client.delete(f"{API}/comments/{comment['id']}", headers=bob.auth), 403, "author")
    after = await _post(client, post["id"])
    assert after["caption"] == "alice's" and after["comment_count"] == 1
    # the authors themselves may
    assert (await client.patch(f"{API}/posts/{post['id']}", headers=alice.auth, json={"caption": "mine"})).status_code == 200
    assert (await client.delete(f"{API}/comments/{comment['id']}", headers=alice.auth)).status_code == 204


async def test_a_moderator_may_delete_any_post_or_comment_but_not_edit_a_caption(app, client, make_user, make_post, drain):
    alice, bob = await make_user(), await make_user()
    post = await make_post(alice, "alice's #sunset")
    other_post = await make_post(alice, "another")
    comment = await _comment(client, alice, post["id"])
    await drain()
    assert_error(await client.delete(f"{API}/posts/{post['id']}", headers=bob.auth), 403)

    await app.state.access.add_member("moderators", int(bob.id))
    assert_error(await client.patch(f"{API}/posts/{post['id']}", headers=bob.auth, json={"caption": "moderated"}), 403, "author")
    assert (await _post(client, post["id"]))["caption"] == "alice's #sunset"

    r = await client.delete(f"{API}/comments/{comment['id']}", headers=bob.auth)
    assert r.status_code == 204, r.text
    assert (await _post(client, post["id"]))["comment_count"] == 0
    keys = {info.key for info in await app.state.ctx.objects.list()}
    r = await client.delete(f"{API}/posts/{post['id']}", headers=bob.auth)
    assert r.status_code == 204, r.text
    assert_error(await client.get(f"{API}/posts/{post['id']}"), 404)
    await drain()
    assert len({info.key for info in await app.state.ctx.objects.list()}) < len(keys)  # its photo and thumbnails are gone
    # moderating is not authoring: alice, not a moderator, still cannot delete bob's posts
    bobs = await make_post(bob)
    assert_error(await client.delete(f"{API}/posts/{bobs['id']}", headers=alice.auth), 403)

    # membership is checked on every request: leaving the group takes effect at once
    await app.state.access.remove_member("moderators", int(bob.id))
    assert_error(await client.delete(f"{API}/posts/{other_post['id']}", headers=bob.auth), 403)


ADMIN_CALLS = [
    ("GET", "/groups", None),
    ("PUT", "/groups/probation", None),
    ("PUT", "/groups/moderators/members/{username}", None),
    ("DELETE", "/groups/moderators/members/{username}", None),
    ("PUT", "/policies/Anything", {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}),
    ("PUT", "/groups/moderators/policies/AdministratorAccess", None),
    ("DELETE", "/groups/admins/policies/AdministratorAccess", None),
]


async def test_the_admin_api_is_403_for_a_normal_user_and_401_without_a_token(app, client, make_user):
    user = await make_user()
    for method, path, body in ADMIN_CALLS:
        url = ADMIN + path.format(username=user.username)
        assert_error(await client.request(method, url, headers=user.auth, json=body), 403, "not allowed")
        assert_error(await client.request(method, url, json=body), 401)
    groups = {g["name"]: g for g in await app.state.access.groups()}
    assert set(groups) == {"admins", "moderators"}
    assert groups["moderators"]["members"] == [] and groups["moderators"]["policies"] == ["PhotosModerator"]
    assert groups["admins"]["policies"] == ["AdministratorAccess"]


async def test_an_admin_manages_groups_and_policies_and_they_take_effect(app, client, make_user, make_post):
    admin, mod, author = await make_user(), await make_user(), await make_user()
    await app.state.access.add_member("admins", int(admin.id))
    posts = [await make_post(author, f"post {n}") for n in range(4)]
    comment = await _comment(client, author, posts[0]["id"])

    r = await client.get(f"{ADMIN}/groups", headers=admin.auth)
    assert r.status_code == 200, r.text
    groups = {g["name"]: g for g in r.json()["groups"]}
    assert groups["admins"] == {"name": "admins", "members": [admin.username], "policies": ["AdministratorAccess"]}
    assert groups["moderators"] == {"name": "moderators", "members": [], "policies": ["PhotosModerator"]}

    assert (await client.put(f"{ADMIN}/groups/probation", headers=admin.auth)).status_code == 201
    assert_error(await client.put(f"{ADMIN}/groups/probation", headers=admin.auth), 409, "exists")
    for group in ("moderators", "probation"):
        r = await client.put(f"{ADMIN}/groups/{group}/members/{mod.username.upper()}", headers=admin.auth)
        assert r.status_code == 204, r.text
    assert (await client.delete(f"{API}/posts/{posts[0]['id']}", headers=mod.auth)).status_code == 204  # a moderator now

    r = await client.put(f"{ADMIN}/policies/NoPostDeletion", headers=admin.auth, json=DENY_POST_DELETION)
    assert r.status_code == 204, r.text
    r = await client.put(f"{ADMIN}/groups/probation/policies/NoPostDeletion", headers=admin.auth)
    assert r.status_code == 204, r.text
    groups = {g["name"]: g for g in (await client.get(f"{ADMIN}/groups", headers=admin.auth)).json()["groups"]}
    assert groups["probation"] == {"name": "probation", "members": [mod.username], "policies": ["NoPostDeletion"]}
    assert groups["moderators"]["members"] == [mod.username]

    # an explicit deny beats the moderators' allow
    assert_error(await client.delete(f"{API}/posts/{posts[1]['id']}", headers=mod.auth), 403)
    assert (await _post(client, posts[1]["id"]))["id"] == posts[1]["id"]
    # ... and only what it names: comments may still be moderated
    comment = await _comment(client, author, posts[1]["id"])
    assert (await client.delete(f"{API}/comments/{comment['id']}", headers=mod.auth)).status_code == 204
    # the deny applies to the author too, once in the group
    assert (await client.put(f"{ADMIN}/groups/probation/members/{author.username}", headers=admin.auth)).status_code == 204
    assert_error(await client.delete(f"{API}/posts/{posts[1]['id']}", headers=author.auth), 403)

    # detaching lifts it at once
    assert (await client.delete(f"{ADMIN}/groups/probation/policies/NoPostDeletion", headers=admin.auth)).status_code == 204
    assert (await client.delete(f"{API}/posts/{posts[1]['id']}", headers=mod.auth)).status_code == 204
    # replacing a policy takes effect at once too
    await client.put(f"{ADMIN}/groups/probation/policies/NoPostDeletion", headers=admin.auth)
    deny_edits = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "photos:EditPost", "Resource": "*"}]}
    assert (await client.put(f"{ADMIN}/policies/NoPostDeletion", headers=admin.auth, json=deny_edits)).status_code == 204
    assert (await client.delete(f"{API}/posts/{posts[2]['id']}", headers=mod.auth)).status_code == 204
    assert_error(await client.patch(f"{API}/posts/{posts[3]['id']}", headers=author.auth, json={"caption": "x"}), 403)

    # removing the member ends the moderation
    assert (await client.delete(f"{ADMIN}/groups/moderators/members/{mod.username}", headers=admin.auth)).status_code == 204
    assert_error(await client.delete(f"{API}/posts/{posts[3]['id']}", headers=mod.auth), 403)


async def test_admin_api_errors_name_what_is_missing(app, client, make_user):
    admin = await make_user()
    await app.state.access.add_member("admins", int(admin.id))
    h = admin.auth
    assert_error(await client.put(f"{ADMIN}/groups/moderators/members/no_such_user", headers=h), 404, "user")
    assert_error(await client.put(f"{ADMIN}/groups/no_such_group/members/{admin.username}", headers=h), 404, "no_such_group")
    assert_error(await client.put(f"{ADMIN}/groups/moderators/policies/NoSuchPolicy", headers=h), 404, "NoSuchPolicy")
    assert_error(await client.put(f"{ADMIN}/groups/no_such_group/policies/AdministratorAccess", headers=h), 404, "no_such_group")
    error = assert_error(await client.put(f"{ADMIN}/groups/bad%20name!", headers=h), 422, "group")
    assert error["field"] == "group"


INVALID_POLICIES = [
    ({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Bogus": 1}]}, ["Bogus"]),
    ({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"StringEqualz": {"aws:username": "x"}}}]}, ["StringEqualz"]),
    ({"Version": "2012-10-17", "Statement": [{"Effect": "Maybe", "Action": "*", "Resource": "*"}]}, ["Effect"]),
    ({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*"}]}, ["Action"]),
    ({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*"}]}, ["Resource"]),
    ({"Version": "2012-10-17"}, ["Statement"]),
]


async def test_an_invalid_policy_document_is_422_naming_the_problem_and_is_not_stored(app, client, make_user):
    admin = await make_user()
    await app.state.access.add_member("admins", int(admin.id))
    for document, words in INVALID_POLICIES:
        r = await client.put(f"{ADMIN}/policies/Broken", headers=admin.auth, json=document)
        error = assert_error(r, 422, "policy", *words)
        assert error["field"] == "document", error
    assert_error(await client.put(f"{ADMIN}/policies/Broken", headers=admin.auth, json=["not", "an", "object"]), 422)
    assert_error(await client.put(f"{ADMIN}/policies/Broken", headers={**admin.auth, "content-type": "application/json"}, content=b"{"), 400, "JSON")
    assert_error(await client.put(f"{ADMIN}/policies/bad%20name", headers=admin.auth, json=DENY_POST_DELETION), 422, "policy")
    # nothing was stored under that name
    assert_error(await client.put(f"{ADMIN}/groups/moderators/policies/Broken", headers=admin.auth), 404, "Broken")
