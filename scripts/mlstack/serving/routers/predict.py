"""POST /predict: an image in, the predicted label and class scores out."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from PIL import Image
from starlette.concurrency import run_in_threadpool

from .. import metrics
from ..deps import ServicesDep
from ..inputs import (
    decode_base64,
    embed_features,
    embed_image,
    is_large,
    open_upload,
    require_kind,
)
from ..schemas import PredictRequest, PredictResponse
from ..services import Services

router = APIRouter(tags=["model"])


def predict_image(image: Image.Image, services: Services) -> PredictResponse:
    model = services.holder.model
    prediction, probabilities = model.predict(embed_image(image, model, services))
    metrics.observe_prediction(prediction)
    return PredictResponse(
        prediction=prediction,
        probabilities=probabilities,
        model_version=model.version,
        prediction_id=uuid.uuid4().hex,
    )


def predict_row(features: dict, services: Services) -> PredictResponse:
    model = services.holder.model
    vector, unknown = embed_features(features, model)
    prediction, probabilities = model.predict(vector)
    metrics.observe_prediction(prediction)
    return PredictResponse(
        prediction=prediction,
        probabilities=probabilities,
        model_version=model.version,
        prediction_id=uuid.uuid4().hex,
        unknown_categories=unknown or None,
    )


@router.post(
    "/predict",
    response_model=PredictResponse,
    response_model_exclude_none=True,
    responses={400: {"description": "not base64"}, 413: {"description": "too large"}},
)
async def predict(body: PredictRequest, services: ServicesDep) -> PredictResponse:
    """Predict the label of an image (its file's bytes, base64-encoded), or, for a
    model trained on a table, of one row (`features`)."""
    if body.features is not None:
        return await run_in_threadpool(predict_row, body.features, services)
    require_kind(services.holder.model, table=False)
    settings = services.settings
    data = decode_base64(body.image, settings)
    image = open_upload(data, settings)  # the header only
    # A small image costs well under a millisecond: doing it here avoids a thread hop.
    # A large photo goes to a thread so that it never stalls the other requests; so
    # does a small file that declares many pixels (decoding is what costs).
    if len(data) <= settings.inline_predict_bytes and not is_large(image, settings):
        return predict_image(image, services)
    return await run_in_threadpool(predict_image, image, services)
