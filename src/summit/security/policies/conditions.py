"""The ``Condition`` element: operators, ``...IfExists``, ``ForAllValues:``/``ForAnyValue:``.

AWS: "IAM JSON policy elements: Condition operators"
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html)
and "Single-valued vs. multivalued context keys"
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html):

- operators in one ``Condition`` and keys in one operator are ANDed; values of one key are ORed;
- a key missing from the request makes the condition false, except that a negated operator
  (``StringNotEquals``, ``ArnNotLike``, ``NotIpAddress``...) is then true; ``...IfExists`` is true
  when the key is missing; ``Null`` tests presence (``"true"``: absent, ``"false"``: present);
- ``ForAllValues:`` is true when every request value matches some policy value, and also when the
  key is missing or resolves to a null dataset (an empty list or an empty string); ``ForAnyValue:``
  is true when some request value matches, false when the key is missing;
- a negated operator with a set operator tests that request values match *none* of the policy values;
- key names are case-insensitive; values are case-sensitive unless the operator says ``IgnoreCase``;
- policy variables are allowed with the String, ARN and Bool operators.

A request value that cannot be read as the operator's type (a number, a date, an IP address,
base64, a boolean) never satisfies the condition, negated or not.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import difflib
import ipaddress
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from summit.security.policies.arn import Glob
from summit.security.policies.errors import InvalidElement
from summit.security.policies.variables import ContextValue, ContextValues, Template

FOR_ALL, FOR_ANY = "ForAllValues", "ForAnyValue"
_EQ, _LT, _LE, _GT, _GE = operator.eq, operator.lt, operator.le, operator.gt, operator.ge


@dataclass(frozen=True, slots=True)
class Operator:
    """One base condition operator: its family (how values are read), negation and comparison."""

    name: str
    family: str  # string | ignorecase | like | numeric | date | bool | binary | ip | arn | null
    negated: bool = False
    compare: Callable[[Any, Any], bool] = _EQ


def _table() -> dict[str, Operator]:
    ops = [
        Operator("StringEquals", "string"),
        Operator("StringNotEquals", "string", True),
        Operator("StringEqualsIgnoreCase", "ignorecase"),
        Operator("StringNotEqualsIgnoreCase", "ignorecase", True),
        Operator("StringLike", "like"),
        Operator("StringNotLike", "like", True),
        Operator("Bool", "bool"),
        Operator("BinaryEquals", "binary"),
        Operator("IpAddress", "ip"),
        Operator("NotIpAddress", "ip", True),
        Operator("ArnEquals", "arn"),
        Operator("ArnLike", "arn"),
        Operator("ArnNotEquals", "arn", True),
        Operator("ArnNotLike", "arn", True),
        Operator("Null", "null"),
    ]
    for family, prefix in (("numeric", "Numeric"), ("date", "Date")):
        ops += [
            Operator(f"{prefix}Equals", family),
            Operator(f"{prefix}NotEquals", family, True),
            Operator(f"{prefix}LessThan", family, False, _LT),
            Operator(f"{prefix}LessThanEquals", family, False, _LE),
            Operator(f"{prefix}GreaterThan", family, False, _GT),
            Operator(f"{prefix}GreaterThanEquals", family, False, _GE),
        ]
    return {op.name: op for op in ops}


OPERATORS: dict[str, Operator] = _table()
_VARIABLE_FAMILIES = {"string", "ignorecase", "like", "arn", "bool"}


def operator_names() -> list[str]:
    """Every valid operator name without qualifiers (``IfExists`` and set operators add to these)."""
    return sorted(OPERATORS)


def parse_operator(name: str) -> tuple[Operator, str | None, bool]:
    """``ForAnyValue:StringLikeIfExists`` -> (StringLike, "ForAnyValue", True); InvalidElement if unknown."""
    qualifier = None
    base = name
    for prefix in (FOR_ALL, FOR_ANY):
        if name.startswith(prefix + ":"):
            qualifier, base = prefix, name[len(prefix) + 1 :]
    if_exists = base.endswith("IfExists") and base != "IfExists"
    if if_exists:
        base = base[: -len("IfExists")]
    op = OPERATORS.get(base)
    if op is None or (op.family == "null" and (if_exists or qualifier)):
        raise InvalidElement(f"unknown condition operator {name!r}{_suggest(name)}")
    return op, qualifier, if_exists


def _suggest(name: str) -> str:
    known = operator_names() + [f"{n}IfExists" for n in operator_names() if n != "Null"]
    bare = name.split(":")[-1]
    for candidate in known:
        if candidate.lower() == bare.lower():
            return f" (did you mean {candidate!r}? operator names are case-sensitive)"
    close = difflib.get_close_matches(bare, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# -- reading values ------------------------------------------------------------------------------

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_EPOCH = re.compile(r"[+-]?\d+(?:\.\d+)?")
_W3C = re.compile(
    r"(\d{4})-(\d{2})(?:-(\d{2})(?:[Tt](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?)?)?"
)


def read_number(text: str) -> Decimal | None:
    text = text.strip()
    if not _NUMBER.fullmatch(text):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover  (the pattern admits only finite numbers)
        return None


def read_date(text: str) -> Decimal | None:
    """Seconds since the epoch, from epoch seconds or an ISO 8601 (W3C profile) date-time."""
    text = text.strip()
    if _EPOCH.fullmatch(text):
        return Decimal(text)
    match = _W3C.fullmatch(text)
    try:
        if match:
            year, month, day, hour, minute, second, fraction, zone = match.groups()
            tz = dt.timezone.utc
            if zone and zone not in "Zz":
                sign = -1 if zone[0] == "-" else 1
                digits = zone[1:].replace(":", "")
                tz = dt.timezone(sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
            moment = dt.datetime(
                int(year), int(month), int(day or 1), int(hour or 0), int(minute or 0), int(second or 0), tzinfo=tz
            )
        else:
            moment = dt.datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.timezone.utc)
            fraction = None
    except ValueError:
        return None
    seconds = Decimal(int(moment.timestamp()))
    if match and fraction:
        seconds += Decimal("0" + fraction)
    elif not match:
        seconds += Decimal(moment.microsecond) / Decimal(1_000_000)
    return seconds


def read_bool(text: str) -> bool | None:
    lowered = text.strip().lower()
    return True if lowered == "true" else False if lowered == "false" else None


def read_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def read_binary(value: ContextValue) -> bytes | None:
    if isinstance(value, bytes):
        return value
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None


_READERS: dict[str, Callable[[str], Any]] = {
    "numeric": read_number,
    "date": read_date,
    "bool": read_bool,
    "ip": read_ip,
}


def _policy_text(key: str, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return value
    raise InvalidElement(f"{key!r}: condition values must be strings, numbers or booleans, not {value!r}")


# -- one key under one operator -------------------------------------------------------------------


class KeyTest:
    """``"<operator>": {"<key>": [values]}`` for one key, compiled."""

    __slots__ = ("name", "key", "op", "qualifier", "if_exists", "values", "expects_absent")

    def __init__(self, name: str, key: str, values: object, *, variables: bool) -> None:
        self.name = name
        self.op, self.qualifier, self.if_exists = parse_operator(name)
        if not isinstance(key, str) or ":" not in key or key.startswith(":"):
            raise InvalidElement(f"{name}: condition key {key!r} must be prefixed by a service, like aws:SourceIp")
        self.key = key.lower()
        raw = values if isinstance(values, list) else [values]
        if not raw:
            raise InvalidElement(f"{name}: {key!r} has an empty list of values")
        texts = [_policy_text(key, value) for value in raw]
        self.expects_absent: tuple[bool, ...] = ()
        self.values: tuple[Any, ...] = ()
        family = self.op.family
        use_variables = variables and family in _VARIABLE_FAMILIES
        if family == "null":
            flags = [read_bool(text) for text in texts]
            if any(flag is None for flag in flags):
                raise InvalidElement(f"Null: {key!r} takes \"true\" (key absent) or \"false\" (key present)")
            self.expects_absent = tuple(flags)  # type: ignore[arg-type]
        elif family in ("string", "ignorecase", "bool"):
            self.values = tuple(Template(text, variables=use_variables) for text in texts)
            if family == "bool":
                for template in self.values:
                    if not template.has_variables and read_bool(template.text) is None:
                        raise InvalidElement(f"Bool: {key!r} takes \"true\" or \"false\", not {template.text!r}")
        elif family in ("like", "arn"):
            self.values = tuple(Glob(Template(text, variables=use_variables), arn=family == "arn") for text in texts)
        elif family == "binary":
            decoded = [read_binary(text) for text in texts]
            if any(value is None for value in decoded):
                raise InvalidElement(f"BinaryEquals: {key!r} takes base64-encoded values")
            self.values = tuple(decoded)
        elif family == "ip":
            try:
                self.values = tuple(ipaddress.ip_network(text.strip(), strict=False) for text in texts)
            except ValueError as error:
                raise InvalidElement(f"{name}: {key!r}: {error}") from None
        else:
            parsed = [_READERS[family](text) for text in texts]
            bad = [text for text, value in zip(texts, parsed, strict=True) if value is None]
            if bad:
                kind = "a number" if family == "numeric" else "an ISO 8601 date-time or epoch seconds"
                raise InvalidElement(f"{name}: {key!r}: {bad[0]!r} is not {kind}")
            self.values = tuple(parsed)

    def holds(self, context: ContextValues) -> bool:
        found = context.get(self.key)
        if self.op.family == "null":
            absent = found is None or found == ("",)
            return any(expected == absent for expected in self.expects_absent)
        if found is None:
            if self.if_exists or self.qualifier == FOR_ALL:
                return True
            if self.qualifier == FOR_ANY:
                return False
            return self.op.negated
        if self.qualifier and found == ("",):  # a null dataset
            return self.qualifier == FOR_ALL
        results = [self._value_holds(value, context) for value in found]
        if self.qualifier == FOR_ALL or (self.qualifier is None and self.op.negated):
            return all(results)
        return any(results)

    def _value_holds(self, value: ContextValue, context: ContextValues) -> bool:
        """Whether one request value satisfies the operator (False when it cannot be read)."""
        family = self.op.family
        if family == "binary":
            data = read_binary(value)
            if data is None:
                return False
            matched = any(data == expected for expected in self.values)
            return matched != self.op.negated
        if isinstance(value, bytes):
            try:
                value = value.decode()
            except UnicodeDecodeError:
                return False
        matched = False
        if family == "string":
            matched = any(template.render(context) == value for template in self.values)
        elif family == "ignorecase":
            folded = value.casefold()
            for template in self.values:
                text = template.render(context)
                if text is not None and text.casefold() == folded:
                    matched = True
                    break
        elif family in ("like", "arn"):
            matched = any(glob.matches(value, context) for glob in self.values)
        elif family == "bool":
            flag = read_bool(value)
            if flag is None:
                return False
            for template in self.values:
                text = template.render(context)
                if text is not None and read_bool(text) == flag:
                    matched = True
                    break
        elif family == "ip":
            address = read_ip(value)
            if address is None:
                return False
            matched = any(address.version == net.version and address in net for net in self.values)
        else:
            number = _READERS[family](value)
            if number is None:
                return False
            compare = self.op.compare
            matched = any(compare(number, expected) for expected in self.values)
        return matched != self.op.negated


class ConditionBlock:
    """A statement's whole ``Condition`` element: every key test must hold."""

    __slots__ = ("tests", "source")

    def __init__(self, source: object, *, variables: bool) -> None:
        if not isinstance(source, dict):
            raise InvalidElement('must be an object like {"StringEquals": {"aws:username": "alice"}}')
        self.source = source
        tests: list[KeyTest] = []
        for name, block in source.items():
            if not isinstance(block, dict) or not block:
                parse_operator(name)  # an unknown operator is the clearer error
                raise InvalidElement(f"{name}: must be a non-empty object of condition keys to values")
            for key, values in block.items():
                tests.append(KeyTest(name, key, values, variables=variables))
        self.tests = tuple(tests)

    def holds(self, context: ContextValues) -> bool:
        return all(test.holds(context) for test in self.tests)
