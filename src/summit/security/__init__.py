"""Security services of the platform, behind one public face: an application imports
``summit.security`` and nothing below it (an import-linter contract in ``pyproject.toml`` checks).

    from summit.security import Security

    security = await Security.open(platform, baseline=[...], group_policies={...},
                                   reserved_usernames=..., on_confirmed=[...])
    security.identity   # the user pool (like Cognito): sign-up, sign-in, MFA, tokens
    security.access     # the IAM authorizer: AWS's policy grammar and evaluation
    security.audit      # the audit log (like CloudTrail): signed chains of records

Besides the facade it offers the records and errors an app handles, and what a web app mounts
or calls: the routers, the browser-session middleware, the principal dependencies, the session
cookies and the TOTP enrolment helpers (``totp.provisioning_uri``, ``totp.qr_svg``).

Inside, for the platform: ``identity/`` (the user pool), ``policies/`` (the policy engine, IAM's
store and admin API), ``audit/`` (the log), ``kms/`` (keys and envelope encryption, like KMS),
``secrets/`` (versioned secrets and their rotation, like Secrets Manager), ``guard/`` (threat
detection over the audit and access logs, like GuardDuty), ``passwords`` (argon2id), ``services``
(the facade).
Names load on first use, so the platform's own commands (``summit audit``, ``summit iam``) can
import one subpackage without paying for the web stack.
"""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:  # what editors and type checkers see; _EXPORTS below is what runs
    from summit.security.identity import totp
    from summit.security.identity.api import router as identity_router
    from summit.security.identity.cookies import ACCESS_COOKIE, REFRESH_COOKIE, clear_session_cookies, set_session_cookies
    from summit.security.identity.pool import UserPool
    from summit.security.identity.records import MfaChallenge, PoolUser, Principal, Session
    from summit.security.identity.tokens import InvalidToken
    from summit.security.identity.web import BrowserSessionMiddleware, optional_principal, require_principal
    from summit.security.policies.access import Access
    from summit.security.policies.admin_api import router as admin_router
    from summit.security.services import Security

# public name -> "module:attribute" (or "module" for a module)
_EXPORTS = {
    "ACCESS_COOKIE": "summit.security.identity.cookies:ACCESS_COOKIE",
    "Access": "summit.security.policies.access:Access",
    "BrowserSessionMiddleware": "summit.security.identity.web:BrowserSessionMiddleware",
    "InvalidToken": "summit.security.identity.tokens:InvalidToken",
    "MfaChallenge": "summit.security.identity.records:MfaChallenge",
    "PoolUser": "summit.security.identity.records:PoolUser",
    "Principal": "summit.security.identity.records:Principal",
    "REFRESH_COOKIE": "summit.security.identity.cookies:REFRESH_COOKIE",
    "Security": "summit.security.services:Security",
    "Session": "summit.security.identity.records:Session",
    "UserPool": "summit.security.identity.pool:UserPool",
    "admin_router": "summit.security.policies.admin_api:router",
    "clear_session_cookies": "summit.security.identity.cookies:clear_session_cookies",
    "identity_router": "summit.security.identity.api:router",
    "optional_principal": "summit.security.identity.web:optional_principal",
    "require_principal": "summit.security.identity.web:require_principal",
    "set_session_cookies": "summit.security.identity.cookies:set_session_cookies",
    "totp": "summit.security.identity.totp",
}

__all__ = [
    "ACCESS_COOKIE",
    "Access",
    "BrowserSessionMiddleware",
    "InvalidToken",
    "MfaChallenge",
    "PoolUser",
    "Principal",
    "REFRESH_COOKIE",
    "Security",
    "Session",
    "UserPool",
    "admin_router",
    "clear_session_cookies",
    "identity_router",
    "optional_principal",
    "require_principal",
    "set_session_cookies",
    "totp",
]


def __getattr__(name: str) -> object:
    """Load a public name on first use (PEP 562), then keep it in the module's namespace."""
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module 'summit.security' has no attribute {name!r}; it offers: {', '.join(__all__)}")
    module_name, _, attribute = target.partition(":")
    value = _importlib.import_module(module_name)
    if attribute:
        value = getattr(value, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """``dir()`` shows what the package offers, not the modules it is built from."""
    return sorted(__all__)
