"""The request context, and policy variables read from it (``${aws:username}``, ``${*}``, defaults).

AWS: "IAM policy elements: Variables and tags"
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html):

- a variable is ``${key}``; key names are case-insensitive; ``${key, 'default'}`` gives a default;
- ``${*}``, ``${?}`` and ``${$}`` stand for a literal ``*``, ``?`` and ``$``;
- only a single-valued key can be a variable: a multivalued one has no value;
- a variable with no value and no default is "effectively null": there is no equal or like value,
  so the policy value (or the ``Resource`` entry) that holds it matches nothing;
- variables exist only under ``"Version": "2012-10-17"``; under older versions ``${...}`` is text.

A template is parsed once into parts. Resolving it gives pieces ``(text, wild)``: text the author
wrote keeps its wildcards (``wild=True``); text a variable resolved to is matched literally.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Union

from summit.security.policies.errors import RequestError

ContextValue = Union[str, bytes]  # noqa: UP007  (a runtime alias)
Piece = tuple[str, bool]  # (text, wild): wild means * and ? in it are wildcards

_SPECIAL = {"*": "*", "?": "?", "$": "$"}


class ContextValues:
    """The condition keys of one request, with lower-cased names (keys are case-insensitive).

    Each value is a tuple of strings (or bytes, for binary keys): a single-valued key has one, a
    multivalued key (``aws:TagKeys``) any number. A key that is missing, ``None`` or an empty list
    is absent.
    """

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, tuple[ContextValue, ...]] | None = None) -> None:
        self._values: dict[str, tuple[ContextValue, ...]] = dict(values or {})

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None) -> ContextValues:
        """Normalize ``{key: str | bytes | bool | number | list of those}``; raise RequestError."""
        values: dict[str, tuple[ContextValue, ...]] = {}
        for key, value in (raw or {}).items():
            if not isinstance(key, str) or not key:
                raise RequestError(f"context key {key!r} must be a non-empty string")
            if value is None:
                continue
            items = value if isinstance(value, (list, tuple)) else [value]
            normalized = tuple(_normalize(key, item) for item in items)
            if normalized:
                values[key.lower()] = normalized
        return cls(values)

    def with_defaults(self, defaults: Mapping[str, tuple[ContextValue, ...]]) -> ContextValues:
        """A copy where each key of ``defaults`` (lower-cased) is set unless already present."""
        merged = dict(defaults)
        merged.update(self._values)
        return ContextValues(merged)

    def get(self, key: str) -> tuple[ContextValue, ...] | None:
        """The values of ``key`` (lower-cased by the caller), or None when absent."""
        return self._values.get(key)

    def single(self, key: str) -> str | None:
        """The value of a single-valued key, for a policy variable; None if absent or multivalued."""
        values = self._values.get(key)
        if values is None or len(values) != 1 or not isinstance(values[0], str):
            return None
        return values[0]

    def as_dict(self) -> dict[str, list[ContextValue]]:
        return {key: list(values) for key, values in self._values.items()}


def _normalize(key: str, item: object) -> ContextValue:
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, (str, bytes)):
        return item
    if isinstance(item, (int, float)):
        return str(item)
    if isinstance(item, dt.datetime):
        return item.isoformat()
    raise RequestError(
        f"context key {key!r}: values must be strings, booleans, numbers or lists of those, not {type(item).__name__}"
    )


@dataclass(frozen=True, slots=True)
class _Var:
    key: str  # lower-cased
    default: str | None


@dataclass(frozen=True, slots=True)
class _Literal:
    text: str


_Part = Union[str, _Var, _Literal]  # noqa: UP007  (str: text the author wrote, with its wildcards)


class Template:
    """A policy string that may hold policy variables, parsed once."""

    __slots__ = ("text", "parts", "has_variables", "static")

    def __init__(self, text: str, *, variables: bool = True) -> None:
        self.text = text
        self.parts: tuple[_Part, ...] = _scan(text) if variables and "${" in text else (text,)
        self.has_variables = any(isinstance(part, _Var) for part in self.parts)
        self.static: tuple[Piece, ...] | None = None if self.has_variables else self._pieces(None)

    def __repr__(self) -> str:
        return f"Template({self.text!r})"

    @property
    def keys(self) -> tuple[str, ...]:
        """The context keys the template reads."""
        return tuple(part.key for part in self.parts if isinstance(part, _Var))

    def resolve(self, context: ContextValues | None) -> tuple[Piece, ...] | None:
        """The pieces with variables replaced, or None if a variable has no value and no default."""
        if self.static is not None:
            return self.static
        return self._pieces(context)

    def render(self, context: ContextValues | None) -> str | None:
        """The plain string with variables replaced (for exact comparisons), or None."""
        pieces = self.resolve(context)
        return None if pieces is None else "".join(text for text, _ in pieces)

    def _pieces(self, context: ContextValues | None) -> tuple[Piece, ...] | None:
        pieces: list[Piece] = []
        for part in self.parts:
            if isinstance(part, str):
                pieces.append((part, True))
            elif isinstance(part, _Literal):
                pieces.append((part.text, False))
            else:
                value = context.single(part.key) if context is not None else None
                if value is None:
                    value = part.default
                if value is None:
                    return None
                pieces.append((value, False))
        return tuple(pieces)


def _scan(text: str) -> tuple[_Part, ...]:
    parts: list[_Part] = []
    buffer: list[str] = []
    i = 0
    while i < len(text):
        start = text.find("${", i)
        if start < 0:
            buffer.append(text[i:])
            break
        buffer.append(text[i:start])
        parsed = _parse_variable(text, start + 2)
        if parsed is None:  # not a variable (no closing brace, empty name): plain text
            buffer.append("${")
            i = start + 2
            continue
        part, i = parsed
        if buffer:
            joined = "".join(buffer)
            if joined:
                parts.append(joined)
            buffer = []
        parts.append(part)
    joined = "".join(buffer)
    if joined:
        parts.append(joined)
    return tuple(parts)


def _parse_variable(text: str, i: int) -> tuple[_Part, int] | None:
    """Parse ``name}`` or ``name, 'default'}`` from ``i``; return the part and the index after it."""
    end = len(text)
    j = i
    while j < end and text[j] not in ",}":
        j += 1
    if j >= end:
        return None
    name = text[i:j].strip()
    if not name or (name != "$" and any(ch.isspace() or ch in "{$" for ch in name)):
        return None
    if text[j] == "}":
        if name in _SPECIAL:
            return _Literal(_SPECIAL[name]), j + 1
        return _Var(name.lower(), None), j + 1
    # a default value: , 'text'   ('' inside stands for one quote)
    j += 1
    while j < end and text[j] == " ":
        j += 1
    if j >= end or text[j] != "'":
        return None
    j += 1
    default: list[str] = []
    while True:
        if j >= end:
            return None
        if text[j] == "'":
            if j + 1 < end and text[j + 1] == "'":
                default.append("'")
                j += 2
                continue
            j += 1
            break
        default.append(text[j])
        j += 1
    while j < end and text[j] == " ":
        j += 1
    if j >= end or text[j] != "}":
        return None
    if name in _SPECIAL:
        return _Literal(_SPECIAL[name]), j + 1
    return _Var(name.lower(), "".join(default)), j + 1
