"""Principals: who makes a request, and the ``Principal``/``NotPrincipal`` element of resource policies.

AWS: "AWS JSON policy elements: Principal"
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html):

- ``"*"`` (or ``{"AWS": "*"}``) is everyone; ``*`` cannot stand for part of a name or ARN;
- ``{"AWS": "123456789012"}`` or ``arn:aws:iam::123456789012:root`` is the account: it "delegates
  authority to the account", whose identities still need an identity-based allow;
- a role ARN matches the sessions of that role (``arn:aws:sts::<account>:assumed-role/<role>/<session>``);
- ``Service``, ``Federated`` and ``CanonicalUser`` name those principals exactly.

"AWS JSON policy elements: NotPrincipal": with ``Deny``, AWS checks the account, the role and the
session of a principal, so a principal escapes the deny only when every one of them is listed (the
doc's advice to list the account ARN too). This module checks that chain.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from summit.security.policies.arn import Arn, parse_arn
from summit.security.policies.errors import InvalidElement

DIRECT, ROLE, ACCOUNT = "direct", "role", "account"
PRINCIPAL_TYPES = ("AWS", "Service", "Federated", "CanonicalUser")
_ACCOUNT_ID = re.compile(r"\d{12}")


@dataclass(frozen=True, slots=True)
class PrincipalId:
    """The principal of a request: an ARN (user, role, role session, federated user, root) or a name."""

    raw: str
    arn: Arn | None
    kind: str  # "root" | "user" | "role" | "session" | "federated" | "other"
    name: str | None = None  # user name, role name (also for a session), federated user name

    @property
    def account(self) -> str | None:
        return self.arn.account if self.arn else None

    @property
    def role_key(self) -> tuple[str, str, str] | None:
        if self.arn and self.name and self.kind in ("role", "session"):
            return (self.arn.partition, self.arn.account, self.name)
        return None

    @property
    def account_key(self) -> tuple[str, str] | None:
        return (self.arn.partition, self.arn.account) if self.arn and self.arn.account else None

    def chain(self) -> tuple[tuple[str, object], ...]:
        """The identities AWS checks for this principal: itself, its role, its account."""
        links: list[tuple[str, object]] = []
        if self.kind == "role":
            links.append(("role", self.role_key))
        elif self.kind != "root":
            links.append(("name", self.raw))
        if self.kind == "session":
            links.append(("role", self.role_key))
        if self.account_key:
            links.append(("account", self.account_key))
        return tuple(links)


def parse_principal(raw: str) -> PrincipalId:
    """Classify a request principal by the shape of its ARN."""
    arn = parse_arn(raw)
    if arn is None:
        return PrincipalId(raw, None, "other")
    resource = arn.resource
    if arn.service == "iam":
        if resource == "root":
            return PrincipalId(raw, arn, "root")
        if resource.startswith("user/"):
            return PrincipalId(raw, arn, "user", resource.rsplit("/", 1)[1])
        if resource.startswith("role/"):
            return PrincipalId(raw, arn, "role", resource.rsplit("/", 1)[1])
    if arn.service == "sts":
        if resource.startswith("assumed-role/") and resource.count("/") >= 2:
            return PrincipalId(raw, arn, "session", resource.split("/")[1])
        if resource.startswith("federated-user/"):
            return PrincipalId(raw, arn, "federated", resource.split("/", 1)[1])
    return PrincipalId(raw, arn, "other")


class PrincipalSpec:
    """A parsed ``Principal`` or ``NotPrincipal`` element."""

    __slots__ = ("everyone", "names", "roles", "accounts", "roots", "source")

    def __init__(self, source: object) -> None:
        self.source = source
        self.everyone = False
        self.names: set[str] = set()  # exact principal ARNs and Service/Federated/CanonicalUser names
        self.roles: set[tuple[str, str, str]] = set()  # (partition, account, role name)
        self.accounts: set[str] = set()  # bare account IDs, any partition
        self.roots: set[tuple[str, str]] = set()  # (partition, account) from root ARNs
        self._parse(source)

    def _parse(self, source: object) -> None:
        if source == "*":
            self.everyone = True
            return
        if not isinstance(source, dict) or not source:
            raise InvalidElement('must be "*" or an object like {"AWS": "arn:aws:iam::123456789012:user/name"}')
        for kind, values in source.items():
            if kind not in PRINCIPAL_TYPES:
                raise InvalidElement(
                    f"unknown principal type {kind!r} (expected one of {', '.join(PRINCIPAL_TYPES)})"
                )
            for value in _strings(values, kind):
                if kind == "AWS":
                    self._add_aws(value)
                else:
                    self.names.add(value)

    def _add_aws(self, value: str) -> None:
        if value == "*":
            self.everyone = True
            return
        if _ACCOUNT_ID.fullmatch(value):
            self.accounts.add(value)
            return
        if "*" in value or "?" in value:
            raise InvalidElement(f"{value!r}: a wildcard cannot stand for part of a principal's name or ARN")
        principal = parse_principal(value)
        if principal.arn is None:
            raise InvalidElement(f"{value!r} is not an account ID or a principal ARN")
        if principal.kind == "root":
            self.roots.add(principal.account_key)  # type: ignore[arg-type]
        elif principal.kind == "role":
            self.roles.add(principal.role_key)  # type: ignore[arg-type]
            self.names.add(value)
        else:
            self.names.add(value)

    def grant(self, principal: PrincipalId) -> str | None:
        """How this element names the principal: DIRECT, ROLE (its role ARN), ACCOUNT, or None."""
        if self.everyone:
            return DIRECT
        if principal.raw in self.names:
            return ROLE if principal.kind == "role" else DIRECT
        if principal.role_key is not None and principal.role_key in self.roles:
            return ROLE
        if self._lists_account(principal.account_key):
            return DIRECT if principal.kind == "root" else ACCOUNT
        return None

    def excludes(self, principal: PrincipalId) -> bool:
        """For ``NotPrincipal``: whether every identity in the principal's chain is listed."""
        if self.everyone:
            return True
        for link, value in principal.chain():
            if link == "name" and value not in self.names:
                return False
            if link == "role" and value not in self.roles:
                return False
            if link == "account" and not self._lists_account(value):  # type: ignore[arg-type]
                return False
        return True

    def _lists_account(self, key: tuple[str, str] | None) -> bool:
        return key is not None and (key[1] in self.accounts or key in self.roots)


def _strings(values: object, kind: str) -> Iterable[str]:
    items = values if isinstance(values, list) else [values]
    if not items:
        raise InvalidElement(f"{kind}: the list of principals is empty")
    for item in items:
        if not isinstance(item, str) or not item:
            raise InvalidElement(f"{kind}: each principal must be a non-empty string, not {item!r}")
        yield item
