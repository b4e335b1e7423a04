"""Errors of the policy engine: a bad policy document, or a bad request to evaluate."""

from __future__ import annotations


class PolicyError(ValueError):
    """A policy document that does not follow the IAM grammar.

    The message names the element and the statement (its index, and its ``Sid`` when it has one),
    as IAM's ``MalformedPolicyDocument`` answers do. ``element`` and ``statement`` (the ``Sid``, or
    the index when there is none) are kept as attributes for callers that want them.
    """

    def __init__(
        self, message: str, *, element: str | None = None, index: int | None = None, sid: str | None = None
    ) -> None:
        self.element = element
        self.statement: str | int | None = sid if sid else index
        self.reason = message
        where = ""
        if index is not None:
            where = f"Statement[{index}]" + (f' (Sid "{sid}")' if sid else "")
        self.prefix = ""
        super().__init__(f"{where}: {message}" if where else message)

    def within(self, label: str) -> PolicyError:
        """The same error, its message prefixed by where the policy came from (``identityPolicies[0]``)."""
        error = PolicyError.__new__(PolicyError)
        error.element, error.statement, error.reason = self.element, self.statement, self.reason
        error.prefix = label
        ValueError.__init__(error, f"{label}: {self}")
        return error


class RequestError(ValueError):
    """A request to evaluate that is not well formed (principal, action, resource or context)."""


class InvalidElement(ValueError):
    """Raised by the parsers of one element; the grammar adds the element and statement to it."""
