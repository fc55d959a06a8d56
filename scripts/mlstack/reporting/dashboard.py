"""The Evidently project and its dashboard panels."""

from __future__ import annotations

import logging

from evidently.sdk.models import PanelMetric
from evidently.sdk.panels import bar_plot_panel, counter_panel, line_plot_panel, text_panel
from evidently.ui.workspace import Project, Workspace

from ..tabular import NUMBER
from .evidently_metrics import metric_type

log = logging.getLogger(__name__)

DASHBOARD_VERSION = "2"  # bump when the panels below change: the dashboard is then rebuilt


def find_or_create_project(workspace: Workspace, name: str) -> Project:
    found = workspace.search_project(name)
    if found:
        if len(found) > 1:
            log.warning("%d projects are named %r: using the first", len(found), name)
        return found[0]
    project = workspace.create_project(name)
    project.description = (
        "Data drift of the embedding (PCA columns), classification quality and contested "
        "rows of the deployed model, per batch of feedback rows, against "
        "data/ref_data.csv; and the promotion gate's decision at each retraining"
    )
    project.save()
    log.info("created project %s (%s)", name, project.id)
    return project


def panels(table_columns: dict[str, str] | None = None) -> list:
    """The dashboard; for a table data set, one more panel: its own numeric columns'
    drift per batch."""

    def metric(name: str, legend: str) -> PanelMetric:
        return PanelMetric(legend=legend, metric=metric_type(name))

    drift = PanelMetric(
        legend="share of drifted PCA columns",
        metric=metric_type("DriftedColumnsCount"),
        metric_labels={"value_type": "share"},
    )
    rows = PanelMetric(legend="rows", metric=metric_type("RowCount"))

    def flag(name: str, legend: str, value_type: str) -> PanelMetric:
        return PanelMetric(
            legend=legend, metric=metric_type(name), metric_labels={"value_type": value_type}
        )

    accepted = metric("GateAccepted", "accepted")
    rejected = metric("GateRejected", "rejected")
    return [
        text_panel(
            title="Deployed classifier: drift and quality over feedback batches",
            description="One point per batch of feedback rows (data/prod_data.csv) "
            "against the reference (data/ref_data.csv)",
        ),
        counter_panel(
            title="Feedback rows received", values=[rows], size="half", aggregation="sum"
        ),
        counter_panel(
            title="Drift share, last batch", values=[drift], size="half", aggregation="last"
        ),
        counter_panel(
            title="F1 (macro), last batch",
            values=[metric("MulticlassF1", "F1")],
            size="half",
            aggregation="last",
        ),
        counter_panel(
            title="Balanced accuracy, last batch",
            values=[metric("BalancedAccuracy", "balanced accuracy")],
            size="half",
            aggregation="last",
        ),
        line_plot_panel(
            title="Classification quality per batch",
            values=[
                metric("MulticlassF1", "F1 (macro)"),
                metric("BalancedAccuracy", "balanced accuracy"),
                metric("MulticlassPrecision", "precision (macro)"),
                metric("MulticlassRecall", "recall (macro)"),
                metric("MulticlassAccuracy", "accuracy"),
            ],
            size="full",
        ),
        line_plot_panel(
            title="Data drift: share of drifted PCA columns", values=[drift], size="half"
        ),
        bar_plot_panel(title="Feedback rows per batch", values=[rows], size="half"),
        # the retraining loop: contested feedback and the promotion gate
        counter_panel(
            title="Contested feedback rows",
            values=[flag("ContestedRows", "contested", "count")],
            size="half",
            aggregation="sum",
        ),
        counter_panel(
            title="Feedback rows in a burst",
            values=[flag("BurstRows", "in a burst", "count")],
            size="half",
            aggregation="sum",
        ),
        line_plot_panel(
            title="Contested and burst share per batch",
            values=[
                flag("ContestedRows", "contested share", "share"),
                flag("BurstRows", "burst share", "share"),
            ],
            size="half",
        ),
        bar_plot_panel(
            title="Contested and burst rows per batch",
            values=[
                flag("ContestedRows", "contested", "count"),
                flag("BurstRows", "in a burst", "count"),
            ],
            size="half",
        ),
        counter_panel(
            title="Retrainings accepted by the gate",
            values=[accepted],
            size="half",
            aggregation="sum",
        ),
        counter_panel(
            title="Candidates rejected by the gate",
            values=[rejected],
            size="half",
            aggregation="sum",
        ),
        bar_plot_panel(
            title="Gate decision per retraining",
            values=[accepted, rejected],
            size="half",
            stacked=True,
        ),
        line_plot_panel(
            title="Reference hold-out F1 at each retraining: candidate and champion",
            values=[
                metric("CandidateReferenceF1", "candidate"),
                metric("ChampionReferenceF1", "champion (the version in use)"),
            ],
            size="half",
        ),
        *_table_panels(table_columns or {}),
    ]


def _table_panels(table_columns: dict[str, str]) -> list:
    numbers = [column for column, kind in table_columns.items() if kind == NUMBER]
    if not numbers:
        return []
    values = [
        PanelMetric(
            legend=column, metric=metric_type("ValueDrift"), metric_labels={"column": column}
        )
        for column in numbers
    ]
    return [
        line_plot_panel(
            title="The table's own columns: drift test p-value per batch (drift at 0.05 or below)",
            values=values,
            size="full",
        )
    ]


def ensure_dashboard(
    project: Project, state: dict, table_columns: dict[str, str] | None = None
) -> None:
    """Rebuild the panels when they are not those of DASHBOARD_VERSION (for this data
    set's columns)."""
    titles = [p.title for p in panels(table_columns)]
    model = project.dashboard.model()
    if state.get("dashboard") == DASHBOARD_VERSION and [p.title for p in model.panels] == titles:
        return
    project.dashboard.clear_dashboard()
    for panel in panels(table_columns):
        project.dashboard.add_panel(panel, tab="Monitoring")
    state["dashboard"] = DASHBOARD_VERSION
    log.info("dashboard: %d panels", len(titles))
