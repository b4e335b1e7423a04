"""Parse and validate an IAM JSON policy document, once, into matchers ready to evaluate.

AWS: "Grammar of the IAM JSON policy language"
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_grammar.html) and
"IAM JSON policy elements reference"
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements.html):

- a policy has ``Version`` ("2012-10-17" or "2008-10-17"; policy variables only under 2012-10-17,
  and a missing Version means 2008-10-17), an optional ``Id`` and ``Statement`` (one object or a list);
- a statement has an optional ``Sid`` (unique in the policy), ``Effect`` (``Allow`` | ``Deny``),
  ``Action`` or ``NotAction``, ``Resource`` or ``NotResource``, an optional ``Condition``, and, in a
  resource-based policy only, ``Principal`` or ``NotPrincipal``;
- element names, ``Effect`` values and condition operators are case-sensitive ("Invalid Condition
  type : stringEquals" is IAM's answer); actions and condition keys are not;
- an action is ``*`` or ``service:action``; a resource is ``*`` or an ARN;
- no element may appear twice (checked when the document is given as JSON text).

Every problem raises ``PolicyError`` naming the element and the statement.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from summit.security.policies.arn import Glob, action_glob, is_arn_pattern
from summit.security.policies.conditions import ConditionBlock
from summit.security.policies.errors import InvalidElement, PolicyError
from summit.security.policies.principals import PrincipalSpec
from summit.security.policies.variables import Template

IDENTITY, RESOURCE = "identity", "resource"
VERSIONS = ("2012-10-17", "2008-10-17")
VARIABLES_VERSION = "2012-10-17"
POLICY_ELEMENTS = ("Version", "Id", "Statement")
STATEMENT_ELEMENTS = (
    "Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition",
)  # fmt: skip


@dataclass(frozen=True, slots=True, eq=False)
class Statement:
    """One parsed statement. ``not_*`` flags say the list is a ``NotAction``/``NotResource``/``NotPrincipal``."""

    index: int
    sid: str | None
    effect: str
    actions: tuple[Glob, ...]
    not_action: bool
    resources: tuple[Glob, ...] | None  # None: no Resource element (a resource policy's own resource)
    not_resource: bool
    principal: PrincipalSpec | None
    not_principal: bool
    condition: ConditionBlock | None
    source: Mapping[str, Any] = field(repr=False)

    @property
    def label(self) -> str:
        return f'Statement[{self.index}]' + (f' (Sid "{self.sid}")' if self.sid else "")


@dataclass(frozen=True, slots=True, eq=False)
class Policy:
    """A parsed policy: ``kind`` is ``"identity"`` (also used for permissions boundaries) or ``"resource"``."""

    kind: str
    version: str
    id: str | None
    statements: tuple[Statement, ...]
    source: Mapping[str, Any] = field(repr=False)


def parse_policy(document: Mapping[str, Any] | str | bytes | Policy, kind: str = IDENTITY) -> Policy:
    """Parse and validate a policy document (a mapping, or JSON text); raise ``PolicyError``."""
    if isinstance(document, Policy):
        if document.kind != kind:
            raise PolicyError(f"a {document.kind}-based policy was given where an {kind}-based one is expected"
                              if kind == IDENTITY else
                              f"an {document.kind}-based policy was given where a {kind}-based one is expected")
        return document
    if kind not in (IDENTITY, RESOURCE):
        raise ValueError(f"kind must be {IDENTITY!r} or {RESOURCE!r}, not {kind!r}")
    if isinstance(document, (str, bytes)):
        document = load_json(document)
    if not isinstance(document, Mapping):
        raise PolicyError(f"a policy must be a JSON object, not {_json_type(document)}")
    _no_unknown(document, POLICY_ELEMENTS, "policy element", None, None)
    version = document.get("Version", "2008-10-17")
    if version not in VERSIONS:
        raise PolicyError(f"Version must be \"2012-10-17\" or \"2008-10-17\", not {version!r}", element="Version")
    policy_id = document.get("Id")
    if policy_id is not None and not isinstance(policy_id, str):
        raise PolicyError(f"Id must be a string, not {_json_type(policy_id)}", element="Id")
    if "Statement" not in document:
        raise PolicyError("a policy needs a Statement element", element="Statement")
    raw = document["Statement"]
    items = [raw] if isinstance(raw, Mapping) else raw
    if not isinstance(items, list):
        raise PolicyError(f"Statement must be an object or a list, not {_json_type(raw)}", element="Statement")
    if not items:
        raise PolicyError("Statement must hold at least one statement", element="Statement")
    statements = tuple(
        _statement(item, index, kind, variables=version == VARIABLES_VERSION) for index, item in enumerate(items)
    )
    seen: dict[str, int] = {}
    for statement in statements:
        if statement.sid is not None:
            if statement.sid in seen:
                raise PolicyError(
                    f"Sid {statement.sid!r} is already used by Statement[{seen[statement.sid]}]; Sids must be unique",
                    element="Sid", index=statement.index, sid=statement.sid,
                )  # fmt: skip
            seen[statement.sid] = statement.index
    return Policy(kind, version, policy_id, statements, document)


def load_json(text: str | bytes) -> Any:
    """JSON text to Python, refusing duplicate keys (the grammar forbids repeating an element)."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise PolicyError(f"the key {key!r} appears twice in one JSON object", element=key)
            out[key] = value
        return out

    try:
        return json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as error:
        raise PolicyError(f"malformed JSON: {error}") from None
    except UnicodeDecodeError:
        raise PolicyError("malformed JSON: the text is not UTF-8") from None


