"""The web app: upload, draw or pick an image, ask the serving API for its label,
then tell it the true label (feedback, which feeds retraining). A second page, Model,
lists the versions the retraining made, the promotion gate's decision on each, and
rolls the API back to an earlier one.

    SERVING_URL=http://127.0.0.1:8080 streamlit run webapp/api.py --server.port 8081

Everything the page remembers between reruns lives in st.session_state; every
call to the API goes through mlstack_webapp.client, whose errors are shown as messages.
The package mlstack_webapp is installed (pip install -e ./webapp), not found on a path.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

import pandas as pd
import streamlit as st
from mlstack_webapp.client import (
    FeedbackResult,
    ModelInfo,
    ModelVersion,
    Prediction,
    ServingClient,
    ServingError,
)
from mlstack_webapp.imaging import canvas_to_png, preview
from mlstack_webapp.labels import Label, parse_label
from mlstack_webapp.samples import list_samples
from mlstack_webapp.settings import WebappSettings

PAGES = ("Predict", "Model")
SOURCES = ("Upload an image", "Draw a digit", "Pick a sample")
CANVAS_SIZE = 280
DEFAULT_LABELS: list[Label] = list(range(10))
MISSING = "(missing)"  # a category box's choice for a null, where training had them


# ---------------------------------------------------------------- pure helpers


def label_options(model: ModelInfo | None, prediction: Prediction | None) -> list[Label]:
    """The labels a user can choose: the model's classes (GET /model), else the keys of
    the prediction's probabilities, else 0-9."""
    if model is not None and model.classes:
        return list(model.classes)
    if prediction is not None and prediction.probabilities:
        return [parse_label(key) for key in prediction.probabilities]
    return list(DEFAULT_LABELS)


def probability_frame(prediction: Prediction, order: list[Label]) -> pd.DataFrame:
    """Probabilities in the order of the labels (keys are strings in JSON)."""
    known = [str(label) for label in order if str(label) in prediction.probabilities]
    rest = [k for k in prediction.probabilities if k not in known]
    keys = known + rest
    return pd.DataFrame(
        {"label": keys, "probability": [prediction.probabilities[k] for k in keys]}
    ).set_index("label")


def when(version: ModelVersion) -> str:
    """A version's training time to the second, as the page shows it."""
    return version.trained_at.replace("T", " ")[:19]


def versions_frame(versions: list[ModelVersion]) -> pd.DataFrame:
    """GET /model/versions as a table, one row a version, oldest first."""
    return pd.DataFrame(
        {
            "version": [v.version for v in versions],
            "in use": [v.active for v in versions],
            "trained at": [when(v) for v in versions],
            "reason": [v.reason for v in versions],
            "rows": [v.rows.get("total") for v in versions],
            "feedback rows": [v.rows.get("prod") for v in versions],
            "reference F1": [v.figure("holdout", "f1_macro") for v in versions],
            "reference balanced accuracy": [
                v.figure("holdout", "balanced_accuracy") for v in versions
            ],
            "feedback F1": [v.figure("feedback", "f1_macro") for v in versions],
            "status": [v.status for v in versions],
            "gate": [v.gate_reason for v in versions],
        }
    )


def f1_frame(versions: list[ModelVersion]) -> pd.DataFrame:
    """Reference and feedback F1 over versions, for the line chart (no figure: NaN)."""
    return pd.DataFrame(
        {
            "reference F1": [v.figure("holdout", "f1_macro") for v in versions],
            "feedback F1": [v.figure("feedback", "f1_macro") for v in versions],
        },
        index=pd.Index([v.version for v in versions], name="version"),
        dtype=float,
    )


def rollback_choices(versions: list[ModelVersion]) -> list[int]:
    """The versions the API can serve again: not the one in use, never a rejected one."""
    return [v.version for v in versions if not v.active and not v.rejected]


# ---------------------------------------------------------------- state and actions


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


# ---------------------------------------------------------------- page parts


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


def image_input(settings: WebappSettings) -> tuple[bytes | None, str]:
    """The image the user chose, as file bytes, and a name for it."""
    source = st.radio("Image source", SOURCES, horizontal=True, key="source")
    if source == SOURCES[0]:
        upload = st.file_uploader(
            "A PNG or JPEG image of a digit", type=["png", "jpg", "jpeg"], key="upload"
        )
        if upload is None:
            return None, ""
        data = upload.getvalue()
        if len(data) > settings.max_upload_mb * 1024 * 1024:
            st.error(f"{upload.name} is larger than {settings.max_upload_mb} MB.")
            return None, ""
        return data, upload.name
    if source == SOURCES[1]:
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


