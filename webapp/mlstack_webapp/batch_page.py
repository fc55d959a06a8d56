"""The Batch page: several images (a folder's worth) sent to the serving API at once,
in batches, and a table of the answers: file, prediction, confidence, error."""

from __future__ import annotations

import hashlib

import streamlit as st

from .client import ModelInfo, ServingClient
from .settings import WebappSettings
from .state import do_predict_batch
from .views import batch_frame, for_digits


def batch_page(settings: WebappSettings, client: ServingClient) -> None:
    st.title("Several images at once")
    model: ModelInfo | None = st.session_state.model
    if model is not None and model.is_table:
        st.info("This model takes a table's rows, not images: use the Predict page.")
        return
    st.write(
        "Choose the images of a folder (select them all in the file dialog, or drop them "
        f"here), then **Predict all**: they go to the serving API {settings.batch_images} "
        "to a request, and each gets its own answer below."
    )
    uploads = st.file_uploader(
        "PNG or JPEG images" + (" of digits" if for_digits(model) else ""),
        type=["png", "jpg", "jpeg"],
        accept_multiple_files=True,
        key="batch_upload",
    )
    files = [(upload.name, upload.getvalue()) for upload in uploads or []]
    clicked = st.button("Predict all", key="batch_button", type="primary", disabled=not files)
    if clicked and files:
        with st.spinner(f"Asking the serving API about {len(files)} images..."):
            do_predict_batch(
                client, files, settings.batch_images, settings.max_upload_mb * 1024 * 1024
            )
    result = st.session_state.batch
    current = [(name, hashlib.sha256(data).hexdigest()) for name, data in files]
    if result is None or not files:
        st.info("Choose images above, then press Predict all.")
        return
    if result["files"] != current:
        st.info("The images changed: press Predict all for their labels.")
        return
    answers = result["answers"]
    failed = sum(answer.prediction is None for answer in answers)
    summary = f"{len(answers) - failed} of {len(answers)} images predicted"
    (st.warning if failed else st.success)(summary + (f"; {failed} refused." if failed else "."))
    # A plain table: every file on the page, its cells text a reader (or a test) can find.
    frame = batch_frame([name for name, _ in result["files"]], answers)
    st.table(frame.style.format({"confidence": "{:.2f}"}, na_rep="").hide(axis="index"))
