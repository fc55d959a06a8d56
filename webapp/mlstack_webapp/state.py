"""What the page remembers between reruns (st.session_state) and the actions that
change it: each calls the API through ServingClient and keeps its answer or its error
message for the page to show."""

from __future__ import annotations

import dataclasses
from typing import Any

import streamlit as st

from .client import ModelInfo, Prediction, ServingClient, ServingError
from .labels import Label


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
