"""``summit iam evaluate``: one JSON document on stdin, the decision on stdout, exit 2 on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from summit.cli import iam, main  # noqa: F401  (registers the iam commands)

TABLE = json.loads((Path(__file__).parent / "aws_policy_cases.json").read_text())
POLICIES = {name: entry["document"] for name, entry in TABLE["policies"].items()}
ALICE = "arn:aws:iam::123456789012:user/alice"
ALLOW_S3 = {"Version": "2012-10-17", "Statement": [{"Sid": "S3", "Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}


def run(document: Any, *args: str) -> Any:
    text = document if isinstance(document, str) else json.dumps(document)
    return CliRunner().invoke(main.app, ["iam", "evaluate", *args], input=text, env={"COLUMNS": "200"})


def request(action: str = "s3:GetObject", **context: Any) -> dict[str, Any]:
    return {"principal": ALICE, "action": action, "resource": "arn:aws:s3:::b/k", "context": context}


def test_allow() -> None:
    result = run({"identityPolicies": [ALLOW_S3], "resourcePolicy": None, "permissionBoundaries": [], "request": request()})
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"decision": "Allow"}


def test_implicit_and_explicit_deny() -> None:
    implicit = run({"identityPolicies": [ALLOW_S3], "request": request("ec2:RunInstances")})
    assert json.loads(implicit.stdout) == {"decision": "ImplicitDeny"}
    deny = {"Version": "2012-10-17", "Statement": {"Effect": "Deny", "Action": "*", "Resource": "*",
                                                   "Condition": {"NotIpAddress": {"aws:SourceIp": "192.0.2.0/24"}}}}  # fmt: skip
    explicit = run({"identityPolicies": [ALLOW_S3, deny], "request": request(**{"aws:SourceIp": "198.51.100.1"})})
    assert explicit.exit_code == 0
    assert json.loads(explicit.stdout) == {"decision": "ExplicitDeny"}


def test_explain_lists_the_statements() -> None:
    result = run({"identityPolicies": [ALLOW_S3], "request": request()}, "--explain")
    assert result.exit_code == 0
    out = json.loads(result.stdout)
    assert out["decision"] == "Allow"
    assert out["matched"] == [{"policy": "identityPolicies[0]", "statement": 0, "effect": "Allow", "sid": "S3"}]
    assert out["reason"]


@pytest.mark.parametrize("case", TABLE["cases"], ids=[case["name"] for case in TABLE["cases"]])
def test_the_aws_cases_through_the_cli(case: dict[str, Any]) -> None:
    document = {
        "identityPolicies": [POLICIES[name] for name in case["identityPolicies"]],
        "resourcePolicy": POLICIES[case["resourcePolicy"]] if case["resourcePolicy"] else None,
        "permissionBoundaries": [POLICIES[name] for name in case["permissionBoundaries"]],
        "request": case["request"],
    }
    result = run(document)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"decision": case["expected"]}


@pytest.mark.parametrize(
    "stdin, words",
    [
        ("{not json", "malformed JSON"),
        ("", "malformed JSON"),
        ('{"request": {}, "request": {}}', "appears twice"),
        ("[]", "the input must be a JSON object"),
        ('{"identityPolicies": []}', 'missing "request"'),
        ('{"identityPolicy": [], "request": {}}', "unknown field 'identityPolicy'"),
        ('{"identityPolicies": {}, "request": {}}', "identityPolicies must be a list"),
        (json.dumps({"identityPolicies": [{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*"}]}], "request": request()}),
         "identityPolicies[0]: Statement[0]: missing Resource (or NotResource)"),
        (json.dumps({"identityPolicies": [], "resourcePolicy": {"Statement": {"Effect": "Allow", "Action": "s3:*"}}, "request": request()}),
         "resourcePolicy: Statement[0]: a resource-based policy statement needs a Principal"),
        (json.dumps({"permissionBoundaries": [{"Statement": {"Sid": "B", "Effect": "Allow", "Action": "s3:*", "Resource": "*",
                                                             "Condition": {"StringEqualz": {"aws:x": "y"}}}}], "request": request()}),
         "permissionBoundaries[0]: Statement[0] (Sid \"B\"): Condition: unknown condition operator 'StringEqualz'"),
        (json.dumps({"identityPolicies": [ALLOW_S3], "request": {"principal": ALICE, "action": "s3:GetObject"}}), "request.resource"),
    ],
)
def test_bad_input_exits_2_with_a_clear_error(stdin: str, words: str) -> None:
    result = run(stdin)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert words in result.stderr
    assert result.stderr.startswith("error:")


def test_as_a_process() -> None:
    code = "from summit.cli import main, iam; main.app()"
    document = {"identityPolicies": [ALLOW_S3], "request": request()}
    ok = subprocess.run([sys.executable, "-c", code, "iam", "evaluate"], input=json.dumps(document),
                        capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout) == {"decision": "Allow"}
    bad = subprocess.run([sys.executable, "-c", code, "iam", "evaluate"], input="{",
                         capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert bad.returncode == 2
    assert "malformed JSON" in bad.stderr and bad.stdout == ""
