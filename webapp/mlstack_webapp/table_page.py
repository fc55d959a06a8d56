"""The Predict page of a model trained on a table: a form built from the training
schema (GET /model), held-out rows to start from, the prediction and the feedback."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pandas as pd
import streamlit as st

from .answer import feedback_form, show_prediction
from .client import ModelInfo, Prediction, ServingClient
from .labels import parse_label
from .settings import WebappSettings
from .state import do_predict
from .views import classifier_title, label_options

MISSING = "(missing)"  # a category box's choice for a null, where training had them


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
    st.title(classifier_title(model))
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
