"""Wire the metrics into an app: the middleware and the /metrics route."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from mlstack.settings import ServingSettings, get_serving_settings

from .exposition import build_registry, render
from .middleware import PrometheusMiddleware


def instrument(app: Starlette, settings: ServingSettings | None = None) -> Starlette:
    """Add the middleware and the metrics route (METRICS_PATH) to a Starlette or FastAPI
    app; returns it. The last middleware added is the outermost, so add it last."""
    if getattr(app.state, "prometheus_instrumented", False):
        return app
    settings = settings or get_serving_settings()
    app.state.prometheus_instrumented = True
    app.add_middleware(PrometheusMiddleware, routes=lambda: app.routes)
    window = settings.metrics_accuracy_window
    registry = None

    def metrics_endpoint(request: Request) -> Response:
        nonlocal registry
        registry = registry or build_registry(window)  # made in the worker, on first scrape
        body, content_type = render(registry)
        return Response(body, media_type=content_type)

    app.add_route(settings.metrics_path, metrics_endpoint, methods=["GET"], include_in_schema=False)
    return app
