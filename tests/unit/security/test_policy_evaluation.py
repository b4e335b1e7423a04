"""Evaluation: a table of cases from AWS's IAM documentation, and the decision logic around it."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from summit.security.policies import (
    ALLOW,
    EXPLICIT_DENY,
    IMPLICIT_DENY,
    Decision,
    PolicyError,
    Request,
    RequestError,
    evaluate,
    parse_policy,
)

TABLE = json.loads((Path(__file__).parent / "aws_policy_cases.json").read_text())
POLICIES: dict[str, Any] = {name: entry["document"] for name, entry in TABLE["policies"].items()}
CASES: list[dict[str, Any]] = TABLE["cases"]
V = "2012-10-17"
ALICE = "arn:aws:iam::123456789012:user/alice"


def cli_document(case: dict[str, Any]) -> dict[str, Any]:
    """The case as the JSON document ``summit iam evaluate`` reads (names replaced by policies)."""
    return {
        "identityPolicies": [POLICIES[name] for name in case["identityPolicies"]],
        "resourcePolicy": POLICIES[case["resourcePolicy"]] if case["resourcePolicy"] else None,
        "permissionBoundaries": [POLICIES[name] for name in case["permissionBoundaries"]],
        "request": case["request"],
    }


def test_the_table_is_large_and_every_case_cites_an_aws_page() -> None:
    assert len(CASES) >= 40
    assert len({case["name"] for case in CASES}) == len(CASES), "case names are unique"
    for case in CASES:
        assert case["source"].startswith("https://docs.aws.amazon.com/IAM/latest/UserGuide/"), case["name"]
        assert case["expected"] in (ALLOW, EXPLICIT_DENY, IMPLICIT_DENY)
    for entry in TABLE["policies"].values():
        assert entry["source"].startswith("https://docs.aws.amazon.com/IAM/latest/UserGuide/")
    assert {case["expected"] for case in CASES} == {ALLOW, EXPLICIT_DENY, IMPLICIT_DENY}


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_aws_documented_case(case: dict[str, Any]) -> None:
    document = cli_document(case)
    decision = evaluate(
        Request.from_dict(document["request"]),
        identity_policies=document["identityPolicies"],
        resource_policy=document["resourcePolicy"],
        permission_boundaries=document["permissionBoundaries"],
    )
    assert decision.decision == case["expected"], f"{case['name']} ({case['source']}): {decision.reason}"


@pytest.mark.parametrize("case", CASES[:10], ids=[case["name"] for case in CASES[:10]])
def test_parsed_policies_give_the_same_decision(case: dict[str, Any]) -> None:
    document = cli_document(case)
    parsed = [parse_policy(p) for p in document["identityPolicies"]]
    first = evaluate(document["request"], identity_policies=parsed)
    again = evaluate(document["request"], identity_policies=parsed)
    assert first == again


# -- the decision and its explanation -------------------------------------------------------------


def allow(action: str = "s3:*", resource: str = "*", **extra: Any) -> dict[str, Any]:
    return {"Version": V, "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource, **extra}]}


def deny(action: str = "s3:*", resource: str = "*", **extra: Any) -> dict[str, Any]:
    return {"Version": V, "Statement": [{"Effect": "Deny", "Action": action, "Resource": resource, **extra}]}


def test_no_policies_is_an_implicit_deny() -> None:
    decision = evaluate(Request(ALICE, "s3:GetObject", "arn:aws:s3:::b/k"))
    assert decision.decision == IMPLICIT_DENY and not decision.allowed
    assert decision.matched == ()


def test_explicit_deny_names_the_deny_statement() -> None:
    policy = {"Version": V, "Id": "p1", "Statement": [
        {"Sid": "AllowAll", "Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Sid": "NoDelete", "Effect": "Deny", "Action": "s3:Delete*", "Resource": "*"},
    ]}  # fmt: skip
    decision = evaluate(Request(ALICE, "s3:DeleteObject", "arn:aws:s3:::b/k"), identity_policies=[policy])
    assert decision.decision == EXPLICIT_DENY
    assert [(m.policy, m.sid, m.index, m.policy_id) for m in decision.matched] == [("identityPolicies[0]", "NoDelete", 1, "p1")]
    assert decision.to_dict() == {"decision": "ExplicitDeny"}
    explained = decision.to_dict(explain=True)
    assert explained["matched"] == [
        {"policy": "identityPolicies[0]", "statement": 1, "effect": "Deny", "sid": "NoDelete", "policyId": "p1"}
    ]
    assert "Deny" in explained["reason"]


def test_allow_lists_identity_and_boundary_statements() -> None:
    decision = evaluate(
        Request(ALICE, "s3:GetObject", "arn:aws:s3:::b/k"),
        identity_policies=[allow("s3:GetObject")],
        permission_boundaries=[allow("s3:*")],
    )
    assert decision.decision == ALLOW
    assert [m.policy for m in decision.matched] == ["identityPolicies[0]", "permissionBoundaries[0]"]
    assert "boundary" in decision.reason


def test_every_boundary_must_allow() -> None:
    decision = evaluate(
        Request(ALICE, "s3:GetObject", "arn:aws:s3:::b/k"),
        identity_policies=[allow()],
        permission_boundaries=[allow("s3:*"), allow("ec2:*")],
    )
    assert decision.decision == IMPLICIT_DENY
    assert "permissionBoundaries[1]" in decision.reason
    assert [m.policy for m in decision.matched] == ["identityPolicies[0]"]


def test_any_identity_policy_may_allow_and_any_may_deny() -> None:
    request = Request(ALICE, "s3:GetObject", "arn:aws:s3:::b/k")
    assert evaluate(request, identity_policies=[allow("ec2:*"), allow("s3:Get*")]).decision == ALLOW
    assert evaluate(request, identity_policies=[allow(), deny("s3:GetObject")]).decision == EXPLICIT_DENY


def test_deny_in_a_resource_policy_applies_only_to_the_principals_it_names() -> None:
    bucket = {"Version": V, "Statement": [
        {"Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::123456789012:user/bob"}, "Action": "s3:*", "Resource": "*"},
    ]}  # fmt: skip
    request = Request(ALICE, "s3:GetObject", "arn:aws:s3:::b/k")
    assert evaluate(request, identity_policies=[allow()], resource_policy=bucket).decision == ALLOW
    bob = Request("arn:aws:iam::123456789012:user/bob", "s3:GetObject", "arn:aws:s3:::b/k")
    assert evaluate(bob, identity_policies=[allow()], resource_policy=bucket).decision == EXPLICIT_DENY


def test_an_account_principal_deny_covers_everyone_in_the_account() -> None:
    bucket = {"Version": V, "Statement": [
        {"Effect": "Deny", "Principal": {"AWS": "123456789012"}, "Action": "s3:*", "Resource": "*"},
    ]}  # fmt: skip
    decision = evaluate(Request(ALICE, "s3:GetObject", "arn:aws:s3:::b/k"), identity_policies=[allow()], resource_policy=bucket)
    assert decision.decision == EXPLICIT_DENY
    other = Request("arn:aws:iam::999999999999:user/eve", "s3:GetObject", "arn:aws:s3:::b/k")
    assert evaluate(other, identity_policies=[allow()], resource_policy=bucket).decision == ALLOW


def test_a_resource_policy_without_resource_covers_its_own_resource() -> None:
    queue = {"Version": V, "Statement": [{"Effect": "Allow", "Principal": {"AWS": ALICE}, "Action": "sqs:SendMessage"}]}
    decision = evaluate(Request(ALICE, "sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:q"), resource_policy=queue)
    assert decision.decision == ALLOW
    assert decision.matched[0].policy == "resourcePolicy"


def test_role_arn_principal_matches_its_sessions_and_the_role_itself() -> None:
    role_policy = {"Version": V, "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:role/app"}, "Action": "s3:GetObject", "Resource": "*"},
    ]}  # fmt: skip
    for principal in ("arn:aws:sts::123456789012:assumed-role/app/i-0abc", "arn:aws:iam::123456789012:role/app"):
        assert evaluate(Request(principal, "s3:GetObject", "arn:aws:s3:::b/k"), resource_policy=role_policy).allowed
    other = Request("arn:aws:sts::123456789012:assumed-role/web/i-0abc", "s3:GetObject", "arn:aws:s3:::b/k")
    assert not evaluate(other, resource_policy=role_policy).allowed


def test_summit_partition_principals_work_like_aws_ones() -> None:
    policy = allow("photos:DeletePost", "arn:summit:photos:::post/${aws:username}/*")
    me = Request("arn:summit:iam::000000000001:user/alice", "photos:DeletePost", "arn:summit:photos:::post/alice/42")
    other = Request("arn:summit:iam::000000000001:user/bob", "photos:DeletePost", "arn:summit:photos:::post/alice/42")
    assert evaluate(me, identity_policies=[policy]).allowed
    assert not evaluate(other, identity_policies=[policy]).allowed


def test_partitions_are_not_mixed() -> None:
    bucket = {"Version": V, "Statement": [{"Effect": "Allow", "Principal": {"AWS": ALICE}, "Action": "s3:*", "Resource": "*"}]}
    summit_alice = Request("arn:summit:iam::123456789012:user/alice", "s3:GetObject", "arn:aws:s3:::b/k")
    assert evaluate(summit_alice, resource_policy=bucket).decision == IMPLICIT_DENY


def test_derived_context_keys_can_be_overridden_and_the_clock_is_injectable() -> None:
    policy = allow(Condition={"StringEquals": {"aws:PrincipalType": "User", "aws:PrincipalAccount": "123456789012"},
                              "DateGreaterThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}})  # fmt: skip
    request = Request(ALICE, "s3:GetObject", "arn:aws:s3:::b/k")
    assert evaluate(request, [policy], now=dt.datetime(2031, 1, 1, tzinfo=dt.timezone.utc)).allowed
    assert not evaluate(request, [policy], now=dt.datetime(2029, 1, 1)).allowed
    in_past = Request(ALICE, "s3:GetObject", "arn:aws:s3:::b/k", {"aws:CurrentTime": "2029-06-01T00:00:00Z"})
    assert not evaluate(in_past, [policy], now=dt.datetime(2031, 1, 1, tzinfo=dt.timezone.utc)).allowed


def test_aws_principal_arn_of_a_session_is_its_role() -> None:
    policy = allow(Condition={"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/app"}})
    session = Request("arn:aws:sts::123456789012:assumed-role/app/s1", "s3:GetObject", "arn:aws:s3:::b/k")
    assert evaluate(session, [policy]).allowed


def test_evaluate_takes_a_plain_dict_request() -> None:
    decision = evaluate({"principal": ALICE, "action": "s3:GetObject", "resource": "arn:aws:s3:::b/k"}, [allow()])
    assert isinstance(decision, Decision) and decision.allowed


@pytest.mark.parametrize(
    "request_dict, words",
    [
        ({"principal": "", "action": "s3:GetObject", "resource": "*"}, "request.principal"),
        ({"principal": ALICE, "action": None, "resource": "*"}, "request.action"),
        ({"principal": ALICE, "action": "s3:GetObject", "resource": 7}, "request.resource"),
        ({"principal": ALICE, "action": "s3:GetObject", "resource": "*", "context": []}, "context"),
        ({"principal": ALICE, "action": "s3:GetObject", "resource": "*", "context": {"aws:x": {"a": 1}}}, "aws:x"),
        ({"principal": ALICE, "action": "s3:GetObject", "resource": "*", "extra": 1}, "unknown field 'extra'"),
        ("nope", "request must be an object"),
    ],
)
def test_malformed_requests_are_refused(request_dict: Any, words: str) -> None:
    with pytest.raises(RequestError, match=words):
        evaluate(request_dict, [allow()])


def test_a_bad_policy_is_reported_with_where_it_came_from() -> None:
    with pytest.raises(PolicyError, match=r"^permissionBoundaries\[1\]: Statement\[0\]: missing Effect") as caught:
        evaluate(Request(ALICE, "s3:GetObject", "*"), permission_boundaries=[allow(), {"Statement": [{"Action": "s3:*", "Resource": "*"}]}])
    assert caught.value.element == "Effect" and caught.value.statement == 0


def test_policy_kinds_are_checked() -> None:
    resource_policy = parse_policy({"Statement": {"Effect": "Allow", "Principal": "*", "Action": "s3:*"}}, "resource")
    with pytest.raises(PolicyError, match="a resource-based policy was given where an identity-based one is expected"):
        evaluate(Request(ALICE, "s3:GetObject", "*"), identity_policies=[resource_policy])
    with pytest.raises(TypeError):
        evaluate(Request(ALICE, "s3:GetObject", "*"), identity_policies=allow())  # type: ignore[arg-type]


def test_not_principal_must_list_the_whole_chain() -> None:
    # "If the NotPrincipal element contained only Bob's ARN, the effect of the policy might be to
    # explicitly deny access to the AWS account that contains the user Bob."
    bob = "arn:aws:iam::444455556666:user/Bob"
    only_bob = {"Version": V, "Statement": [
        {"Effect": "Deny", "NotPrincipal": {"AWS": bob}, "Action": "s3:*", "Resource": "*"},
        {"Effect": "Allow", "Principal": {"AWS": bob}, "Action": "s3:*", "Resource": "*"},
    ]}  # fmt: skip
    assert evaluate(Request(bob, "s3:GetObject", "arn:aws:s3:::b/k"), resource_policy=only_bob).decision == EXPLICIT_DENY
    session = "arn:aws:sts::444455556666:assumed-role/audit/app"
    chain = {"Version": V, "Statement": [
        {"Effect": "Deny", "NotPrincipal": {"AWS": [session, "arn:aws:iam::444455556666:role/audit",
                                                    "arn:aws:iam::444455556666:root"]}, "Action": "s3:*", "Resource": "*"},
        {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"},
    ]}  # fmt: skip
    assert evaluate(Request(session, "s3:GetObject", "arn:aws:s3:::b/k"), resource_policy=chain).decision == ALLOW
    other = "arn:aws:sts::444455556666:assumed-role/audit/other"
    assert evaluate(Request(other, "s3:GetObject", "arn:aws:s3:::b/k"), resource_policy=chain).decision == EXPLICIT_DENY


def test_public_api() -> None:
    import summit.security.policies as policies

    assert sorted(policies.__all__) == sorted([
        "ALLOW", "EXPLICIT_DENY", "IMPLICIT_DENY", "Decision", "MatchedStatement", "Policy", "PolicyError",
        "Request", "RequestError", "Statement", "evaluate", "parse_policy",
    ])  # fmt: skip
    for name in policies.__all__:
        assert getattr(policies, name) is not None
