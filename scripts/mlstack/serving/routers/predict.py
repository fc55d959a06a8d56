"""POST /predict: an image (or several) in, the predicted label and class scores out."""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import Response
from PIL import Image
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from .. import metrics
from ..deps import services_of
from ..holder import LoadedModel
from ..inputs import (
    InputError,
    decode_base64,
    embed_features,
    embed_image,
    image_features,
    is_large,
    open_upload,
    require_kind,
)
from ..schemas import (
    BatchItem,
    BatchPredictResponse,
    PredictRequest,
    PredictResponse,
    new_prediction_id,
)
from ..services import Services

router = APIRouter(tags=["model"])


def answer(result: BaseModel) -> Response:
    """The answer as JSON, serialised once. It was validated when it was made; returned
    as a model, FastAPI would validate it again against the route's response model (which
    stays on the route for its schema in /docs)."""
    return Response(result.model_dump_json(exclude_none=True), media_type="application/json")


def predict_image(image: Image.Image, model: LoadedModel, services: Services) -> PredictResponse:
    prediction, probabilities = model.predict(embed_image(image, model, services))
    metrics.observe_prediction(prediction)
    return PredictResponse(
        prediction=prediction,
        probabilities=probabilities,
        model_version=model.version,
        prediction_id=new_prediction_id(),
    )


def predict_row(features: dict, model: LoadedModel) -> PredictResponse:
    vector, unknown = embed_features(features, model)
    prediction, probabilities = model.predict(vector)
    metrics.observe_prediction(prediction)
    return PredictResponse(
        prediction=prediction,
        probabilities=probabilities,
        model_version=model.version,
        prediction_id=new_prediction_id(),
        unknown_categories=unknown or None,
    )


def open_batch(texts: list[str], services: Services) -> list[Image.Image | InputError]:
    """Each image's header, or the error that image alone would have been answered."""
    settings = services.settings
    if len(texts) > settings.max_batch_images:
        raise InputError(
            422,
            f"`images`: {len(texts)} images, over the limit of {settings.max_batch_images} "
            "per request (MAX_BATCH_IMAGES): send them in several requests",
        )
    uploads: list[Image.Image | InputError] = []
    for text in texts:
        try:
            uploads.append(open_upload(decode_base64(text, settings), settings))
        except InputError as exc:
            uploads.append(exc)
    return uploads


def predict_batch(
    uploads: list[Image.Image | InputError], model: LoadedModel, services: Services
) -> BatchPredictResponse:
    """Decoding and preprocessing per image; the embedding and the classifier once for
    the whole batch (one matrix product each), which is where a batch saves time."""
    items: list[BatchItem | None] = [None] * len(uploads)
    inputs: list[np.ndarray] = []
    good: list[int] = []
    for index, upload in enumerate(uploads):
        try:
            if isinstance(upload, InputError):
                raise upload
            inputs.append(image_features(upload, model, services))
            good.append(index)
        except InputError as exc:
            items[index] = BatchItem(status=exc.status, detail=exc.message)
    if inputs:
        vectors = model.artifacts.embedding.transform(np.stack(inputs))
        answers = model.predict_many(vectors)
        metrics.observe_predictions([prediction for prediction, _ in answers])
        for index, (prediction, probabilities) in zip(good, answers, strict=True):
            items[index] = BatchItem(
                status=200,
                prediction=prediction,
                probabilities=probabilities,
                model_version=model.version,
                prediction_id=new_prediction_id(),
            )
    return BatchPredictResponse(predictions=items)


def runs_inline(sizes: list[int], images: list[Image.Image], services: Services) -> bool:
    """A few small images cost well under a millisecond: predicting them on the event
    loop avoids a thread hop. Large photos go to a thread so that they never stall the
    other requests; so does a small file that declares many pixels (decoding is what
    costs). A batch is judged by its total bytes and its largest image."""
    settings = services.settings
    return sum(sizes) <= settings.inline_predict_bytes and not any(
        is_large(image, settings) for image in images
    )


@router.post(
    "/predict",
    response_model=PredictResponse | BatchPredictResponse,
    response_model_exclude_none=True,
    responses={
        200: {
            "description": "One image (`image`, `features`): its answer. Several (`images`): "
            "`predictions`, one item per image in order, each with the fields of a single "
            "answer and `status` 200, or `status` 4xx and `detail` for a bad image"
        },
        400: {"description": "not base64"},
        413: {"description": "too large"},
        422: {"description": "not an image, or a batch empty or over MAX_BATCH_IMAGES"},
    },
)
async def predict(body: PredictRequest, request: Request) -> Response:
    """Predict the label of an image (its file's bytes, base64-encoded), of several at
    once (`images`: a list of them), or, for a model trained on a table, of one row
    (`features`)."""
    return answer(await predict_any(body, services_of(request)))


async def predict_any(
    body: PredictRequest, services: Services
) -> PredictResponse | BatchPredictResponse:
    # The model is looked up once per request (a readlink of artifacts/current, or the
    # database's version remembered for half a second): one request, one model.
    model = services.holder.model
    if body.features is not None:
        return await run_in_threadpool(predict_row, body.features, model)
    require_kind(model, table=False)
    settings = services.settings
    if body.images is not None:
        uploads = open_batch(body.images, services)
        opened = [upload for upload in uploads if not isinstance(upload, InputError)]
        if runs_inline([len(text) * 3 // 4 for text in body.images], opened, services):
            return predict_batch(uploads, model, services)
        return await run_in_threadpool(predict_batch, uploads, model, services)
    data = decode_base64(body.image, settings)
    image = open_upload(data, settings)  # the header only
    if runs_inline([len(data)], [image], services):
        return predict_image(image, model, services)
    return await run_in_threadpool(predict_image, image, model, services)
