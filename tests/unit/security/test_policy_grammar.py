"""The policy grammar: what parses, and a clear error, naming element and statement, for what does not."""

from __future__ import annotations

import re
from typing import Any

import pytest

from summit.security.policies import Policy, PolicyError, parse_policy
from summit.security.policies.grammar import load_json

V = "2012-10-17"


def statement(**elements: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}
    base.update(elements)
    return {key: value for key, value in base.items() if value is not None}


def identity(*statements: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"Version": V, "Statement": list(statements), **top}


def test_a_full_identity_policy_parses() -> None:
    policy = parse_policy(identity(
        statement(Sid="Read", Action=["s3:Get*", "s3:List*"], Resource=["arn:aws:s3:::b", "arn:aws:s3:::b/*"]),
        statement(Sid="NoLogs", Effect="Deny", NotAction="iam:*", Action=None, NotResource="arn:aws:s3:::logs/*", Resource=None,
                  Condition={"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}),
        Id="example",
    ))  # fmt: skip
    assert isinstance(policy, Policy)
    assert (policy.kind, policy.version, policy.id) == ("identity", V, "example")
    first, second = policy.statements
    assert (first.sid, first.effect, len(first.actions), first.not_action) == ("Read", "Allow", 2, False)
    assert (second.effect, second.not_action, second.not_resource, second.condition is not None) == ("Deny", True, True, True)
    assert second.label == 'Statement[1] (Sid "NoLogs")'


def test_a_single_statement_object_and_a_missing_version() -> None:
    policy = parse_policy({"Statement": statement()})
    assert policy.version == "2008-10-17" and len(policy.statements) == 1


def test_json_text_is_accepted() -> None:
    policy = parse_policy('{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}')
    assert policy.statements[0].effect == "Allow"


def test_resource_policies() -> None:
    policy = parse_policy(
        {"Version": V, "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"},
            {"Effect": "Allow", "Principal": {"AWS": ["123456789012", "arn:aws:iam::123456789012:user/a"]}, "Action": "s3:*"},
            {"Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"}, "Action": "sqs:SendMessage"},
            {"Effect": "Allow", "Principal": {"Federated": "cognito-identity.amazonaws.com"}, "Action": "sts:AssumeRoleWithWebIdentity"},
            {"Effect": "Allow", "Principal": {"CanonicalUser": "79a59df900b949e55d96a1e698fbaced"}, "Action": "s3:GetObject"},
            {"Effect": "Deny", "NotPrincipal": {"AWS": "arn:aws:iam::444455556666:root"}, "Action": "s3:*"},
        ]},
        kind="resource",
    )  # fmt: skip
    assert len(policy.statements) == 6
    assert policy.statements[1].resources is None, "a resource policy may leave Resource out"


def check(document: Any, words: str, *, kind: str = "identity", element: str | None = None, statement: Any = None) -> None:
    with pytest.raises(PolicyError, match=re.escape(words)) as caught:
        parse_policy(document, kind)
    if element is not None:
        assert caught.value.element == element
    if statement is not None:
        assert caught.value.statement == statement


def test_unknown_top_level_element() -> None:
    check({"Version": V, "Statment": [statement()]}, "unknown policy element 'Statment' (did you mean 'Statement'?)", element="Statment")
    check({"version": V, "Statement": [statement()]}, "(did you mean 'Version'? element names are case-sensitive)")


def test_unknown_statement_element_names_the_statement() -> None:
    check(identity(statement(), statement(Sid="Second", Actions="s3:*")),
          'Statement[1] (Sid "Second"): unknown statement element \'Actions\' (did you mean \'Action\'?)',
          element="Actions", statement="Second")  # fmt: skip
    check(identity(statement(effect="Allow")), "Statement[0]: unknown statement element 'effect' (did you mean 'Effect'? element names are case-sensitive)", statement=0)


def test_unknown_condition_operator() -> None:
    check(identity(statement(Sid="Cond", Condition={"StringEqualsss": {"aws:username": "x"}})),
          "Statement[0] (Sid \"Cond\"): Condition: unknown condition operator 'StringEqualsss' (did you mean 'StringEquals'?)",
          element="Condition")  # fmt: skip
    check(identity(statement(Condition={"stringEquals": {"aws:username": "x"}})), "operator names are case-sensitive")


def test_action_and_not_action_together() -> None:
    check(identity(statement(NotAction="iam:*")), "Statement[0]: Action and NotAction cannot both be in one statement", element="Action")
    check(identity(statement(NotResource="arn:aws:s3:::x")), "Resource and NotResource cannot both be in one statement")


def test_missing_elements() -> None:
    check(identity(statement(Effect=None)), 'Statement[0]: missing Effect ("Allow" or "Deny")', element="Effect", statement=0)
    check(identity(statement(Action=None)), "missing Action (or NotAction)", element="Action")
    check(identity(statement(Resource=None)), "missing Resource (or NotResource)", element="Resource")
    check({"Version": V}, "a policy needs a Statement element", element="Statement")
    check({"Version": V, "Statement": []}, "Statement must hold at least one statement")


