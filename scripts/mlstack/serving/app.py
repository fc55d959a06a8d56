"""The serving API: `create_app()` and the module-level `app`.

Run it with `uvicorn mlstack.serving.app:app`, `python -m mlstack.serving`, or the
brief's `cd serving && uvicorn api:app`. At start (lifespan) it makes sure
ref_data.csv and the artifacts exist (a fresh clone builds them, once, even with
several workers), loads the model into one holder, and repairs prod_data.csv if a
crash left a torn last line.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.telemetry import TelemetryConfig
from starlette.middleware.trustedhost import TrustedHostMiddleware
from threadpoolctl import threadpool_info, threadpool_limits

from mlstack.errors import DatabaseUnavailableError
from mlstack.logs import setup_logging
from mlstack.pipeline import bootstrap
from mlstack.settings import ServingSettings, get_serving_settings
from mlstack.stores import (
    bootstrap_lock,
    open_artifact_store,
    open_prod_store,
)

from . import metrics, openapi
from .holder import ModelHolder
from .inputs import InputError
from .limits import BodySizeLimit
from .retrainer import Retrainer
from .routers import feedback, health, predict, versions
from .services import Services
from .triggers import Triggers

log = logging.getLogger("serving")
NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def start_services(settings: ServingSettings) -> Services:
    """Bootstrap if needed, load the model, open the stores."""
    Path(settings.artifacts_dir).mkdir(parents=True, exist_ok=True)
    # Several workers (and replicas sharing a database) start at once: one builds, the
    # others wait and find it built.
    with bootstrap_lock(settings):
        bootstrap(settings)
    holder = ModelHolder(open_artifact_store(settings))
    model = holder.load()
    prod = open_prod_store(settings, model.artifacts.embedding.n_components)
    n = model.artifacts.embedding.n_components
    triggers = Triggers(settings, holder.store, prod, n)
    services = Services(settings, holder, prod, Retrainer(settings, holder), triggers)
    log.info(
        "serving model version %d; prod_data.csv has %d rows; retraining on %s (k = %d)",
        model.version,
        prod.rows(),
        ", ".join(settings.retrain_policy),
        settings.retrain_every_k,
    )
    if settings.retrain_in_api:  # else the trainer worker catches up
        services.retrainer.catch_up(prod)
    return services


def limit_blas(threads: int) -> str:
    """Cap the threads of numpy's BLAS in this process; returns the count read back.
    Call it from the main thread (uvicorn runs the lifespan there): OpenBLAS ignores
    a limit set from another thread, and applies one set there to every thread."""
    threadpool_limits(limits=threads, user_api="blas")
    found = sorted({lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"})
    return ", ".join(map(str, found)) or "no BLAS library loaded"


def json_safe(value: object) -> object:
    """`value` with what JSON cannot carry made printable: NaN and infinities (Python's
    JSON parser reads `NaN`, `Infinity`, `1e999`) and lone surrogates (`"\\ud800"`)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {json_safe(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    setup_logging()
    settings = app.state.settings
    # In each worker; the retraining process, spawned fresh, keeps BLAS's own default.
    log.info("numpy's BLAS: %s thread(s) in this worker", limit_blas(settings.blas_threads))
    log.info("metrics of this worker in %s", metrics.multiproc_dir())
    services = start_services(settings)
    app.state.services = services
    yield
    services.retrainer.shutdown()


def add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DatabaseUnavailableError)
    async def database_unavailable(_: Request, exc: DatabaseUnavailableError) -> JSONResponse:
        # Nothing was acknowledged: the client may send the same request again (with
        # its prediction_id, a row the database did store is not stored twice).
        log.warning("503: %s", exc)
        return JSONResponse(
            status_code=503,
            content={"detail": f"{exc}: not acknowledged, send it again shortly"},
            headers={"Retry-After": "2"},
        )

    @app.exception_handler(InputError)
    async def input_error(_: Request, exc: InputError) -> JSONResponse:
        return JSONResponse(status_code=exc.status, content={"detail": exc.message})

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler, except that the inputs it echoes back are made
        # JSON-safe: a NaN or a lone surrogate in a body turned its 422 into a 500.
        return JSONResponse(
            status_code=422, content={"detail": json_safe(jsonable_encoder(exc.errors()))}
        )


def create_app(settings: ServingSettings | None = None) -> FastAPI:
    settings = settings or get_serving_settings()
    app = FastAPI(
        title="Digits classifier: serving API",
        description=(
            "Predicts the label of an image and takes feedback (the true label), which is "
            "stored in prod_data.csv; every RETRAIN_EVERY_K feedback rows the model is "
            "retrained on reference + production data and swapped in."
        ),
        version="1.0.0",
        lifespan=lifespan,
        # Off unless asked: with it on, FastAPI looks up the three OpenTelemetry providers
        # on every request, through os.environ, to see whether one is configured (none is
        # by default; /metrics is Prometheus): 17 of /predict's 60 µs of own CPU time.
        telemetry=None if settings.opentelemetry else NO_TELEMETRY,
    )
    app.state.settings = settings
    # /predict's route goes in the app's own list rather than through include_router:
    # FastAPI (0.137 on) matches an included router as a level of its own, twice per
    # request, which cost /predict 55,000 of its 1.4 million instructions, about half
    # of the API's own work (docs/serving.md). A route added so does not see
    # app.dependency_overrides; /predict takes no dependency (it reads the services
    # from the request), so nothing is lost: give a route with one to include_router.
    app.router.routes.extend(predict.router.routes)
    app.include_router(feedback.router)
    app.include_router(health.router)
    app.include_router(versions.router)
    openapi.install(app)  # /docs shows the loaded table's columns, when it is a table
    add_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    if settings.allowed_hosts != ["*"]:  # "*" lets every host through: no need to check
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.allowed_hosts)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    # Outermost, so that the 400/413 answers of the checks above are counted too.
    metrics.instrument(app, settings)
    return app


app = create_app()
