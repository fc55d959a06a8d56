"""What the page remembers between reruns (st.session_state) and the actions that
change it: each calls the API through ServingClient and keeps its answer or its error
message for the page to show."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import streamlit as st

from .client import BatchAnswer, ModelInfo, Prediction, ServingClient, ServingError
from .labels import Label
from .views import batch_groups


def init_state() -> None:
    defaults: dict[str, Any] = {
        "model": None,  # ModelInfo from GET /model
        "model_error": None,
        "model_checked": False,
        "prediction": None,  # {"digest": str, "result": Prediction}
        "predict_error": None,
        "feedback": None,  # {"digest": str, "prediction_id": str|None, "result": FeedbackResult}
        "feedback_error": None,
        "canvas_round": 0,  # bumped to clear the drawing
        "label_hints": {},  # image digest -> the label a sample's file name gives
        "rollback": None,  # {"ok": bool, "message": str}: the API's answer to the last rollback
        "batch": None,  # {"files": [(name, digest)], "answers": [BatchAnswer]}: the Batch page's
    }
    for key, value in defaults.items():
        st.session_state.setdefault(key, value)


def refresh_model(client: ServingClient) -> None:
    try:
        st.session_state.model = client.model()
        st.session_state.model_error = None
    except ServingError as error:
        st.session_state.model_error = str(error)
    st.session_state.model_checked = True


def do_predict(client: ServingClient, image: bytes, digest: str) -> None:
    st.session_state.feedback = None
    st.session_state.feedback_error = None
    try:
        result = client.predict(image)
    except ServingError as error:
        st.session_state.prediction = None
        st.session_state.predict_error = str(error)
        return
    st.session_state.prediction = {"digest": digest, "result": result}
    st.session_state.predict_error = None
    model: ModelInfo | None = st.session_state.model
    if model is None or model.version != result.model_version:
        refresh_model(client)  # the API retrained since we last asked


def do_predict_batch(
    client: ServingClient,
    files: list[tuple[str, bytes]],
    max_images: int,
    max_bytes: int,
) -> None:
    """Predict every file of the Batch page, in requests of at most `max_images` files
    and `max_bytes`; a file over `max_bytes` is not sent, and a request that fails
    whole gives its error to each of its files."""
    answers: list[BatchAnswer | None] = [None] * len(files)
    sendable = []
    for index, (name, data) in enumerate(files):
        if len(data) > max_bytes:
            answers[index] = BatchAnswer(None, f"{name} is larger than {max_bytes} bytes")
        else:
            sendable.append(index)
    sizes = [len(files[i][1]) for i in sendable]
    for group in batch_groups(sizes, max_images, max_bytes):
        indices = [sendable[i] for i in group]
        try:
            got = client.predict_many([files[i][1] for i in indices])
        except ServingError as error:
            got = [BatchAnswer(None, str(error))] * len(indices)
        for index, answer in zip(indices, got, strict=True):
            answers[index] = answer
    st.session_state.batch = {
        "files": [(name, hashlib.sha256(data).hexdigest()) for name, data in files],
        "answers": answers,
    }
    versions = {a.prediction.model_version for a in answers if a and a.prediction}
    model: ModelInfo | None = st.session_state.model
    if model is None or any(v != model.version for v in versions):
        refresh_model(client)  # the API retrained since we last asked


def do_feedback(client: ServingClient, image: bytes, digest: str, target_key: str) -> None:
    """The Send feedback button's callback: it runs before the page is drawn again,
    so the page (button state, sidebar version) shows its outcome at once."""
    prediction: Prediction = st.session_state.prediction["result"]
    target: Label = st.session_state[target_key]
    try:
        result = client.feedback(image, prediction.prediction, target, prediction.prediction_id)
    except ServingError as error:
        st.session_state.feedback_error = str(error)
        return
    st.session_state.feedback = {
        "digest": digest,
        "prediction_id": prediction.prediction_id,
        "target": target,
        "result": result,
    }
    st.session_state.feedback_error = None
    model: ModelInfo | None = st.session_state.model
    if result.retrained or model is None:
        refresh_model(client)
    else:
        st.session_state.model = dataclasses.replace(model, prod_rows=result.rows)


def do_rollback(client: ServingClient, version: int, confirm_key: str) -> None:
    """The Roll back button's callback; the confirmation is cleared for the next one."""
    try:
        result = client.rollback(version)
    except ServingError as error:
        st.session_state.rollback = {"ok": False, "message": str(error)}
    else:
        was = "" if result.previous_version is None else f" (was {result.previous_version})"
        st.session_state.rollback = {
            "ok": True,
            "message": f"Rolled back: every worker now serves version {result.model_version}{was}.",
        }
        refresh_model(client)
    st.session_state[confirm_key] = False
