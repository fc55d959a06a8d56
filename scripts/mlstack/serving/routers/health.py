"""GET /health and GET /model."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from ..deps import ServicesDep
from ..schemas import HealthResponse, ModelResponse

router = APIRouter(tags=["service"])


@router.get("/health", response_model=HealthResponse, response_model_exclude_none=True)
async def health(services: ServicesDep) -> HealthResponse:
    """200 once the model is loaded (the lifespan loads it before serving). With
    DATABASE_URL, `database` says whether it answers: while it is down the API still
    predicts (200), and /feedback answers 503."""
    model = services.holder.model
    database = await run_in_threadpool(services.database)
    return HealthResponse(status="ok", model_version=model.version, database=database)


@router.get("/model", response_model=ModelResponse)
async def model_info(services: ServicesDep) -> ModelResponse:
    """The manifest of the model in use, k, and the history of versions."""
    model = services.holder.model
    history = await run_in_threadpool(services.holder.store.history)
    return ModelResponse(
        manifest=model.artifacts.manifest.to_dict(),
        retrain_every_k=services.settings.retrain_every_k,
        prod_rows=await run_in_threadpool(services.prod.rows),
        retraining=services.retrainer.busy,
        history=history,
    )
