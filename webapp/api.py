"""The web app: upload, draw or pick an image, ask the serving API for its label,
then tell it the true label (feedback, which feeds retraining). A second page, Batch,
sends a folder's worth of images at once and lists their answers; a third, Model,
lists the versions the retraining made, the promotion gate's decision on each, and
rolls the API back to an earlier one.

    SERVING_URL=http://127.0.0.1:8080 streamlit run webapp/api.py --server.port 8081

The page's parts live in the installed package mlstack_webapp (pip install -e ./webapp),
not found on a path: predict_page (images), table_page (a table's form), batch_page
(several images at once), model_page (versions and rollback), answer (prediction and
feedback form), state (what the page remembers between reruns, st.session_state, and
the actions that change it), views (pure helpers). Every call to the API goes through
mlstack_webapp.client, whose errors are shown as messages.
"""

from __future__ import annotations

import streamlit as st
from mlstack_webapp.batch_page import batch_page
from mlstack_webapp.client import ModelInfo, ServingClient
from mlstack_webapp.model_page import model_page
from mlstack_webapp.predict_page import predict_page
from mlstack_webapp.settings import WebappSettings
from mlstack_webapp.state import init_state, refresh_model
from mlstack_webapp.views import classifier_title, page_icon

PAGES = ("Predict", "Batch", "Model")


def sidebar(settings: WebappSettings, client: ServingClient) -> None:
    with st.sidebar:
        st.header("Serving API")
        st.caption(settings.serving_url)
        if st.button("Refresh model info", key="refresh_model"):
            refresh_model(client)
        model: ModelInfo | None = st.session_state.model
        if st.session_state.model_error:
            st.error(st.session_state.model_error)
        elif model is not None:
            st.success(f"Model version {model.version}")
            if model.classes:
                st.write("Labels: " + ", ".join(str(c) for c in model.classes))
            if model.k:
                every = "feedback row" if model.k == 1 else f"{model.k} feedback rows"
                st.write(f"Retrains after every {every}.")
            if model.prod_rows is not None:
                st.write(f"Feedback rows stored: {model.prod_rows}")


def main() -> None:
    settings = WebappSettings()
    client = ServingClient(
        settings.serving_url,
        timeout=settings.request_timeout,
        feedback_timeout=settings.feedback_timeout,
        token=settings.api_token.get_secret_value() if settings.api_token else None,
    )
    init_state()
    if not st.session_state.model_checked:
        refresh_model(client)
    # After /model answered: the browser tab's title names the data set too.
    model = st.session_state.model
    st.set_page_config(
        page_title=classifier_title(model), page_icon=page_icon(model), layout="wide"
    )
    page = st.sidebar.radio("Page", PAGES, key="page", horizontal=True)
    if page == "Model":
        model_page(client)
    elif page == "Batch":
        batch_page(settings, client)
    else:
        predict_page(settings, client)
    # Drawn last: it shows the model version after this run's predict, feedback or rollback.
    sidebar(settings, client)


main()