@pytest.mark.parametrize(
    "document, words, element",
    [
        ([statement()], "a policy must be a JSON object, not a list", None),
        ({"Version": "2012-10-18", "Statement": [statement()]}, "Version must be \"2012-10-17\" or \"2008-10-17\", not '2012-10-18'", "Version"),
        ({"Version": 2012, "Statement": [statement()]}, "Version must be", "Version"),
        ({"Version": V, "Id": 5, "Statement": [statement()]}, "Id must be a string, not a number", "Id"),
        ({"Version": V, "Statement": "Allow everything"}, "Statement must be an object or a list, not a string", "Statement"),
        (identity("statement"), "Statement[0]: a statement must be a JSON object, not a string", None),
        (identity(statement(Effect="allow")), "Effect must be \"Allow\" or \"Deny\", not 'allow'", "Effect"),
        (identity(statement(Effect=True)), "Effect must be \"Allow\" or \"Deny\", not True", "Effect"),
        (identity(statement(Sid=7)), "Sid must be a string, not a number", "Sid"),
        (identity(statement(Action=[])), "Action must not be an empty list", "Action"),
        (identity(statement(Action=["s3:GetObject", 3])), "Action must be a string or a list of strings, not a number", "Action"),
        (identity(statement(Action={"s3": "GetObject"})), "Action must be a string or a list of strings, not an object", "Action"),
        (identity(statement(Action="GetObject")), "Action 'GetObject' must be \"*\" or service:action", "Action"),
        (identity(statement(Action="s3:")), "must be \"*\" or service:action", "Action"),
        (identity(statement(Resource="bucket/*")), "Resource 'bucket/*' must be in ARN format", "Resource"),
        (identity(statement(Resource="arn:aws:s3")), "must be in ARN format", "Resource"),
        (identity(statement(Resource=None, NotResource=[""])), "NotResource must be a string or a list of strings", "NotResource"),
        (identity(statement(Condition=[])), "Condition: must be an object", "Condition"),
        (identity(statement(Condition={"NumericLessThan": {"s3:max-keys": "ten"}})), "'ten' is not a number", "Condition"),
    ],
)
def test_wrong_types_and_values(document: Any, words: str, element: str | None) -> None:
    check(document, words, element=element)


def test_principal_in_an_identity_policy() -> None:
    check(identity(statement(Sid="P", Principal="*")), 'Statement[0] (Sid "P"): Principal is not allowed in an identity-based policy', element="Principal")
    check(identity(statement(NotPrincipal={"AWS": "123456789012"})), "NotPrincipal is not allowed in an identity-based policy")


def test_principal_missing_from_a_resource_policy() -> None:
    check(identity(statement()), "Statement[0]: a resource-based policy statement needs a Principal or NotPrincipal", kind="resource", element="Principal")


@pytest.mark.parametrize(
    "principal, words",
    [
        ({"AWS": "arn:aws:iam::123456789012:user/*"}, "a wildcard cannot stand for part of a principal's name or ARN"),
        ({"AWS": "alice"}, "'alice' is not an account ID or a principal ARN"),
        ({"Users": "x"}, "unknown principal type 'Users' (expected one of AWS, Service, Federated, CanonicalUser)"),
        ({"AWS": []}, "the list of principals is empty"),
        ({"AWS": [7]}, "each principal must be a non-empty string"),
        ({}, 'must be "*" or an object'),
        ("everyone", 'must be "*" or an object'),
    ],
)
def test_bad_principals(principal: Any, words: str) -> None:
    check(identity(statement(Principal=principal)), words, kind="resource", element="Principal")
    check(identity(statement(Principal=principal)), "Statement[0]: Principal: ", kind="resource")


def test_principal_and_not_principal_together() -> None:
    check(identity(statement(Principal="*", NotPrincipal="*")), "Principal and NotPrincipal cannot both be in one statement", kind="resource")


def test_sids_are_unique() -> None:
    check(identity(statement(Sid="A"), statement(Sid="B"), statement(Sid="A")),
          "Statement[2] (Sid \"A\"): Sid 'A' is already used by Statement[0]; Sids must be unique", element="Sid")  # fmt: skip


def test_duplicate_keys_in_json_text() -> None:
    check('{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Effect": "Deny", "Action": "*", "Resource": "*"}}',
          "the key 'Effect' appears twice in one JSON object")  # fmt: skip


def test_malformed_json_text() -> None:
    check('{"Version": "2012-10-17", "Statement": [', "malformed JSON")
    with pytest.raises(PolicyError, match="malformed JSON"):
        load_json(b"\xff")  # not UTF-8


def test_unknown_kind() -> None:
    with pytest.raises(ValueError, match="kind must be"):
        parse_policy(identity(statement()), "boundary")


def test_error_attributes() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(identity(statement(), statement(Sid="X", Effect="Maybe")))
    error = caught.value
    assert (error.element, error.statement) == ("Effect", "X")
    assert error.reason.startswith("Effect must be")
    assert str(error).startswith('Statement[1] (Sid "X"): ')


def test_variables_only_under_2012_10_17() -> None:
    new = parse_policy(identity(statement(Resource="arn:aws:s3:::b/${aws:username}/*")))
    old = parse_policy({"Version": "2008-10-17", "Statement": [statement(Resource="arn:aws:s3:::b/${aws:username}/*")]})
    assert new.statements[0].resources[0].template.has_variables  # type: ignore[index]
    assert not old.statements[0].resources[0].template.has_variables  # type: ignore[index]