def model_page(client: ServingClient) -> None:
    st.title("Model versions")
    st.write(
        "Every version the retraining made, oldest first, with the promotion gate's "
        "decision: a rejected candidate is kept for inspection and never served."
    )
    st.button("Refresh", key="refresh_versions")  # a click reruns the page, which asks again
    try:
        versions = client.versions()
    except ServingError as error:
        st.error(str(error))
        return
    if not versions:
        st.info("The serving API keeps no model version yet.")
        return
    active = next((v for v in versions if v.active), None)
    if active is not None:
        st.success(f"Version {active.version} is in use.")
    st.dataframe(versions_frame(versions), hide_index=True, key="versions_table")
    for version in versions:
        if version.rejected:
            st.warning(f"Version {version.version} was rejected by the gate: {version.gate_reason}")
    st.subheader("F1 over versions")
    # Not from zero: versions differ in the second decimal, which a 0-1 axis flattens.
    lines = f1_frame(versions).reset_index().melt("version", var_name="figure", value_name="F1")
    st.vega_lite_chart(
        lines.dropna(),
        {
            "mark": {"type": "line", "point": True},
            "encoding": {
                "x": {"field": "version", "type": "ordinal", "axis": {"labelAngle": 0}},
                "y": {"field": "F1", "type": "quantitative", "scale": {"zero": False}},
                "color": {"field": "figure", "type": "nominal"},
            },
        },
        width="stretch",
        height=260,
    )
    rollback_control(client, versions)


def rollback_control(client: ServingClient, versions: list[ModelVersion]) -> None:
    st.subheader("Roll back")
    choices = rollback_choices(versions)
    answer = st.session_state.rollback
    if not choices:
        st.info("No other version can be served: each one is in use or was rejected.")
    else:
        by_version = {v.version: v for v in versions}
        chosen = st.selectbox(
            "Version to serve",
            choices,
            index=len(choices) - 1,
            format_func=lambda n: f"{n}  ({when(by_version[n])}, {by_version[n].reason})",
            key="rollback_version",
        )
        # One confirmation per chosen version: choosing another asks again.
        confirm_key = f"rollback_confirm_{chosen}"
        confirmed = st.checkbox(
            f"I understand every worker will serve version {chosen}", key=confirm_key
        )
        st.button(
            f"Roll back to version {chosen}",
            key="rollback_button",
            type="primary",
            disabled=not confirmed,
            on_click=do_rollback,
            args=(client, chosen, confirm_key),
        )
    if answer is not None:
        (st.success if answer["ok"] else st.error)(answer["message"])


def row_digest(row: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(row, sort_keys=True, default=str).encode()).hexdigest()


def number_input(column: dict[str, Any], default: Any) -> float | int:
    """A number box within the data set's range for the column (integers step by 1)."""
    name = column["name"]
    low, high = column.get("min"), column.get("max")
    if column.get("integer"):
        cast, options = int, {"step": 1}
    else:
        cast, options = float, {"format": "%g"}
    bounds = {}
    if low is not None and high is not None:
        bounds = {"min_value": cast(low), "max_value": cast(high)}
    value = default if default is not None else low if low is not None else 0
    if bounds:
        value = min(max(value, bounds["min_value"]), bounds["max_value"])
    help_text = None if not bounds else f"Range in the data set: {low:g} to {high:g}"
    key = f"feature_{name}"
    # A value already in the session (typed, or a held-out row) is the widget's own.
    start = {} if key in st.session_state else {"value": cast(value)}
    return st.number_input(name, key=key, help=help_text, **start, **bounds, **options)


def row_form(schema: dict[str, Any]) -> dict[str, Any]:
    """One input per column of the training schema (GET /model); returns the row."""
    example = schema.get("example") or {}
    row: dict[str, Any] = {}
    boxes = st.columns(2)
    for i, column in enumerate(schema["columns"]):
        name = column["name"]
        with boxes[i % 2]:
            if column["type"] == "category":
                options = [*column.get("categories", [])]
                if column.get("nullable"):
                    options.append(MISSING)
                default = example.get(name)
                index = options.index(default) if default in options else 0
                key = f"feature_{name}"
                start = {} if key in st.session_state else {"index": index}
                chosen = st.selectbox(name, options, key=key, **start)
                row[name] = None if chosen == MISSING else chosen
            else:
                value = number_input(column, example.get(name))
                missing = column.get("nullable") and st.checkbox(
                    f"{name}: unknown", key=f"missing_{name}"
                )
                row[name] = None if missing else value
    return row


