"""POST /feedback: the true label of an image, stored in prod_data.csv; every k rows
the model is retrained on reference + production data."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool

from mlstack.artifacts import now_utc

from .. import metrics
from ..deps import ServicesDep, limit_feedback, require_token
from ..inputs import embed_request, known_label
from ..schemas import FeedbackRequest, FeedbackResponse, new_prediction_id
from ..services import Services

log = logging.getLogger("serving")
router = APIRouter(tags=["model"])


def store_feedback(body: FeedbackRequest, services: Services) -> tuple[int, int, str | None]:
    """Validate everything, then append one row; returns (rows, model version, the
    reason to retrain now or None)."""
    model = services.holder.model
    target = known_label(body.target, model, "target")
    prediction = known_label(body.prediction, model, "prediction")
    vector, _ = embed_request(body.image, body.features, model, services)
    rows = services.prod.append(
        vector,
        target,
        prediction,
        timestamp=now_utc(),
        model_version=model.version,
        prediction_id=body.prediction_id or new_prediction_id(),
    )
    metrics.observe_feedback(prediction == target, rows=rows)
    return rows, model.version, services.due_retraining(rows)


@router.post(
    "/feedback",
    response_model=FeedbackResponse,
    dependencies=[Depends(require_token), Depends(limit_feedback)],
    responses={
        400: {"description": "not base64"},
        401: {"description": "API_TOKEN is set and the request does not carry it"},
        413: {"description": "too large"},
        429: {"description": "FEEDBACK_RATE_PER_MINUTE is set and this source went past it"},
        503: {
            "description": "DATABASE_URL is set and the database is unreachable: nothing "
            "acknowledged; send the same request again (with its prediction_id it is "
            "stored once)"
        },
    },
)
async def feedback(body: FeedbackRequest, services: ServicesDep) -> FeedbackResponse:
    """Store the true label of an image; when a trigger of RETRAIN_POLICY fires (by
    default every RETRAIN_EVERY_K rows), retrain, and wait RETRAIN_WAIT_SECONDS for it."""
    rows, version, reason = await run_in_threadpool(store_feedback, body, services)
    if reason is None:
        return FeedbackResponse(
            stored=True, rows=rows, retrained=False, retraining="none", model_version=version
        )
    if not services.settings.retrain_in_api:  # RETRAIN_IN_API=false: the trainer runs it
        return FeedbackResponse(
            stored=True, rows=rows, retrained=False, retraining="queued", model_version=version
        )
    job = asyncio.wrap_future(services.retrainer.submit(rows, reason))
    try:
        # shield: a timeout (or a client gone) leaves the retraining running.
        result = await asyncio.wait_for(
            asyncio.shield(job), timeout=services.settings.retrain_wait_seconds
        )
    except TimeoutError:
        return FeedbackResponse(
            stored=True, rows=rows, retrained=False, retraining="running", model_version=version
        )
    except Exception:  # logged by the retrainer; the row is stored all the same
        return FeedbackResponse(
            stored=True, rows=rows, retrained=False, retraining="failed", model_version=version
        )
    return FeedbackResponse(
        stored=True,
        rows=rows,
        retrained=True,
        retraining="done",
        model_version=services.holder.model.version,
        promoted=None if result is None else not result.rejected,
        candidate_version=None if result is None else result.version,
    )
