"""The decision: explicit deny beats allow beats implicit deny, combining policies as AWS does in one account.

AWS: "Policy evaluation logic" and "How AWS enforcement code logic evaluates requests to allow or
deny access" (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-denyallow.html),
"Policy evaluation for requests within a single account"
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-basics.html),
"Permissions boundaries for IAM entities"
(https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html):

1. A ``Deny`` statement that applies, in any identity policy, the resource policy or a permissions
   boundary, gives ``ExplicitDeny``.
2. The account root user has full access otherwise ("all requests are implicitly denied with the
   exception of the AWS account root user").
3. A resource-policy ``Allow`` that names the requesting IAM user, role session or federated user
   (or everyone, ``"*"``) allows, whatever the identity policies and boundaries say. One that names
   the role ARN allows only if every permissions boundary allows too. One that names only the
   account delegates to the account: it takes an identity-policy allow.
4. An identity-policy ``Allow`` allows when every permissions boundary (if any) allows too.
5. Otherwise ``ImplicitDeny``.

Organizations SCPs/RCPs, session policies and cross-account requests are not modelled.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from summit.security.policies.errors import PolicyError, RequestError
from summit.security.policies.grammar import IDENTITY, RESOURCE, Policy, Statement, parse_policy
from summit.security.policies.principals import DIRECT, ROLE, PrincipalId, parse_principal
from summit.security.policies.variables import ContextValue, ContextValues

ALLOW, EXPLICIT_DENY, IMPLICIT_DENY = "Allow", "ExplicitDeny", "ImplicitDeny"
_PRINCIPAL_TYPES = {
    "root": "Account", "user": "User", "role": "AssumedRole", "session": "AssumedRole", "federated": "FederatedUser",
}  # fmt: skip

PolicyInput = Policy | Mapping[str, Any] | str | bytes


@dataclass(frozen=True, slots=True)
class Request:
    """Who (``principal``, an ARN), does what (``action``, ``service:Action``), to what (``resource``, an
    ARN), in which context (condition keys to ``str | list[str] | bool | number``)."""

    principal: str
    action: str
    resource: str
    context: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: object) -> Request:
        """From ``{"principal", "action", "resource", "context"}``; raise RequestError when malformed."""
        if not isinstance(raw, Mapping):
            raise RequestError("request must be an object with principal, action, resource and context")
        unknown = sorted(set(raw) - {"principal", "action", "resource", "context"})
        if unknown:
            raise RequestError(f"request: unknown field {unknown[0]!r} (expected principal, action, resource, context)")
        context = raw.get("context")
        context = {} if context is None else context
        if not isinstance(context, Mapping):
            raise RequestError("request.context must be an object of condition keys to values")
        return cls(raw.get("principal"), raw.get("action"), raw.get("resource"), context)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class MatchedStatement:
    """A statement that took part in the decision, and the policy it came from."""

    policy: str  # identityPolicies[0] | resourcePolicy | permissionBoundaries[0]
    policy_id: str | None
    index: int
    sid: str | None
    effect: str

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"policy": self.policy, "statement": self.index, "effect": self.effect}
        if self.sid:
            out["sid"] = self.sid
        if self.policy_id:
            out["policyId"] = self.policy_id
        return out


@dataclass(frozen=True, slots=True)
class Decision:
    """``decision`` is ``"Allow"``, ``"ExplicitDeny"`` or ``"ImplicitDeny"``; ``matched`` explains it."""

    decision: str
    matched: tuple[MatchedStatement, ...]
    reason: str

    @property
    def allowed(self) -> bool:
        return self.decision == ALLOW

    def to_dict(self, *, explain: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"decision": self.decision}
        if explain:
            out["reason"] = self.reason
            out["matched"] = [m.to_dict() for m in self.matched]
        return out


@dataclass(frozen=True, slots=True)
class _Prepared:
    principal: PrincipalId
    action: str
    resource: str
    context: ContextValues


def evaluate(
    request: Request | Mapping[str, Any],
    identity_policies: Iterable[PolicyInput] = (),
    resource_policy: PolicyInput | None = None,
    permission_boundaries: Iterable[PolicyInput] = (),
    *,
    now: dt.datetime | None = None,
) -> Decision:
    """Decide a request against the policies (documents are parsed here; pass ``Policy`` objects,
    from ``parse_policy``, to parse once). Raise ``PolicyError`` or ``RequestError`` on bad input."""
    identity = _parsed(identity_policies, IDENTITY, "identityPolicies")
    boundaries = _parsed(permission_boundaries, IDENTITY, "permissionBoundaries")
    resource = []
    if resource_policy is not None:
        resource = [("resourcePolicy", _parse(resource_policy, RESOURCE, "resourcePolicy"))]
    req = _prepare(request if isinstance(request, Request) else Request.from_dict(request), now)

    denies = [m for label, p in (*identity, *resource, *boundaries) for m in _matching(label, p, "Deny", req)]
    if denies:
        return Decision(EXPLICIT_DENY, tuple(denies), "an applicable Deny statement denies the request")
    if req.principal.kind == "root":
        return Decision(ALLOW, (), "the account root user has full access unless a policy denies it")

    direct, via_role = [], []
    for label, policy in resource:
        for match, grant in _matching_grants(label, policy, req):
            if grant == DIRECT:
                direct.append(match)
            elif grant == ROLE:
                via_role.append(match)
    identity_allows = [m for label, p in identity for m in _matching(label, p, "Allow", req)]
    boundary_allows: list[MatchedStatement] = []
    blocking_boundary = None
    for label, policy in boundaries:
        found = _matching(label, policy, "Allow", req)
        if not found and blocking_boundary is None:
            blocking_boundary = label
        boundary_allows += found
    within_boundaries = blocking_boundary is None

    # identity-based allows and role-ARN grants count only within every permissions boundary
    bounded = bool(identity_allows or via_role) and within_boundaries
    if direct or bounded:
        matched = direct + (identity_allows + via_role + boundary_allows if bounded else [])
        if bounded and identity_allows:
            reason = "allowed by an identity-based policy" + (" within the permissions boundary" if boundaries else "")
        elif direct:
            reason = "a resource-based policy allows the principal directly"
        else:
            reason = "a resource-based policy allows the principal's role, within the permissions boundary"
        return Decision(ALLOW, tuple(matched), reason)
    if identity_allows or via_role:
        return Decision(
            IMPLICIT_DENY,
            tuple(identity_allows + via_role),
            f"allowed by {'an identity-based' if identity_allows else 'a resource-based'} policy, "
            f"but the permissions boundary {blocking_boundary} does not allow it",
        )
    return Decision(IMPLICIT_DENY, (), "no applicable statement allows the request")


def _prepare(request: Request, now: dt.datetime | None) -> _Prepared:
    for name in ("principal", "action", "resource"):
        value = getattr(request, name)
        if not isinstance(value, str) or (not value and name != "resource"):
            raise RequestError(f"request.{name} must be a non-empty string, not {value!r}")
    principal = parse_principal(request.principal)
    context = ContextValues.from_mapping(request.context).with_defaults(_derived_keys(principal, now))
    return _Prepared(principal, request.action, request.resource, context)


def _derived_keys(principal: PrincipalId, now: dt.datetime | None) -> dict[str, tuple[ContextValue, ...]]:
    """The global keys AWS puts in every request context, from the principal and the clock."""
    moment = now or dt.datetime.now(dt.timezone.utc)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    keys: dict[str, tuple[ContextValue, ...]] = {
        "aws:currenttime": (moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),),
        "aws:epochtime": (str(int(moment.timestamp())),),
    }
    if principal.arn is None:
        return keys
    arn = principal.raw
    if principal.kind == "session":  # aws:PrincipalArn of a role session is the role's ARN
        arn = f"arn:{principal.arn.partition}:iam::{principal.arn.account}:role/{principal.name}"
    keys["aws:principalarn"] = (arn,)
    if principal.account:
        keys["aws:principalaccount"] = (principal.account,)
    if principal.kind in _PRINCIPAL_TYPES:
        keys["aws:principaltype"] = (_PRINCIPAL_TYPES[principal.kind],)
    if principal.kind == "user" and principal.name:
        keys["aws:username"] = (principal.name,)
    if principal.kind == "root" and principal.account:
        keys["aws:userid"] = (principal.account,)
    return keys


def _parsed(policies: Iterable[PolicyInput], kind: str, label: str) -> list[tuple[str, Policy]]:
    if isinstance(policies, (Mapping, str, bytes, Policy)):
        raise TypeError(f"{label} must be a list of policies")
    return [(f"{label}[{i}]", _parse(p, kind, f"{label}[{i}]")) for i, p in enumerate(policies)]


def _parse(policy: PolicyInput, kind: str, label: str) -> Policy:
    try:
        return parse_policy(policy, kind)
    except PolicyError as error:
        raise error.within(label) from None


def _applies(statement: Statement, req: _Prepared) -> bool:
    """Action, resource and condition match (the principal is checked by the caller)."""
    action = any(glob.matches(req.action) for glob in statement.actions)
    if action == statement.not_action:
        return False
    if statement.resources is not None:
        resource = any(glob.matches(req.resource, req.context) is True for glob in statement.resources)
        if resource == statement.not_resource:
            return False
    return statement.condition is None or statement.condition.holds(req.context)


def _grant(statement: Statement, principal: PrincipalId) -> str | None:
    spec = statement.principal
    if spec is None:
        return DIRECT
    if statement.not_principal:
        return None if spec.excludes(principal) else DIRECT
    return spec.grant(principal)


def _match(label: str, policy: Policy, statement: Statement) -> MatchedStatement:
    return MatchedStatement(label, policy.id, statement.index, statement.sid, statement.effect)


def _matching(label: str, policy: Policy, effect: str, req: _Prepared) -> list[MatchedStatement]:
    out = []
    for statement in policy.statements:
        if statement.effect != effect:
            continue
        if policy.kind == RESOURCE and _grant(statement, req.principal) is None:
            continue
        if _applies(statement, req):
            out.append(_match(label, policy, statement))
    return out


def _matching_grants(label: str, policy: Policy, req: _Prepared) -> Sequence[tuple[MatchedStatement, str]]:
    out = []
    for statement in policy.statements:
        if statement.effect != "Allow":
            continue
        grant = _grant(statement, req.principal)
        if grant is not None and _applies(statement, req):
            out.append((_match(label, policy, statement), grant))
    return out
