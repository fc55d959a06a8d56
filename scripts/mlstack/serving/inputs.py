"""From a request's fields to what the model takes, or a 4xx that says what is wrong."""

from __future__ import annotations

import base64
import binascii
from contextlib import AbstractContextManager, nullcontext

import numpy as np
from PIL import Image

from mlstack.preprocessing import ImageError, load_image, open_image
from mlstack.settings import ServingSettings
from mlstack.tabular import RowError, TableEmbedding

from . import metrics
from .holder import LoadedModel
from .services import Services


class InputError(Exception):
    """A client error: answered with `status` and `message`, and nothing is written."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def decode_base64(text: str, settings: ServingSettings) -> bytes:
    # Length first: decoding a huge string only to refuse it would cost memory.
    if len(text) > settings.max_upload_bytes * 4 // 3 + 4:
        raise InputError(413, f"the image is over the limit of {settings.max_upload_bytes} bytes")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InputError(
            400, "`image` is not valid base64 (the image file's bytes, encoded)"
        ) from None
    if not data:
        raise InputError(400, "`image` is empty")
    return data


def open_upload(data: bytes, settings: ServingSettings, grayscale: bool = False) -> Image.Image:
    """The image's header, checked against the limits; no pixel decoded yet
    (`grayscale`: the model reads only its grey levels)."""
    try:
        return open_image(
            data,
            max_bytes=settings.max_upload_bytes,
            max_pixels=settings.max_image_pixels,
            grayscale=grayscale,
        )
    except ImageError as exc:
        raise InputError(422, f"`image`: {exc}") from None


def image_features(image: Image.Image, model: LoadedModel, services: Services) -> np.ndarray:
    """An opened upload -> what the model's PCA takes (a grid, or a photo's features),
    by the same code that built ref_data.csv. A large image is decoded only once it
    holds one of the worker's decode slots."""
    try:
        with decode_slot(image, services):
            features, blank = model.artifacts.embedding.features(load_image(image))
    except ImageError as exc:
        raise InputError(422, f"`image`: {exc}") from None
    if blank:
        raise InputError(422, "`image`: no strokes found (a blank or uniform image)")
    return features


def embed_image(image: Image.Image, model: LoadedModel, services: Services) -> np.ndarray:
    """An opened upload -> the model's vector."""
    return model.artifacts.embedding.transform(image_features(image, model, services)[None])[0]


def is_large(image: Image.Image, settings: ServingSettings) -> bool:
    """Whether decoding costs enough to go to a thread and wait for a decode slot."""
    return image.width * image.height > settings.inline_predict_pixels


def decode_slot(image: Image.Image, services: Services) -> AbstractContextManager:
    """One of the worker's LARGE_DECODES_AT_ONCE slots, to hold while a large image is
    decoded (in a thread: the wait never blocks the event loop), so that memory stays
    bounded however many large uploads arrive at once. Small images need no slot."""
    return services.large_decodes if is_large(image, services.settings) else nullcontext()


def known_label(value: int | str, model: LoadedModel, field: str) -> int | str:
    label = model.label(value)
    if label is None:
        raise InputError(422, f"`{field}`: unknown label {value!r}; the labels are {model.classes}")
    return label


def is_table(model: LoadedModel) -> bool:
    """Whether the loaded model takes a table's row (`features`) rather than an image."""
    return isinstance(model.artifacts.embedding, TableEmbedding)


def require_kind(model: LoadedModel, *, table: bool) -> None:
    """A 422 when a request's kind (`features` for a table, `image`) is not the one the
    loaded model takes."""
    if table and not is_table(model):
        raise InputError(
            422, "this model takes images: send `image` (base64 of an image file), not `features`"
        )
    if not table and is_table(model):
        raise InputError(
            422,
            "this model takes a table's row: send `features` ({column: value, ...}; the "
            "columns are in GET /model, manifest.extra.schema), not `image`",
        )


def embed_features(features: dict | None, model: LoadedModel) -> tuple[np.ndarray, dict[str, str]]:
    """A table row -> (the model's vector, {column: category never seen in training}),
    by the same code that built ref_data.csv; a row that does not fit the training
    schema is a 422 naming the column."""
    require_kind(model, table=True)
    try:
        vector, unknown = model.artifacts.embedding.embed_row(features)
    except RowError as exc:
        raise InputError(exc.status, exc.message) from None
    if unknown:
        metrics.observe_unknown_categories(unknown)
    return vector, unknown


def embed_request(
    image: str | None, features: dict | None, model: LoadedModel, services: Services
) -> tuple[np.ndarray, dict[str, str]]:
    """A request's `image` or `features` -> (vector, unknown categories), or a 4xx;
    a request of the other kind than the loaded model takes is a 422."""
    if features is not None:
        return embed_features(features, model)
    require_kind(model, table=False)
    data = decode_base64(image or "", services.settings)
    upload = open_upload(data, services.settings, model.artifacts.embedding.grayscale)
    return embed_image(upload, model, services), {}
