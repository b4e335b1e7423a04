"""ARNs, and wildcard matching of actions, resources and strings.

AWS: "IAM JSON policy elements: Resource"
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html): an ARN is
``arn:partition:service:region:account:resource``; ``*`` and ``?`` are wildcards "within any ARN
segment (the parts separated by colons)". The ARN condition operators check "each of the six
colon-delimited components of the ARN separately". So in the first five segments a wildcard never
matches a colon; in the sixth (the resource, which may itself hold colons) it matches anything.

Actions are ``service:Action`` and match case-insensitively ("The prefix and the action name are
case insensitive", IAM JSON policy elements: Action).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from summit.security.policies.variables import ContextValues, Piece, Template


@dataclass(frozen=True, slots=True)
class Arn:
    """``arn:partition:service:region:account:resource``."""

    partition: str
    service: str
    region: str
    account: str
    resource: str

    def __str__(self) -> str:
        return f"arn:{self.partition}:{self.service}:{self.region}:{self.account}:{self.resource}"


def parse_arn(text: str) -> Arn | None:
    """The ARN's six parts, or None if ``text`` is not an ARN."""
    parts = text.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or not parts[1] or not parts[2]:
        return None
    return Arn(parts[1], parts[2], parts[3], parts[4], parts[5])


def is_arn_pattern(text: str) -> bool:
    """Whether ``text`` has the shape of an ARN (six colon-separated parts, starting with ``arn``)."""
    parts = text.split(":", 5)
    return len(parts) == 6 and parts[0] == "arn" and bool(parts[1]) and bool(parts[2])


@lru_cache(maxsize=4096)
def compile_glob(pieces: tuple[Piece, ...], *, arn: bool, ignore_case: bool) -> re.Pattern[str]:
    """A regular expression for pieces whose wild text uses ``*`` and ``?``.

    With ``arn=True`` a wildcard in the first five colon-separated segments stays in its segment.
    """
    out: list[str] = []
    colons = 0
    for text, wild in pieces:
        for ch in text:
            if wild and ch in "*?":
                in_segment = arn and colons < 5
                if ch == "*":
                    out.append("[^:]*" if in_segment else ".*")
                else:
                    out.append("[^:]" if in_segment else ".")
            else:
                if ch == ":":
                    colons += 1
                out.append(re.escape(ch))
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.compile("".join(out), flags)


class Glob:
    """A wildcard pattern (``*``, ``?``), compiled once; policy variables resolved per request."""

    __slots__ = ("template", "arn", "ignore_case", "match_all", "_static")

    def __init__(self, template: Template, *, arn: bool = False, ignore_case: bool = False) -> None:
        self.template = template
        self.arn = arn
        self.ignore_case = ignore_case
        self.match_all = template.static == (("*", True),)
        self._static = (
            compile_glob(template.static, arn=arn, ignore_case=ignore_case) if template.static is not None else None
        )

    def __repr__(self) -> str:
        return f"Glob({self.template.text!r})"

    def matches(self, text: str, context: ContextValues | None = None) -> bool | None:
        """Whether ``text`` matches; None when a variable in the pattern has no value."""
        if self.match_all:
            return True
        if self._static is not None:
            return self._static.fullmatch(text) is not None
        pieces = self.template.resolve(context)
        if pieces is None:
            return None
        return compile_glob(pieces, arn=self.arn, ignore_case=self.ignore_case).fullmatch(text) is not None


def action_glob(action: str) -> Glob:
    """A case-insensitive pattern for an ``Action``/``NotAction`` entry (no variables there)."""
    return Glob(Template(action, variables=False), ignore_case=True)
