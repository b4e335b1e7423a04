"""``summit iam``: IAM-style policies (a policy simulator)."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Annotated, Any

import typer
from rich.markup import escape

from summit.cli.main import app, console

iam_app = typer.Typer(help="IAM-style policies: evaluate a request the way AWS IAM would.", no_args_is_help=True)
app.add_typer(iam_app, name="iam")

_FIELDS = ("identityPolicies", "resourcePolicy", "permissionBoundaries", "request")


@iam_app.command("evaluate")
def evaluate(
    explain: Annotated[
        bool, typer.Option("--explain", help="Also print the reason and the statements that decided.")
    ] = False,
) -> None:
    """Read one JSON document on stdin and print the decision.

    Input: {"identityPolicies": [...], "resourcePolicy": {...} or null, "permissionBoundaries": [...],
    "request": {"principal": "arn:aws:iam::123456789012:user/alice", "action": "s3:GetObject",
    "resource": "arn:aws:s3:::bucket/key", "context": {"aws:SourceIp": "203.0.113.7"}}}

    Output: {"decision": "Allow" | "ExplicitDeny" | "ImplicitDeny"}. Exits 2 on malformed JSON or an
    invalid policy or request.
    """
    from summit.security.policies import PolicyError, Request, RequestError
    from summit.security.policies import evaluate as decide
    from summit.security.policies.grammar import load_json

    try:
        document = load_json(sys.stdin.read())
        identity, resource, boundaries, request = _unpack(document)
        decision = decide(
            Request.from_dict(request),
            identity_policies=identity,
            resource_policy=resource,
            permission_boundaries=boundaries,
        )
    except (PolicyError, RequestError) as error:
        console.print(f"[red]error:[/red] {escape(str(error))}", soft_wrap=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps(decision.to_dict(explain=explain), indent=2 if explain else None))


def _unpack(document: Any) -> tuple[list[Any], Any, list[Any], Any]:
    from summit.security.policies import RequestError

    if not isinstance(document, Mapping):
        raise RequestError(f"the input must be a JSON object with {', '.join(_FIELDS)}")
    unknown = [key for key in document if key not in _FIELDS]
    if unknown:
        raise RequestError(f"unknown field {unknown[0]!r} (expected {', '.join(_FIELDS)})")
    if "request" not in document:
        raise RequestError('missing "request": {"principal", "action", "resource", "context"}')
    lists = []
    for name in ("identityPolicies", "permissionBoundaries"):
        value = document.get(name)
        value = [] if value is None else value
        if not isinstance(value, list):
            raise RequestError(f"{name} must be a list of policy documents")
        lists.append(value)
    return lists[0], document.get("resourcePolicy"), lists[1], document["request"]
