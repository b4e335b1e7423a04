"""Condition operators, one by one, with the edge cases AWS documents; and policy variables."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest

from summit.security.policies.conditions import ConditionBlock, operator_names, parse_operator, read_date
from summit.security.policies.errors import InvalidElement
from summit.security.policies.variables import ContextValues, Template


def holds(condition: dict[str, Any], context: dict[str, Any] | None = None, *, variables: bool = True) -> bool:
    return ConditionBlock(condition, variables=variables).holds(ContextValues.from_mapping(context or {}))


def one(op: str, key: str, values: Any, context: dict[str, Any] | None = None) -> bool:
    return holds({op: {key: values}}, context)


# -- operator names ------------------------------------------------------------------------------


def test_every_documented_operator_is_known() -> None:
    documented = {
        "StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase", "StringLike",
        "StringNotLike", "NumericEquals", "NumericNotEquals", "NumericLessThan", "NumericLessThanEquals",
        "NumericGreaterThan", "NumericGreaterThanEquals", "DateEquals", "DateNotEquals", "DateLessThan",
        "DateLessThanEquals", "DateGreaterThan", "DateGreaterThanEquals", "Bool", "BinaryEquals", "IpAddress",
        "NotIpAddress", "ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike", "Null",
    }  # fmt: skip
    assert set(operator_names()) == documented


@pytest.mark.parametrize(
    "name, base, qualifier, if_exists",
    [
        ("StringEquals", "StringEquals", None, False),
        ("StringLikeIfExists", "StringLike", None, True),
        ("ForAnyValue:StringLike", "StringLike", "ForAnyValue", False),
        ("ForAllValues:StringNotEqualsIfExists", "StringNotEquals", "ForAllValues", True),
        ("BoolIfExists", "Bool", None, True),
    ],
)
def test_operator_names_parse(name: str, base: str, qualifier: str | None, if_exists: bool) -> None:
    op, got_qualifier, got_if_exists = parse_operator(name)
    assert (op.name, got_qualifier, got_if_exists) == (base, qualifier, if_exists)


@pytest.mark.parametrize(
    "name, words",
    [
        ("stringEquals", "did you mean 'StringEquals'? operator names are case-sensitive"),
        ("StringEqual", "did you mean 'StringEquals'"),
        ("NullIfExists", "unknown condition operator 'NullIfExists'"),
        ("ForAllValues:Null", "unknown condition operator"),
        ("IfExists", "unknown condition operator"),
        ("ForSomeValues:StringEquals", "unknown condition operator"),
        ("Equals", "unknown condition operator"),
    ],
)
def test_unknown_operators_are_refused(name: str, words: str) -> None:
    with pytest.raises(InvalidElement, match=re.escape(words)):
        parse_operator(name)


# -- String --------------------------------------------------------------------------------------


def test_string_equals_is_case_sensitive_on_values_not_keys() -> None:
    assert one("StringEquals", "aws:username", "john", {"aws:username": "john"})
    assert not one("StringEquals", "aws:username", "john", {"aws:username": "John"})
    assert one("StringEquals", "AWS:UserName", "john", {"aws:USERNAME": "john"})


def test_several_values_are_ored_and_several_keys_anded() -> None:
    assert one("StringEquals", "aws:username", ["ann", "john"], {"aws:username": "john"})
    both = {"StringEquals": {"aws:username": "john", "aws:PrincipalTag/team": "blue"}}
    assert holds(both, {"aws:username": "john", "aws:PrincipalTag/team": "blue"})
    assert not holds(both, {"aws:username": "john", "aws:PrincipalTag/team": "red"})
    two_operators = {"StringEquals": {"aws:username": "john"}, "StringLike": {"s3:prefix": "home/*"}}
    assert holds(two_operators, {"aws:username": "john", "s3:prefix": "home/x"})
    assert not holds(two_operators, {"aws:username": "john", "s3:prefix": "tmp/x"})


def test_negated_string_operators() -> None:
    assert one("StringNotEquals", "aws:RequestedRegion", ["eu-west-1", "eu-central-1"], {"aws:RequestedRegion": "us-east-1"})
    assert not one("StringNotEquals", "aws:RequestedRegion", ["eu-west-1", "eu-central-1"], {"aws:RequestedRegion": "eu-west-1"})
    assert one("StringNotEqualsIgnoreCase", "aws:x", "ABC", {"aws:x": "abd"})
    assert not one("StringNotEqualsIgnoreCase", "aws:x", "ABC", {"aws:x": "abc"})
    assert one("StringNotLike", "s3:prefix", "home/*", {"s3:prefix": "tmp/"})
    assert not one("StringNotLike", "s3:prefix", "home/*", {"s3:prefix": "home/a"})


@pytest.mark.parametrize("op", ["StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "ArnNotEquals", "ArnNotLike", "NotIpAddress", "NumericNotEquals", "DateNotEquals"])
def test_negated_operators_are_true_when_the_key_is_missing(op: str) -> None:
    value = {"NotIpAddress": "10.0.0.0/8", "NumericNotEquals": "1", "DateNotEquals": "2020-01-01T00:00:00Z"}.get(op, "arn:aws:s3:::x")
    assert one(op, "aws:SomeKey", value, {})


@pytest.mark.parametrize("op, value", [("StringEquals", "x"), ("StringLike", "*"), ("ArnLike", "*"), ("IpAddress", "0.0.0.0/0"), ("NumericLessThan", "5"), ("Bool", "true"), ("DateLessThan", "2100-01-01")])
def test_positive_operators_are_false_when_the_key_is_missing(op: str, value: str) -> None:
    assert not one(op, "aws:SomeKey", value, {})


def test_string_equals_ignore_case() -> None:
    assert one("StringEqualsIgnoreCase", "aws:RequestTag/environment", ["preprod", "storage"], {"aws:RequestTag/environment": "PreProd"})
    assert not one("StringEqualsIgnoreCase", "aws:RequestTag/environment", ["preprod"], {"aws:RequestTag/environment": "prod"})


def test_string_like_wildcards() -> None:
    assert one("StringLike", "s3:prefix", "home/*", {"s3:prefix": "home/"})
    assert one("StringLike", "s3:prefix", "home/*", {"s3:prefix": "home/a/b/c"})
    assert one("StringLike", "ec2:InstanceType", "t?.micro", {"ec2:InstanceType": "t2.micro"})
    assert not one("StringLike", "ec2:InstanceType", "t?.micro", {"ec2:InstanceType": "t22.micro"})
    assert not one("StringLike", "aws:x", "a.c", {"aws:x": "abc"}), "only * and ? are special"
    assert not one("StringLike", "aws:x", "Home/*", {"aws:x": "home/x"}), "StringLike is case-sensitive"
    assert not one("StringEquals", "aws:x", "a*", {"aws:x": "abc"}), "StringEquals has no wildcards"
    assert one("StringEquals", "aws:x", "a*", {"aws:x": "a*"})
    assert one("StringLike", "aws:x", "", {"aws:x": ""})


# -- IfExists ------------------------------------------------------------------------------------


def test_if_exists_with_a_missing_key_is_true() -> None:
    assert one("StringLikeIfExists", "ec2:InstanceType", "t2.*", {})
    assert one("StringNotEqualsIfExists", "aws:x", "a", {})
    assert one("NumericLessThanIfExists", "s3:max-keys", "10", {})
    assert one("BoolIfExists", "aws:MultiFactorAuthPresent", "false", {})
    assert one("IpAddressIfExists", "aws:SourceIp", "10.0.0.0/8", {})


def test_if_exists_with_a_present_key_tests_it() -> None:
    assert one("StringLikeIfExists", "ec2:InstanceType", "t2.*", {"ec2:InstanceType": "t2.nano"})
    assert not one("StringLikeIfExists", "ec2:InstanceType", "t2.*", {"ec2:InstanceType": "m5.large"})
    assert one("BoolIfExists", "aws:MultiFactorAuthPresent", "false", {"aws:MultiFactorAuthPresent": False})
    assert not one("BoolIfExists", "aws:MultiFactorAuthPresent", "false", {"aws:MultiFactorAuthPresent": True})


# -- Numeric -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "op, policy, request_value, expected",
    [
        ("NumericEquals", "10", "10", True),
        ("NumericEquals", "10", "10.0", True),
        ("NumericEquals", 10, 10, True),
        ("NumericEquals", "10", "11", False),
        ("NumericNotEquals", "10", "11", True),
        ("NumericNotEquals", "10", "10", False),
        ("NumericLessThan", "10", "9.99", True),
        ("NumericLessThan", "10", "10", False),
        ("NumericLessThanEquals", "10", "10", True),
        ("NumericLessThanEquals", "10", "11", False),
        ("NumericGreaterThan", "3600", 3601, True),
        ("NumericGreaterThan", "3600", 3600, False),
        ("NumericGreaterThanEquals", "-1.5", "-1.5", True),
        ("NumericGreaterThanEquals", "1e3", "999", False),
    ],
)
def test_numeric_operators(op: str, policy: Any, request_value: Any, expected: bool) -> None:
    assert one(op, "s3:max-keys", policy, {"s3:max-keys": request_value}) is expected


@pytest.mark.parametrize("op", ["NumericEquals", "NumericNotEquals", "NumericLessThan", "NumericGreaterThan"])
@pytest.mark.parametrize("bad", ["abc", "", "1,000", "0x10", "NaN", "Infinity", "10 items"])
def test_a_request_value_that_is_not_a_number_makes_the_condition_false(op: str, bad: str) -> None:
    assert not one(op, "s3:max-keys", "10", {"s3:max-keys": bad})


def test_a_policy_value_that_is_not_a_number_is_a_validation_error() -> None:
    with pytest.raises(InvalidElement, match="'ten' is not a number"):
        one("NumericLessThan", "s3:max-keys", "ten", {})
    with pytest.raises(InvalidElement, match="is not a number"):  # Numeric takes no policy variables
        one("NumericEquals", "s3:max-keys", "${aws:x}", {})


# -- Date ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, epoch",
    [
        ("2020-01-01T00:00:00Z", 1577836800),
        ("2020-01-01T01:00:00+01:00", 1577836800),
        ("2019-12-31T19:00:00-0500", 1577836800),
        ("2020-01-01", 1577836800),
        ("2020-01", 1577836800),
        ("2020-01-01T00:00Z", 1577836800),
        ("2020-01-01T00:00:00", 1577836800),
        ("1577836800", 1577836800),
        ("20200101T000000Z", 1577836800),
    ],
)
def test_dates_read_iso_8601_and_epoch_seconds(text: str, epoch: int) -> None:
    assert read_date(text) == epoch


def test_fractional_seconds_are_kept() -> None:
    assert read_date("2020-01-01T00:00:00.5Z") == read_date("1577836800.5")


@pytest.mark.parametrize(
    "op, policy, request_value, expected",
    [
        ("DateLessThan", "2017-12-31T23:59:59Z", "2017-08-15T12:00:00Z", True),
        ("DateLessThan", "2017-12-31T23:59:59Z", "2018-01-01T00:00:00Z", False),
        ("DateGreaterThan", "2017-07-01T00:00:00Z", "1502798400", True),
        ("DateGreaterThan", "1498867200", "2017-07-01T00:00:00Z", False),
        ("DateGreaterThanEquals", "1498867200", "2017-07-01T00:00:00Z", True),
        ("DateLessThanEquals", "2020-01-01", "2020-01-01T00:00:00Z", True),
        ("DateEquals", "2020-01-01T00:00:00Z", "1577836800", True),
        ("DateNotEquals", "2020-01-01T00:00:00Z", "1577836801", True),
        ("DateNotEquals", "2020-01-01T00:00:00Z", "2020-01-01T00:00:00+00:00", False),
    ],
)
def test_date_operators_in_both_formats(op: str, policy: str, request_value: str, expected: bool) -> None:
    assert one(op, "aws:CurrentTime", policy, {"aws:CurrentTime": request_value}) is expected


@pytest.mark.parametrize("op", ["DateLessThan", "DateNotEquals"])
def test_a_request_value_that_is_not_a_date_makes_the_condition_false(op: str) -> None:
    assert not one(op, "aws:CurrentTime", "2020-01-01T00:00:00Z", {"aws:CurrentTime": "yesterday"})
    assert not one(op, "aws:CurrentTime", "2020-01-01T00:00:00Z", {"aws:CurrentTime": "2020-13-45"})


def test_a_policy_date_that_is_not_a_date_is_a_validation_error() -> None:
    with pytest.raises(InvalidElement, match="not an ISO 8601 date-time or epoch seconds"):
        one("DateLessThan", "aws:CurrentTime", "next week", {})


# -- Bool, Binary ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "policy, request_value, expected",
    [
        ("true", "true", True),
        (True, "true", True),
        ("true", True, True),
        ("false", False, True),
        ("True", "TRUE", True),
        ("true", "false", False),
        ("true", "yes", False),
        ("true", "1", False),
    ],
)
def test_bool(policy: Any, request_value: Any, expected: bool) -> None:
    assert one("Bool", "aws:SecureTransport", policy, {"aws:SecureTransport": request_value}) is expected


def test_bool_policy_value_must_be_a_boolean() -> None:
    with pytest.raises(InvalidElement, match="Bool"):
        one("Bool", "aws:SecureTransport", "yes", {})


def test_bool_takes_policy_variables() -> None:
    condition = {"Bool": {"aws:SecureTransport": "${aws:PrincipalTag/needs-tls}"}}
    assert holds(condition, {"aws:SecureTransport": "true", "aws:PrincipalTag/needs-tls": "true"})
    assert not holds(condition, {"aws:SecureTransport": "false", "aws:PrincipalTag/needs-tls": "true"})
    assert not holds(condition, {"aws:SecureTransport": "true"})


def test_binary_equals_compares_bytes() -> None:
    encoded = base64.b64encode(b"BinaryValueInBase64").decode()
    assert one("BinaryEquals", "aws:key", encoded, {"aws:key": encoded})
    assert one("BinaryEquals", "aws:key", encoded, {"aws:key": b"BinaryValueInBase64"})
    assert not one("BinaryEquals", "aws:key", encoded, {"aws:key": b"other"})
    assert not one("BinaryEquals", "aws:key", encoded, {"aws:key": "not base64!"})
    with pytest.raises(InvalidElement, match="base64"):
        one("BinaryEquals", "aws:key", "not base64!", {})


# -- IP address ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "op, policy, address, expected",
    [
        ("IpAddress", "203.0.113.0/24", "203.0.113.1", True),
        ("IpAddress", "203.0.113.0/24", "203.0.114.1", False),
        ("IpAddress", "203.0.113.7", "203.0.113.7", True),
        ("IpAddress", "203.0.113.7", "203.0.113.8", False),
        ("IpAddress", "2001:DB8:1234:5678::/64", "2001:db8:1234:5678:ffff::1", True),
        ("IpAddress", "2001:DB8:1234:5678::/64", "2001:db8:1234:5679::1", False),
        ("IpAddress", "2001:db8::1", "2001:db8::1", True),
        ("IpAddress", "0.0.0.0/0", "2001:db8::1", False),
        ("IpAddress", "::/0", "192.0.2.1", False),
        ("IpAddress", ["192.0.2.0/24", "2001:db8::/32"], "2001:db8:ffff::9", True),
        ("NotIpAddress", "192.0.2.0/24", "198.51.100.1", True),
        ("NotIpAddress", "192.0.2.0/24", "192.0.2.200", False),
        ("NotIpAddress", ["192.0.2.0/24", "2001:db8::/32"], "2001:db8::5", False),
        ("IpAddress", "192.0.2.0/24", "not-an-ip", False),
        ("NotIpAddress", "192.0.2.0/24", "not-an-ip", False),
    ],
)
def test_ip_address_operators(op: str, policy: Any, address: str, expected: bool) -> None:
    assert one(op, "aws:SourceIp", policy, {"aws:SourceIp": address}) is expected


def test_a_bad_cidr_is_a_validation_error() -> None:
    with pytest.raises(InvalidElement, match="IpAddress"):
        one("IpAddress", "aws:SourceIp", "300.0.0.0/8", {})


# -- ARN -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("op", ["ArnEquals", "ArnLike"])
@pytest.mark.parametrize(
    "pattern, arn, expected",
    [
        ("arn:aws:sns:us-east-1:123456789012:TOPIC-ID", "arn:aws:sns:us-east-1:123456789012:TOPIC-ID", True),
        ("arn:aws:sns:us-east-1:123456789012:TOPIC-ID", "arn:aws:sns:us-east-1:123456789012:topic-id", False),
        ("arn:aws:sns:*:123456789012:*", "arn:aws:sns:eu-west-1:123456789012:alerts", True),
        ("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket/a/b:c", True),
        ("arn:aws:iam::*:role/*", "arn:aws:iam::123456789012:role/path/app", True),
        ("arn:aws:iam::12345678901?:root", "arn:aws:iam::123456789012:root", True),
        ("arn:aws:*:us-east-1:*:*", "arn:aws:sqs:us-east-1:1:q", True),
        ("arn:aws:sns:*:*", "arn:aws:sns:us-east-1:1:t", False),
        ("arn:aws:sns:us-east-1*:1:t", "arn:aws:sns:us-east-1:x:1:t", False),
        ("arn:aws:sns:us-east-1:1:t", "not an arn", False),
    ],
)
def test_arn_operators_match_segment_by_segment(op: str, pattern: str, arn: str, expected: bool) -> None:
    assert one(op, "aws:SourceArn", pattern, {"aws:SourceArn": arn}) is expected


def test_arn_negated_operators() -> None:
    assert one("ArnNotLike", "aws:SourceArn", "arn:aws:sns:*:1:*", {"aws:SourceArn": "arn:aws:sns:us-east-1:2:t"})
    assert not one("ArnNotEquals", "aws:SourceArn", "arn:aws:sns:*:1:*", {"aws:SourceArn": "arn:aws:sns:us-east-1:1:t"})


# -- Null ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "policy, context, expected",
    [
        ("true", {}, True),
        ("true", {"aws:TokenIssueTime": "2024-01-01T00:00:00Z"}, False),
        ("false", {}, False),
        ("false", {"aws:TokenIssueTime": "2024-01-01T00:00:00Z"}, True),
        (False, {"aws:TokenIssueTime": "x"}, True),
        ("true", {"aws:TokenIssueTime": ""}, True),
        ("true", {"aws:TokenIssueTime": []}, True),
        ("true", {"aws:TokenIssueTime": None}, True),
        (["true", "false"], {}, True),
    ],
)
def test_null(policy: Any, context: dict[str, Any], expected: bool) -> None:
    assert one("Null", "aws:TokenIssueTime", policy, context) is expected


def test_null_takes_only_true_or_false() -> None:
    with pytest.raises(InvalidElement, match="Null"):
        one("Null", "aws:TokenIssueTime", "maybe", {})


# -- set operators --------------------------------------------------------------------------------


ALLOWED = ["Department", "JobFunction"]


@pytest.mark.parametrize(
    "context, expected",
    [
        ({"aws:TagKeys": ["Department"]}, True),
        ({"aws:TagKeys": ["Department", "JobFunction"]}, True),
        ({"aws:TagKeys": ["Department", "Project"]}, False),
        ({"aws:TagKeys": ["department"]}, False),
        ({}, True),
        ({"aws:TagKeys": []}, True),
        ({"aws:TagKeys": ""}, True),
    ],
)
def test_for_all_values(context: dict[str, Any], expected: bool) -> None:
    assert one("ForAllValues:StringEquals", "aws:TagKeys", ALLOWED, context) is expected


@pytest.mark.parametrize(
    "context, expected",
    [
        ({"aws:TagKeys": ["Project", "Department"]}, True),
        ({"aws:TagKeys": ["Project"]}, False),
        ({}, False),
        ({"aws:TagKeys": []}, False),
        ({"aws:TagKeys": ""}, False),
    ],
)
def test_for_any_value(context: dict[str, Any], expected: bool) -> None:
    assert one("ForAnyValue:StringEquals", "aws:TagKeys", ALLOWED, context) is expected


def test_negated_operators_with_set_operators() -> None:
    # ForAllValues:StringNotEquals: none of the request values may match a policy value
    assert one("ForAllValues:StringNotEquals", "aws:TagKeys", ALLOWED, {"aws:TagKeys": ["Project", "Owner"]})
    assert not one("ForAllValues:StringNotEquals", "aws:TagKeys", ALLOWED, {"aws:TagKeys": ["Project", "Department"]})
    # ForAnyValue:StringNotEquals: at least one request value matches no policy value
    assert one("ForAnyValue:StringNotEquals", "aws:TagKeys", ALLOWED, {"aws:TagKeys": ["Project", "Department"]})
    assert not one("ForAnyValue:StringNotEquals", "aws:TagKeys", ALLOWED, {"aws:TagKeys": ["JobFunction", "Department"]})
    assert not one("ForAnyValue:StringNotEquals", "aws:TagKeys", ALLOWED, {})
    assert one("ForAllValues:StringNotLike", "aws:TagKeys", ["tmp*"], {})


def test_set_operators_with_wildcards_and_if_exists() -> None:
    assert one("ForAnyValue:StringLike", "aws:TagKeys", "env*", {"aws:TagKeys": ["owner", "environment"]})
    assert not one("ForAllValues:StringLike", "aws:TagKeys", "env*", {"aws:TagKeys": ["owner", "environment"]})
    assert one("ForAnyValue:StringEqualsIfExists", "aws:TagKeys", "env", {})
    assert one("ForAllValues:StringEqualsIfExists", "aws:TagKeys", "env", {"aws:TagKeys": ["env"]})
    assert one("ForAnyValue:Bool", "aws:x", "true", {"aws:x": [False, True]})
    assert not one("ForAllValues:Bool", "aws:x", "true", {"aws:x": [False, True]})


def test_a_multivalued_key_without_a_set_operator() -> None:
    # positive: some request value matches; negated: no request value matches any policy value
    assert one("StringEquals", "aws:TagKeys", "a", {"aws:TagKeys": ["a", "b"]})
    assert not one("StringNotEquals", "aws:TagKeys", "a", {"aws:TagKeys": ["a", "b"]})
    assert one("StringNotEquals", "aws:TagKeys", "c", {"aws:TagKeys": ["a", "b"]})


# -- grammar of the Condition element ------------------------------------------------------------


@pytest.mark.parametrize(
    "condition, words",
    [
        ({"StringEquals": {"username": "x"}}, "must be prefixed by a service"),
        ({"StringEquals": {"aws:username": []}}, "empty list of values"),
        ({"StringEquals": {"aws:username": None}}, "condition values must be strings, numbers or booleans"),
        ({"StringEquals": {"aws:username": [{"a": 1}]}}, "condition values must be"),
        ({"StringEquals": {}}, "non-empty object"),
        ({"StringEquals": "aws:username"}, "non-empty object"),
        ({"Stringequals": {}}, "did you mean 'StringEquals'"),
        (["StringEquals"], "must be an object"),
    ],
)
def test_malformed_conditions(condition: Any, words: str) -> None:
    with pytest.raises(InvalidElement, match=words):
        ConditionBlock(condition, variables=True)


# -- policy variables ----------------------------------------------------------------------------


def ctx(**values: Any) -> ContextValues:
    return ContextValues.from_mapping({key.replace("__", ":").replace("_slash_", "/"): value for key, value in values.items()})


def test_variables_resolve_case_insensitively() -> None:
    template = Template("home/${AWS:UserName}/")
    assert template.render(ctx(aws__username="alice")) == "home/alice/"
    assert template.keys == ("aws:username",)


def test_variable_defaults_and_quotes() -> None:
    assert Template("b-${aws:PrincipalTag/team, 'company-wide'}").render(ctx()) == "b-company-wide"
    assert Template("b-${aws:PrincipalTag/team, 'company-wide'}").render(ctx(aws__PrincipalTag_slash_team="yellow")) == "b-yellow"
    assert Template("${aws:x,'it''s'}").render(ctx()) == "it's"
    assert Template("${ aws:x , 'd' }").render(ctx()) == "d"


def test_a_variable_without_value_or_default_resolves_to_nothing() -> None:
    assert Template("home/${aws:username}").render(ctx()) is None
    assert Template("home/${aws:username}").render(ctx(aws__username=["a", "b"])) is None, "multivalued keys are no variables"


def test_special_characters() -> None:
    template = Template("a${*}b${?}c${$}d")
    assert template.render(ctx()) == "a*b?c$d"
    assert not template.has_variables
    assert one("StringLike", "aws:x", "a${*}", {"aws:x": "a*"})
    assert not one("StringLike", "aws:x", "a${*}", {"aws:x": "ab"}), "${*} is a literal asterisk"


def test_malformed_variables_stay_text() -> None:
    for text in ("${aws:username", "${}", "${aws:x, default}", "${aws:x, 'unterminated}", "$ {aws:x}"):
        assert Template(text).render(ctx(aws__username="alice", aws__x="v")) == text


def test_values_substituted_into_patterns_are_literal() -> None:
    condition = {"StringLike": {"s3:prefix": "home/${aws:username}/*"}}
    assert holds(condition, {"aws:username": "a*", "s3:prefix": "home/a*/x"})
    assert not holds(condition, {"aws:username": "a*", "s3:prefix": "home/abc/x"})


def test_variables_in_conditions_without_value() -> None:
    # "Condition operators like StringEquals or StringLike do not match ... Inverted condition
    # operators like StringNotEquals or StringNotLike do match against a null value."
    assert not holds({"StringEquals": {"aws:x": "${aws:PrincipalTag/team}"}}, {"aws:x": "blue"})
    assert not holds({"StringLike": {"aws:x": "${aws:PrincipalTag/team}*"}}, {"aws:x": "blue"})
    assert holds({"StringNotEquals": {"aws:x": "${aws:PrincipalTag/team}"}}, {"aws:x": "blue"})
    assert holds({"StringNotLike": {"aws:x": "${aws:PrincipalTag/team}"}}, {"aws:x": "blue"})
    assert holds({"StringEquals": {"aws:x": ["${aws:PrincipalTag/team}", "blue"]}}, {"aws:x": "blue"})


def test_variables_in_arn_conditions() -> None:
    condition = {"ArnLike": {"aws:SourceArn": "arn:aws:sns:*:*:${aws:username}-*"}}
    assert holds(condition, {"aws:username": "alice", "aws:SourceArn": "arn:aws:sns:us-east-1:1:alice-alerts"})
    assert not holds(condition, {"aws:username": "alice", "aws:SourceArn": "arn:aws:sns:us-east-1:1:bob-alerts"})


def test_variables_are_text_when_disabled() -> None:
    condition = {"StringEquals": {"aws:x": "${aws:username}"}}
    assert holds(condition, {"aws:x": "${aws:username}", "aws:username": "alice"}, variables=False)
    assert not holds(condition, {"aws:x": "alice", "aws:username": "alice"}, variables=False)


def test_context_values_are_normalized() -> None:
    values = ContextValues.from_mapping({"AWS:MultiFactorAuthPresent": True, "s3:max-keys": 10, "aws:TagKeys": ["a", "b"], "aws:none": None})
    assert values.get("aws:multifactorauthpresent") == ("true",)
    assert values.get("s3:max-keys") == ("10",)
    assert values.get("aws:tagkeys") == ("a", "b")
    assert values.get("aws:none") is None
