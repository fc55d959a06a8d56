"""A pure ASGI middleware that counts and times every HTTP request by route template
and status, and takes the worker's live gauges away when its lifespan ends."""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .folder import forget_this_worker
from .series import request_series, series

UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_of(scope: Scope, request: Scope, routes: Callable[[], list[BaseRoute]] | None) -> str:
    """The route template ('/items/{id}'), so that labels stay few. The router puts the
    route it chose in the scope for FastAPI's own routes; others (add_route, mounts)
    are matched here against the app's routes, with the request's original scope."""
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str) and path:
        return path
    for route in routes() if routes is not None else ():
        path = getattr(route, "path", None)
        if isinstance(path, str) and path and route.matches(request)[0] is not Match.NONE:
            return path
    return UNMATCHED


class PrometheusMiddleware:
    def __init__(self, app: ASGIApp, routes: Callable[[], list[BaseRoute]] | None = None) -> None:
        self.app = app
        self.routes = routes
        gauge = series().in_progress
        self._in_progress = {m: gauge.labels(method=m) for m in (*METHODS, "OTHER")}

    @staticmethod
    def _on_shutdown(send: Send) -> Send:
        async def send_wrapper(message: Message) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                forget_this_worker()
            await send(message)

        return send_wrapper

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, self._on_shutdown(send))
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope.get("method", "GET")
        method = method if method in METHODS else "OTHER"  # any token is a valid method
        request = dict(scope)  # the router rewrites the scope; matching needs the original
        started = time.perf_counter()
        status = 500
        finished = False
        in_progress = self._in_progress[method]
        in_progress.inc()

        def finish() -> None:
            nonlocal finished
            if finished:
                return
            finished = True
            requests, latency = request_series(
                method, route_of(scope, request, self.routes), str(status)
            )
            requests.inc()
            latency.observe(time.perf_counter() - started)

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                finish()

        try:
            await self.app(scope, receive, send_wrapper)
        except BaseException:
            status = 500
            raise
        finally:
            finish()
            in_progress.dec()
