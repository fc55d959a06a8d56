"""The Model page: every version the retraining made, the promotion gate's decision on
each, F1 over versions, and a rollback to an earlier version after a confirmation."""

from __future__ import annotations

import streamlit as st

from .client import ModelVersion, ServingClient, ServingError
from .state import do_rollback
from .views import f1_frame, rollback_choices, versions_frame, when


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
