"""IAM-style policies: AWS's JSON policy grammar and evaluation logic, so AWS policies work unchanged.

    from summit.security.policies import Request, evaluate, parse_policy

    policy = parse_policy(document)                      # once; raises PolicyError
    decision = evaluate(Request(principal, action, resource, context), identity_policies=[policy])
    decision.decision                                    # "Allow" | "ExplicitDeny" | "ImplicitDeny"

See docs/iam.md for what is implemented and the AWS pages each behaviour follows.
"""

from summit.security.policies.errors import PolicyError, RequestError
from summit.security.policies.evaluate import (
    ALLOW,
    EXPLICIT_DENY,
    IMPLICIT_DENY,
    Decision,
    MatchedStatement,
    Request,
    evaluate,
)
from summit.security.policies.grammar import Policy, Statement, parse_policy

__all__ = [
    "ALLOW",
    "Decision",
    "EXPLICIT_DENY",
    "IMPLICIT_DENY",
    "MatchedStatement",
    "Policy",
    "PolicyError",
    "Request",
    "RequestError",
    "Statement",
    "evaluate",
    "parse_policy",
]
