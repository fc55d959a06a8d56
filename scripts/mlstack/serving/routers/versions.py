"""GET /model/versions and POST /model/rollback: the versions the retraining loop
made, the gate's decision on each, and a way back to an earlier one."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, HTTPException, status
from starlette.concurrency import run_in_threadpool

from mlstack.artifacts import ArtifactError

from ..deps import ServicesDep, require_token
from ..schemas import RollbackRequest, RollbackResponse, VersionInfo

log = logging.getLogger("serving")
router = APIRouter(tags=["model"])


@router.get("/model/versions", response_model=list[VersionInfo])
async def versions(services: ServicesDep) -> list[VersionInfo]:
    """Every version kept, oldest first: when and why it was trained, on how many rows,
    its figures, the promotion gate's decision, and which one is in use."""
    store = services.holder.store
    history = await run_in_threadpool(store.history)
    active = store.current_version()
    return [VersionInfo.from_history(entry, active) for entry in history]


@router.post(
    "/model/rollback",
    response_model=RollbackResponse,
    dependencies=[Depends(require_token)],
    responses={
        400: {"description": "the body is not JSON"},
        401: {"description": "API_TOKEN is set and the request does not carry it"},
        404: {"description": "no such version"},
        409: {"description": "the version was rejected by the gate, or its files are damaged"},
    },
)
async def rollback(body: RollbackRequest, services: ServicesDep) -> RollbackResponse:
    """Make a kept version current; every worker serves it from its next request."""
    store = services.holder.store
    previous = store.current_version()
    if body.version not in await run_in_threadpool(store.versions):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"there is no version {body.version}")
    try:
        await run_in_threadpool(store.activate, body.version)
    except ArtifactError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    log.warning("rollback: version %s -> %d", previous, body.version)
    return RollbackResponse(model_version=services.holder.model.version, previous_version=previous)
