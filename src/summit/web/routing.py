"""Routing that costs little however many routes an app has.

Starlette and FastAPI find a request's route by trying every route in order (FastAPI 0.165 also
wraps each included router in a layer that costs about 3 us a route): a request for a route near
the end of a 70-route app pays more for routing than for its own work. ``index_routes`` groups an
app's routes by the first segment of their path (``/api/...``, ``/p/...``, ``/static``): a request
looks its segment up in a dictionary and tries only the routes that could match it. Routes whose
path starts with a parameter (``/{name}``) are tried for every segment, in their original place:
what matches, and in what order, is what the framework alone would decide.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Receive, Scope, Send

_MATCHED = "summit.route"  # scope key: the route the index matched, for its handle()


def add_router(target: FastAPI | APIRouter, router: APIRouter) -> None:
    """Add a router's routes to an app or another router as they are: not as an included router,
    whose matching FastAPI layers on every request (for routers included without options)."""
    (target.router if isinstance(target, FastAPI) else target).routes.extend(router.routes)


def index_routes(app: FastAPI) -> None:
    """Route the app's requests through a ``SegmentIndex``. Call it once every route is added: the
    OpenAPI document is made from the routes now, and kept."""
    schema = app.openapi()
    app.openapi = lambda: schema  # type: ignore[method-assign]  (FastAPI's documented override)
    app.router.routes[:] = [SegmentIndex(list(app.router.routes))]


def first_segment(path: str) -> str:
    return path[1:].partition("/")[0]


def _route_segment(route: BaseRoute) -> str | None:
    """The literal first segment of every path the route matches (None: it starts with a parameter)."""
    path = getattr(route, "path", None)
    if not isinstance(path, str) or not path.startswith("/"):
        return None
    segment = first_segment(path)
    return None if "{" in segment else segment


class SegmentIndex(BaseRoute):
    """The one route at the top of an indexed app: it matches what the route it picks matches."""

    def __init__(self, routes: list[BaseRoute]):
        self.routes = routes  # in their original order
        segments = {s for s in map(_route_segment, routes) if s is not None}
        self.candidates = {segment: [r for r in routes if _route_segment(r) in (segment, None)] for segment in segments}
        self.fallback = [r for r in routes if _route_segment(r) is None]

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path, root = scope["path"], scope.get("root_path", "")
        segment = first_segment(path[len(root):] if root and path.startswith(root) else path)
        partial: tuple[BaseRoute, Scope] | None = None
        for route in self.candidates.get(segment, self.fallback):
            match, child_scope = route.matches(scope)
            if match == Match.FULL:
                return match, {**child_scope, _MATCHED: route}
            if match == Match.PARTIAL and partial is None:
                partial = (route, child_scope)
        if partial is None:
            return Match.NONE, {}
        route, child_scope = partial
        return Match.PARTIAL, {**child_scope, _MATCHED: route}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await scope[_MATCHED].handle(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        for route in self.routes:
            try:
                return route.url_path_for(name, **path_params)
            except NoMatchFound:
                pass
        raise NoMatchFound(name, path_params)
