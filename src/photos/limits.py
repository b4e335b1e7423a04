"""The app's rate limits (the platform counts them: ``summit.web.ratelimit``; docs/shield.md).

Each names the routes it counts, API and pages alike, and whom it counts. The blueprint may change
any rate by name (``[shield.app.limits]``, ``comment = "10/minute"``), exempt sources, or turn them
off. The user pool's lock-outs stay what they are (failures in a row, per account and address,
with back-off): ``sign_in`` and ``sign_in_account`` bound the attempts themselves, successes and
locked-out tries included, so no address or account costs more than its share of password hashing.
"""

from __future__ import annotations

from starlette.requests import Request

from summit.security import ACCESS_COOKIE, optional_principal
from summit.web.ratelimit import Limit

SIGN_IN = ("POST /api/v1/sessions", "POST /login")

LIMITS = [
    Limit("sign_in", "30/minute", (*SIGN_IN, "POST /api/v1/sessions/mfa", "POST /login/mfa"), per="address", what="sign-in attempts"),
    Limit("sign_in_account", "20/minute", SIGN_IN, per="field:login", what="sign-in attempts"),
    Limit("sign_up", "20/hour", ("POST /api/v1/accounts", "POST /signup"), per="address", what="sign-ups"),
    Limit("upload", "60/hour", ("POST /api/v1/posts", "POST /posts"), what="uploads"),
    Limit("comment", "20/minute", ("POST /api/v1/posts/{post_id}/comments", "POST /p/{post_id}/comments"), what="comments"),
    Limit("like", "60/minute", ("PUT /api/v1/posts/{post_id}/like", "DELETE /api/v1/posts/{post_id}/like", "POST /p/{post_id}/like"),
          what="likes"),
    Limit("follow", "30/minute", ("PUT /api/v1/users/{username}/follow", "DELETE /api/v1/users/{username}/follow",
                                  "POST /u/{username}/follow"), what="follows"),
    # every read of the API: 50 a second on average, far above a person's (and the fault tests' bursts)
    Limit("api_read", "3000/minute", ("GET /api/v1/*",), what="API reads"),
]

_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


async def caller(scope: dict) -> int | None:
    """The signed-in user of a request, for limits per user (None: counted by address).

    A bearer token, or the session cookie on a safe method, is checked as the routes check it
    (``optional_principal``), which keeps the principal for them: the token is verified once. A
    cookie on an unsafe method is only identified here; its route checks the CSRF token."""
    request = Request(scope)
    try:
        if request.method in _SAFE or "authorization" in request.headers:
            principal = await optional_principal(request)
        else:
            token = request.cookies.get(ACCESS_COOKIE)
            principal = await request.app.state.identity.authenticate(token) if token else None
    except Exception:  # noqa: BLE001  (a bad token, or a database that does not answer: the route meets it and answers it)
        return None
    return principal.user_id if principal is not None else None