def _statement(raw: object, index: int, kind: str, *, variables: bool) -> Statement:
    if not isinstance(raw, Mapping):
        raise PolicyError(f"a statement must be a JSON object, not {_json_type(raw)}", index=index)
    sid = raw.get("Sid")
    if sid is not None and not isinstance(sid, str):
        raise PolicyError(f"Sid must be a string, not {_json_type(sid)}", element="Sid", index=index)
    sid = sid or None

    def fail(message: str, element: str | None = None) -> PolicyError:
        return PolicyError(message, element=element, index=index, sid=sid)

    _no_unknown(raw, STATEMENT_ELEMENTS, "statement element", index, sid)
    if "Effect" not in raw:
        raise fail('missing Effect ("Allow" or "Deny")', "Effect")
    effect = raw["Effect"]
    if effect not in ("Allow", "Deny"):
        raise fail(f'Effect must be "Allow" or "Deny", not {effect!r}', "Effect")

    action_key = _one_of(raw, "Action", "NotAction", fail, required=True)
    actions = tuple(
        action_glob(_check_action(action, action_key, fail)) for action in _string_list(raw[action_key], action_key, fail)
    )

    resource_key = _one_of(raw, "Resource", "NotResource", fail, required=kind == IDENTITY)
    resources = None
    if resource_key is not None:
        resources = tuple(
            Glob(Template(_check_resource(r, resource_key, fail), variables=variables), arn=True)
            for r in _string_list(raw[resource_key], resource_key, fail)
        )

    principal_key = _one_of(raw, "Principal", "NotPrincipal", fail, required=False)
    principal = None
    if kind == IDENTITY and principal_key is not None:
        raise fail(
            f"{principal_key} is not allowed in an identity-based policy (only in resource-based ones)", principal_key
        )
    if kind == RESOURCE:
        if principal_key is None:
            raise fail("a resource-based policy statement needs a Principal or NotPrincipal", "Principal")
        try:
            principal = PrincipalSpec(raw[principal_key])
        except InvalidElement as error:
            raise fail(f"{principal_key}: {error}", principal_key) from None

    condition = None
    if "Condition" in raw:
        try:
            condition = ConditionBlock(raw["Condition"], variables=variables)
        except InvalidElement as error:
            raise fail(f"Condition: {error}", "Condition") from None
        if not condition.tests:
            condition = None

    return Statement(
        index=index, sid=sid, effect=effect,
        actions=actions, not_action=action_key == "NotAction",
        resources=resources, not_resource=resource_key == "NotResource",
        principal=principal, not_principal=principal_key == "NotPrincipal",
        condition=condition, source=raw,
    )  # fmt: skip


def _one_of(raw: Mapping[str, Any], positive: str, negative: str, fail: Any, *, required: bool) -> str | None:
    if positive in raw and negative in raw:
        raise fail(f"{positive} and {negative} cannot both be in one statement", positive)
    if positive in raw:
        return positive
    if negative in raw:
        return negative
    if required:
        raise fail(f"missing {positive} (or {negative})", positive)
    return None


def _string_list(value: object, element: str, fail: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise fail(f"{element} must not be an empty list", element)
    for item in items:
        if not isinstance(item, str) or not item:
            raise fail(f"{element} must be a string or a list of strings, not {_json_type(item)}", element)
    return items  # type: ignore[return-value]


def _check_action(action: str, element: str, fail: Any) -> str:
    prefix, colon, name = action.partition(":")
    if action != "*" and (not colon or not prefix or not name):
        raise fail(f"{element} {action!r} must be \"*\" or service:action, like s3:GetObject", element)
    return action


def _check_resource(resource: str, element: str, fail: Any) -> str:
    if resource != "*" and not is_arn_pattern(resource):
        raise fail(
            f'{element} {resource!r} must be in ARN format (arn:partition:service:region:account:resource) or "*"',
            element,
        )
    return resource


def _no_unknown(raw: Mapping[str, Any], known: tuple[str, ...], what: str, index: int | None, sid: str | None) -> None:
    for key in raw:
        if key not in known:
            hint = _hint(key, known)
            raise PolicyError(f"unknown {what} {key!r}{hint}", element=key, index=index, sid=sid)


def _hint(key: object, known: tuple[str, ...]) -> str:
    if not isinstance(key, str):
        return ""
    for name in known:
        if name.lower() == key.lower():
            return f" (did you mean {name!r}? element names are case-sensitive)"
    close = difflib.get_close_matches(key, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else f" (expected one of {', '.join(known)})"


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__
