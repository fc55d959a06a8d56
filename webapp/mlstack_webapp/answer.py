"""The prediction and the "Was it right?" feedback form: the same for an image and
for a table row."""

from __future__ import annotations

import streamlit as st

from .client import FeedbackResult, Prediction, ServingClient
from .labels import Label
from .state import do_feedback
from .views import label_options, probability_frame


def show_prediction(prediction: Prediction, labels: list[Label]) -> None:
    left, right = st.columns([1, 2])
    left.metric("Predicted label", str(prediction.prediction))
    left.caption(f"Model version {prediction.model_version}")
    if prediction.prediction_id:
        left.caption(f"Prediction id {prediction.prediction_id}")
    with right:
        st.bar_chart(
            probability_frame(prediction, labels),
            x_label="label",
            y_label="probability",
            height=220,
        )


def feedback_form(client: ServingClient, image: bytes | dict, digest: str) -> None:
    prediction: Prediction = st.session_state.prediction["result"]
    labels = label_options(st.session_state.model, prediction)
    st.subheader("Was it right?")
    # The default answer: a sample's own label, else the prediction.
    default = st.session_state.label_hints.get(digest, prediction.prediction)
    index = labels.index(default) if default in labels else 0
    target_key = f"target_{digest}_{prediction.prediction_id}"
    st.selectbox("True label", labels, index=index, key=target_key)
    sent = st.session_state.feedback
    already = (
        sent is not None
        and sent["digest"] == digest
        and sent["prediction_id"] == prediction.prediction_id
    )
    st.button(
        "Send feedback",
        key="feedback_button",
        disabled=already,
        type="primary",
        on_click=do_feedback,
        args=(client, image, digest, target_key),
    )
    if st.session_state.feedback_error:
        st.error(st.session_state.feedback_error)
    if sent is not None and sent["digest"] == digest:
        result: FeedbackResult = sent["result"]
        if result.stored:
            st.success(
                f"Stored (true label {sent['target']}): prod_data.csv now holds "
                f"{result.rows} row{'' if result.rows == 1 else 's'}."
            )
        else:
            st.warning("The serving API did not store this feedback.")
        if result.retrained and result.promoted is False:
            candidate = result.candidate_version
            st.warning(
                f"The model was retrained, but the promotion gate rejected the new version"
                f"{'' if candidate is None else f' {candidate}'}: version {result.model_version} "
                "stays in use (the Model page says why)."
            )
        elif result.retrained:
            gate = " It passed the promotion gate and went live." if result.promoted else ""
            st.success(f"The model was retrained: now version {result.model_version}.{gate}")
        elif result.retraining == "running":
            st.info(
                f"Retraining started and is still running; version {result.model_version} "
                "answers until the new one is written (Refresh model info to see it)."
            )
        elif result.retraining == "failed":
            st.warning(
                f"Retraining failed; version {result.model_version} stays in use. "
                "The row is stored all the same."
            )
        else:
            st.info(f"Not retrained this time: model version {result.model_version}.")