def form_value(column: dict[str, Any], value: Any) -> Any:
    """A CSV cell as the form holds it: None, text, int for whole-number columns."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if column["type"] == "category":
        return str(value)
    return int(value) if column.get("integer") else float(value)


def held_out_rows(settings: WebappSettings, schema: dict[str, Any]) -> list[dict[str, Any]]:
    """data/samples/samples.csv (held-out rows the API exports on its first start), as
    {"title", "row", "label"}; empty when there is none or it is not this table's."""
    path = settings.samples_dir / "samples.csv"
    target = schema.get("target", "target")
    names = [c["name"] for c in schema["columns"]]
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError):
        return []
    if not set(names) | {target} <= set(frame.columns):
        return []
    out = []
    for i, record in enumerate(frame.to_dict("records")):
        row = {c["name"]: form_value(c, record[c["name"]]) for c in schema["columns"]}
        label = parse_label(record[target])
        where = record.get("ref_row", i)
        out.append({"title": f"row {where} (label {label})", "row": row, "label": label})
    return out


def fill_form(rows: list[dict[str, Any]], categories: set[str], choice_key: str) -> None:
    """The held-out row box's callback: the form takes that row, and its label is
    offered as the true one."""
    index = st.session_state[choice_key]
    if index is None:
        return
    chosen = rows[index]
    for name, value in chosen["row"].items():
        if name in categories:
            st.session_state[f"feature_{name}"] = MISSING if value is None else value
        elif value is None:
            st.session_state[f"missing_{name}"] = True
        else:
            st.session_state[f"feature_{name}"] = value
            st.session_state[f"missing_{name}"] = False
    st.session_state.label_hints[row_digest(chosen["row"])] = chosen["label"]


def table_page(settings: WebappSettings, client: ServingClient, model: ModelInfo) -> None:
    """The Predict page for a model trained on a table: a form built from its schema."""
    schema = model.schema or {}
    target = schema.get("target", "target")
    st.title("Table classifier")
    st.write(
        f"Fill in a row (the form starts from an example of the data set), **Predict** its "
        f"`{target}`, then tell the model the true one: feedback is stored and the model "
        "retrains on it."
    )
    form_col, result_col = st.columns(2, gap="large")
    with form_col:
        samples = held_out_rows(settings, schema)
        if samples:
            st.selectbox(
                "Start from a held-out row (never trained on; its label is offered below)",
                range(len(samples)),
                index=None,
                format_func=lambda i: samples[i]["title"],
                key="held_out_row",
                on_change=fill_form,
                args=(
                    samples,
                    {c["name"] for c in schema["columns"] if c["type"] == "category"},
                    "held_out_row",
                ),
            )
        row = row_form(schema)
        digest = row_digest(row)
        clicked = st.button("Predict", key="predict_button", type="primary")
    with result_col:
        if clicked:
            with st.spinner("Asking the serving API..."):
                do_predict(client, row, digest)
        if st.session_state.predict_error:
            st.error(st.session_state.predict_error)
        current = st.session_state.prediction
        if current is not None and current["digest"] == digest:
            result: Prediction = current["result"]
            show_prediction(result, label_options(st.session_state.model, None))
            for column, value in result.unknown_categories.items():
                st.warning(
                    f"`{column}` = {value!r} was never seen in training: "
                    "it was encoded as an unknown category."
                )
            feedback_form(client, row, digest)
        elif current is not None:
            st.info("The row changed: press Predict for its label.")
        else:
            st.info("Fill in the row, then press Predict.")


def predict_page(settings: WebappSettings, client: ServingClient) -> None:
    model: ModelInfo | None = st.session_state.model
    if model is not None and model.is_table:
        table_page(settings, client, model)
        return
    st.title("Digit classifier")
    st.write(
        "Upload a picture of a handwritten digit, draw one, or pick a test image; "
        "**Predict**, then tell the model the true label: feedback is stored and "
        "the model retrains on it."
    )
    source_col, result_col = st.columns(2, gap="large")
    with source_col:
        image, name = image_input(settings)
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


def main() -> None:
    st.set_page_config(page_title="Digit classifier", page_icon="🔢", layout="wide")
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
    page = st.sidebar.radio("Page", PAGES, key="page", horizontal=True)
    if page == "Model":
        model_page(client)
    else:
        predict_page(settings, client)
    # Drawn last: it shows the model version after this run's predict, feedback or rollback.
    sidebar(settings, client)


main()
