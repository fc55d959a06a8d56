"""The Predict page: an image uploaded, drawn or picked among the samples (a table's
model gets the form of table_page instead), its prediction and the feedback form."""

from __future__ import annotations

import hashlib

import streamlit as st

from .answer import feedback_form, show_prediction
from .client import ModelInfo, ServingClient
from .imaging import canvas_to_png, preview
from .samples import list_samples
from .settings import WebappSettings
from .state import do_predict
from .table_page import table_page
from .views import classifier_title, for_digits, label_options

UPLOAD, DRAW, SAMPLE = "Upload an image", "Draw a digit", "Pick a sample"
CANVAS_SIZE = 280


def sources(model: ModelInfo | None) -> tuple[str, ...]:
    """Where an image can come from: a drawn digit only for a model of the digits."""
    return (UPLOAD, DRAW, SAMPLE) if for_digits(model) else (UPLOAD, SAMPLE)


def image_input(settings: WebappSettings, model: ModelInfo | None) -> tuple[bytes | None, str]:
    """The image the user chose, as file bytes, and a name for it."""
    source = st.radio("Image source", sources(model), horizontal=True, key="source")
    if source == UPLOAD:
        what = "of a digit" if for_digits(model) else "to classify"
        upload = st.file_uploader(
            f"A PNG or JPEG image {what}", type=["png", "jpg", "jpeg"], key="upload"
        )
        if upload is None:
            return None, ""
        data = upload.getvalue()
        if len(data) > settings.max_upload_mb * 1024 * 1024:
            st.error(f"{upload.name} is larger than {settings.max_upload_mb} MB.")
            return None, ""
        return data, upload.name
    if source == DRAW:
        return drawn_image(), "drawing"
    samples = list_samples(settings.samples_dir)
    if not samples:
        st.warning(
            f"No sample images in {settings.samples_dir}. The serving API exports them on its "
            "first start (data/samples/); set SAMPLES_DIR to their folder."
        )
        return None, ""
    by_name = {s.path.name: s for s in samples}
    name = st.selectbox(
        "A held-out test image (its true label is in its name)",
        list(by_name),
        format_func=lambda n: by_name[n].title if n in by_name else n,
        key="sample",
    )
    path = by_name[name].path
    try:
        data = path.read_bytes()
    except OSError as error:
        st.error(f"Cannot read {path}: {error}")
        return None, ""
    # The file name tells the true label: offer it as the default answer.
    st.session_state.label_hints[hashlib.sha256(data).hexdigest()] = by_name[name].label
    return data, path.name


def clear_canvas() -> None:
    # A new key is a new, empty canvas component.
    st.session_state.canvas_round += 1


def drawn_image() -> bytes | None:
    st.caption("Draw one digit with the mouse, large and centred.")
    try:
        from streamlit_drawable_canvas import st_canvas

        result = st_canvas(
            stroke_width=18,
            stroke_color="#000000",
            background_color="#ffffff",
            height=CANVAS_SIZE,
            width=CANVAS_SIZE,
            drawing_mode="freedraw",
            return_image_data=True,
            key=f"canvas_{st.session_state.canvas_round}",
        )
        drawing = canvas_to_png(result.image_data)
    except Exception as error:  # a front-end component that fails must not break the page
        st.error(f"The drawing canvas is not available: {error}")
        return None
    st.button("Clear the drawing", key="clear_canvas", on_click=clear_canvas)
    return drawing


def predict_page(settings: WebappSettings, client: ServingClient) -> None:
    model: ModelInfo | None = st.session_state.model
    if model is not None and model.is_table:
        table_page(settings, client, model)
        return
    st.title(classifier_title(model))
    choose = (
        "Upload a picture of a handwritten digit, draw one, or pick a test image"
        if for_digits(model)
        else "Upload a picture or pick a test image"
    )
    st.write(
        f"{choose}; **Predict**, then tell the model the true label: feedback is stored "
        "and the model retrains on it."
    )
    source_col, result_col = st.columns(2, gap="large")
    with source_col:
        image, name = image_input(settings, model)
        digest = hashlib.sha256(image).hexdigest() if image else ""
        if image:
            shown = preview(image)
            if shown is None:
                st.warning(f"{name} cannot be shown as an image; the API will say why.")
            elif name != "drawing":
                st.image(shown, caption=name)
        clicked = st.button("Predict", key="predict_button", type="primary", disabled=not image)
    with result_col:
        if clicked and image:
            with st.spinner("Asking the serving API..."):
                do_predict(client, image, digest)
        if st.session_state.predict_error:
            st.error(st.session_state.predict_error)
        current = st.session_state.prediction
        if current is not None and image and current["digest"] == digest:
            show_prediction(current["result"], label_options(st.session_state.model, None))
            feedback_form(client, image, digest)
        elif current is not None and image:
            st.info("The image changed: press Predict for its label.")
        elif not image:
            st.info("Choose an image on the left, then press Predict.")
