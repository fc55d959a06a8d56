"""POST /predict: an image in, the predicted label and class scores out."""

from __future__ import annotations

import uuid

import metrics
from deps import ServicesDep
from fastapi import APIRouter
from holder import Services
from inputs import declared_pixels, decode_base64, embed
from schemas import PredictRequest, PredictResponse
from starlette.concurrency import run_in_threadpool

router = APIRouter(tags=["model"])


def predict_bytes(data: bytes, services: Services) -> PredictResponse:
    model = services.holder.model
    prediction, probabilities = model.predict(embed(data, model, services.settings))
    metrics.observe_prediction(prediction)
    return PredictResponse(
        prediction=prediction,
        probabilities=probabilities,
        model_version=model.version,
        prediction_id=uuid.uuid4().hex,
    )


@router.post(
    "/predict",
    response_model=PredictResponse,
    responses={400: {"description": "not base64"}, 413: {"description": "too large"}},
)
async def predict(body: PredictRequest, services: ServicesDep) -> PredictResponse:
    """Predict the label of an image (its file's bytes, base64-encoded)."""
    data = decode_base64(body.image, services.settings)
    # A small image costs well under a millisecond: doing it here avoids a thread hop.
    # A large photo goes to a thread so that it never stalls the other requests; so
    # does a small file that declares many pixels (decoding is what costs).
    settings = services.settings
    if (
        len(data) <= settings.inline_predict_bytes
        and (declared_pixels(data) or 0) <= settings.inline_predict_pixels
    ):
        return predict_bytes(data, services)
    return await run_in_threadpool(predict_bytes, data, services)
