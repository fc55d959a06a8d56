"""A pure ASGI middleware that counts and times every HTTP request by route template
and status, and takes the worker's live gauges away when its lifespan ends."""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .folder import forget_this_worker
from .series import request_series, series

UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_of(scope: Scope, routes: Callable[[], list[BaseRoute]] | None) -> str:
    """The route template ('/items/{id}'), so that labels stay few. The router puts the
    route it chose in the scope; a request it did not route (a 404, or one refused
    before it, like a 413) is matched here against the app's routes: the router changes
    the scope only when a route matched, so it is still the request's own."""
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str) and path:
        return path
    for route in routes() if routes is not None else ():
        path = getattr(route, "path", None)
        if isinstance(path, str) and path and route.matches(scope)[0] is not Match.NONE:
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
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                send = self._on_shutdown(send)
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        if method not in METHODS:
            method = "OTHER"  # any token is a valid method: the labels stay few
        in_progress = self._in_progress[method]
        in_progress.inc()
        started = perf_counter()
        status = 500  # unless the app starts a response
        took = 0.0

        # Per request: one closure, two dicts read per message, no other object.
        async def send_wrapper(message: Message) -> None:
            nonlocal status, took
            if message["type"] == "http.response.start":
                status = message["status"]
            elif not message.get("more_body", False):  # the body's end: the latency
                took = perf_counter() - started
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except BaseException:
            status = 500  # even if the answer had begun: it did not end as it began
            raise
        finally:
            in_progress.dec()
            requests, latency = request_series(method, route_of(scope, self.routes), status)
            requests.inc()
            latency.observe(took or perf_counter() - started)
