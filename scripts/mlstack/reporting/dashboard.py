"""The Evidently project and its dashboard panels."""

from __future__ import annotations

import logging

from evidently.sdk.models import PanelMetric
from evidently.sdk.panels import bar_plot_panel, counter_panel, line_plot_panel, text_panel
from evidently.ui.workspace import Project, Workspace

from .evidently_metrics import metric_type

log = logging.getLogger(__name__)

DASHBOARD_VERSION = "1"  # bump when the panels below change: the dashboard is then rebuilt


def find_or_create_project(workspace: Workspace, name: str) -> Project:
    found = workspace.search_project(name)
    if found:
        if len(found) > 1:
            log.warning("%d projects are named %r: using the first", len(found), name)
        return found[0]
    project = workspace.create_project(name)
    project.description = (
        "Data drift of the embedding (PCA columns) and classification quality of the "
        "deployed model, per batch of feedback rows, against data/ref_data.csv"
    )
    project.save()
    log.info("created project %s (%s)", name, project.id)
    return project


def panels() -> list:
    def metric(name: str, legend: str) -> PanelMetric:
        return PanelMetric(legend=legend, metric=metric_type(name))

    drift = PanelMetric(
        legend="share of drifted PCA columns",
        metric=metric_type("DriftedColumnsCount"),
        metric_labels={"value_type": "share"},
    )
    rows = PanelMetric(legend="rows", metric=metric_type("RowCount"))
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
    ]


def ensure_dashboard(project: Project, state: dict) -> None:
    """Rebuild the panels when they are not those of DASHBOARD_VERSION."""
    titles = [p.title for p in panels()]
    model = project.dashboard.model()
    if state.get("dashboard") == DASHBOARD_VERSION and [p.title for p in model.panels] == titles:
        return
    project.dashboard.clear_dashboard()
    for panel in panels():
        project.dashboard.add_panel(panel, tab="Monitoring")
    state["dashboard"] = DASHBOARD_VERSION
    log.info("dashboard: %d panels", len(titles))
