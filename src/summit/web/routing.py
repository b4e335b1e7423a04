"""Routing that costs little however many routes an app has.

Starlette and FastAPI find a request's route by trying every route in order (FastAPI 0.165 also
wraps each included router in a layer that costs about 3 us a route): a request for a route near
the end of a 70-route app pays more for routing than for its own work. ``index_routes`` files an
app's routes in a tree by the literal beginning of their paths (``/api/v1/posts/``, ``/static``): a
request walks the tree along its path and tries only the routes that could match it, in their
original order, so what matches is what the framework alone would decide.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.routing import BaseRoute, Match, NoMatchFound, Route
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

_MATCHED = "summit.route"  # scope key: the route the index matched, for its handle()


def add_router(target: FastAPI | APIRouter, router: APIRouter) -> None:
    """Add a router's routes to an app or another router as they are: not as an included router,
    whose matching FastAPI layers on every request (for routers included without options)."""
    (target.router if isinstance(target, FastAPI) else target).routes.extend(router.routes)


def index_routes(app: FastAPI) -> None:
    """Route the app's requests through a ``PathIndex``. Call it once every route is added: the
    OpenAPI document is made from the routes now, and kept."""
    schema = app.openapi()
    app.openapi = lambda: schema  # type: ignore[method-assign]  (FastAPI's documented override)
    app.router.routes[:] = [PathIndex(list(app.router.routes))]


def _literal_segments(route: BaseRoute) -> list[str]:
    """The segments every path the route matches starts with: those of its path before the first
    parameter ([] for a route whose path starts with one, or that has no path)."""
    path = getattr(route, "path", None)
    if not isinstance(path, str) or not path.startswith("/"):
        return []
    literal = []
    for segment in path[1:].split("/"):
        if "{" in segment:
            break
        literal.append(segment)
    return literal


class _Node:
    __slots__ = ("children", "own", "routes")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.own: list[tuple[int, BaseRoute]] = []  # routes whose literal segments end here
        self.routes: list[BaseRoute] = []  # those and the ones of every ancestor, in original order


class PathIndex(BaseRoute):
    """The one route at the top of an indexed app: a tree of literal path segments. A request
    walks it along its own segments as far as it goes; the node it reaches lists, in their original
    order, exactly the routes whose literal beginning the path has: the only ones that can match."""

    def __init__(self, routes: list[BaseRoute]):
        self.all_routes = routes  # in their original order, for url_path_for
        self.root = _Node()
        for index, route in enumerate(routes):
            node = self.root
            for segment in _literal_segments(route):
                node = node.children.setdefault(segment, _Node())
            node.own.append((index, route))
        self._collect(self.root, [])

    def _collect(self, node: _Node, inherited: list[tuple[int, BaseRoute]]) -> None:
        mine = sorted(inherited + node.own, key=lambda pair: pair[0])
        node.routes = [route for _, route in mine]
        for child in node.children.values():
            self._collect(child, mine)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path, root = scope["path"], scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):]
        node = self.root
        for segment in path[1:].split("/"):
            child = node.children.get(segment)
            if child is None:
                break
            node = child
        partial: tuple[BaseRoute, Scope] | None = None
        for route in node.routes:
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
        for route in self.all_routes:
            try:
                return route.url_path_for(name, **path_params)
            except NoMatchFound:
                pass
        raise NoMatchFound(name, path_params)


class FastRoutes:
    """Serves a few routes as plain Starlette routes, in front of the framework's router (ASGI
    middleware; add it innermost). FastAPI's routing, dependency solving and response handling cost
    about 70 us a request even for a route that does nothing, several times a health probe or a
    photo's own work. Register each such route with FastAPI too (``add_api_route``), with the same
    endpoint, so that it is documented in OpenAPI; requests are served from here. A fast endpoint
    is ``async def endpoint(request) -> Response`` and handles its own errors: it runs outside
    FastAPI's (and Starlette's) exception handlers.
    """

    def __init__(self, app: Any, *, routes: list[Route]):
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for route in self.routes:
                match, child_scope = route.matches(scope)
                if match == Match.FULL:  # a partial match (another method) is FastAPI's to answer
                    scope.update(child_scope)
                    scope["route"] = route
                    response = await route.endpoint(Request(scope, receive, send))
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)
