"""Every setting of the stack, read from the environment: one module, one naming rule.

The rule: a field's environment variable is its name in capitals, with no prefix
(`retrain_every_k` is RETRAIN_EVERY_K, `report_batch_rows` is REPORT_BATCH_ROWS).
Defaults live here and nowhere else; Dockerfiles, compose files and k8s set only
what differs (in a container: DATA_DIR=/data, ARTIFACTS_DIR=/artifacts, ...).

Every path hangs from one root: the repository checkout when the package is
installed from one (editable), else the working directory; each can be moved on
its own. The web app keeps its own small settings class (webapp/mlstack_webapp/settings.py) with
the same rule: its image carries none of this package.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _default_root() -> Path:
    # scripts/mlstack/settings.py -> the checkout, when there is one (an editable
    # install or the tests); an installed copy lives in site-packages instead.
    checkout = Path(__file__).resolve().parents[2]
    return checkout if (checkout / "pyproject.toml").is_file() else Path.cwd()


REPO_ROOT = _default_root()


class StackSettings(BaseSettings):
    """The shared base: where the data and the artifacts are."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    project_root: Path = Field(default=REPO_ROOT, description="Root every default path hangs from")
    data_dir: Path = Field(
        default=Path(), description="ref_data.csv, prod_data.csv (default ROOT/data)"
    )
    artifacts_dir: Path = Field(
        default=Path(), description="pickles + manifest (default ROOT/artifacts)"
    )
    database_url: str | None = Field(
        default=None,
        description="PostgreSQL (postgresql://user:password@host:5432/db): feedback rows, "
        "model versions and retraining requests live there, so several replicas share them "
        "without a shared disk. Unset: files (prod_data.csv, artifacts/), one machine",
    )
    db_pool_size: int = Field(
        default=5, ge=1, description="Connections each process keeps open to the database"
    )
    db_connect_timeout: float = Field(
        default=3.0, gt=0, description="Seconds to wait for a database connection"
    )

    @model_validator(mode="before")
    @classmethod
    def _paths_from_root(cls, values: dict) -> dict:
        root = Path(values.get("project_root") or REPO_ROOT)
        values.setdefault("data_dir", root / "data")
        values.setdefault("artifacts_dir", root / "artifacts")
        return values

    @property
    def ref_data_path(self) -> Path:
        return self.data_dir / "ref_data.csv"

    @property
    def prod_data_path(self) -> Path:
        return self.data_dir / "prod_data.csv"

    @property
    def synthetic_data_path(self) -> Path:
        return self.data_dir / "synthetic_data.csv"

    @property
    def samples_dir(self) -> Path:
        return self.data_dir / "samples"


class PipelineSettings(StackSettings):
    """The data set, the embedding and training: what the scripts need."""

    dataset_dir: Path | None = Field(
        default=None,
        description="A folder of images, one sub-folder per label; unset: scikit-learn's digits",
    )
    dataset_csv: Path | None = Field(
        default=None,
        description="A table (CSV, one row per example) to serve instead of images: "
        "every column but TARGET_COLUMN is a feature (numbers or text categories)",
    )
    target_column: str = Field(
        default="target", min_length=1, description="The label's column in DATASET_CSV"
    )
    image_features: Literal["photo", "grid"] = Field(
        default="photo",
        description="What a folder's images (DATASET_DIR) become before the PCA: photo "
        "(colour histogram, HOG, edge directions, texture and an 8x8 gray grid: "
        "mlstack/photos.py) or grid (a 16x16 gray grid of the strokes alone, found as ink on "
        "paper: drawings, scans of digits or letters); the default digits keep their 8x8 grid",
    )
    image_model: Path | None = Field(
        default=None,
        description="An ONNX image model file (e.g. a torchvision network exported on a machine "
        "with internet): its output replaces IMAGE_FEATURES for DATASET_DIR. Kept inside the "
        "artifacts; needs onnxruntime, which the service images leave out",
    )
    n_components: int = Field(default=30, ge=2, description="Size of the PCA embedding")
    holdout_fraction: float = Field(
        default=0.2, gt=0, lt=1, description="Share of the data set held out for evaluation"
    )
    random_state: int = Field(default=0, description="Seed of every random split and draw")
    max_training_rows: int = Field(
        default=12_000,
        ge=100,
        description="Rows a retraining reads (reference + synthetic + the newest feedback "
        "rows, the oldest left out): an SVC's fit and prediction cost grow with them, its "
        "accuracy no longer does (docs/model.md)",
    )
    synthetic_per_label: int = Field(
        default=200,
        ge=0,
        description="Font-free synthetic drawn digits added to the default data set's training "
        "rows, per label; 0 turns them off",
    )
    printed_per_label: int = Field(
        default=168,
        ge=0,
        description="Synthetic digits printed with the DejaVu fonts (photos and scans) added "
        "to the default data set's training rows, per label; 0 turns them off. Shipped "
        "drawn; drawing them again for another count needs the fonts (docs/model.md)",
    )
    gate: bool = Field(
        default=True,
        description="A retrained candidate goes live only if it passes the promotion gate, "
        "and feedback bursts and hold-outs are kept out of training; off, every feedback row "
        "trains and every retraining goes live (the brief's minimal loop)",
    )
    gate_tolerance: float = Field(
        default=0.01,
        ge=0,
        le=1,
        description="Largest loss of macro F1 or balanced accuracy a candidate may show against "
        "the version in use (and the best version) on each hold-out",
    )
    gate_floor: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Macro F1 and balanced accuracy every version needs on the reference hold-out",
    )
    gate_feedback_share: float = Field(
        default=0.2,
        ge=0,
        lt=1,
        description="Share of feedback rows held out of training to judge candidates "
        "(chosen by a hash of their prediction_id)",
    )
    gate_min_feedback_rows: int = Field(
        default=20,
        ge=1,
        description="The feedback hold-out is judged once it holds this many rows",
    )
    contested_burst_share: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Past this share of contested feedback (true label differs from the "
        "prediction shown) among the rows one model version answered, those rows are held "
        "back from training as a burst (a mistake or an attack); they stay stored",
    )
    keep_versions: int = Field(
        default=20,
        ge=2,
        description="Artifact versions kept; older ones are pruned after each training, "
        "except the one in use, the one before it and pinned ones (train.py --pin N)",
    )
    max_upload_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1024, description="Largest image file accepted"
    )
    max_image_pixels: int = Field(
        default=40_000_000, ge=64, description="Largest image accepted, in pixels"
    )

    @model_validator(mode="after")
    def _one_data_set(self) -> PipelineSettings:
        if self.dataset_dir is not None and self.dataset_csv is not None:
            raise ValueError("set DATASET_DIR (images) or DATASET_CSV (a table), not both")
        if self.image_model is not None and self.dataset_dir is None:
            raise ValueError("IMAGE_MODEL describes the images of DATASET_DIR: set both")
        return self

    @property
    def is_table(self) -> bool:
        return self.dataset_csv is not None


def _no_empty_token(value: object) -> object:
    # Compose passes `API_TOKEN: ${API_TOKEN:-}`: an empty value means no token.
    return None if value in ("", None) else value


class ServingSettings(PipelineSettings):
    """The serving API: retraining, security, request handling and its metrics."""

    retrain_every_k: int = Field(
        default=10, ge=1, description="Retrain after every k feedback rows"
    )
    retrain_policy: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["every_k"],
        description="What triggers a retraining, any of every_k, drift, performance "
        '(RETRAIN_POLICY=every_k,drift or ["every_k","drift"])',
    )
    trigger_window_rows: int = Field(
        default=100,
        ge=10,
        description="Newest feedback rows the drift and performance triggers read",
    )
    trigger_check_every: int = Field(
        default=10, ge=1, description="The drift and performance triggers are checked every N rows"
    )
    drift_threshold: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Share of drifted PCA columns (the report's test) that triggers a retraining",
    )
    performance_threshold: float = Field(
        default=0.8,
        gt=0,
        le=1,
        description="Accuracy of the newest feedback window below which a retraining is triggered",
    )
    retrain_cooldown_seconds: float = Field(
        default=300,
        ge=0,
        description="After a retraining, the drift and performance triggers wait this long",
    )
    retrain_wait_seconds: float = Field(
        default=60.0,
        ge=0,
        description="How long the k-th /feedback waits for its retraining before answering "
        "(predictions never wait; 0 answers at once)",
    )
    retrain_niceness: int = Field(
        default=10, ge=0, le=19, description="CPU niceness of the retraining process"
    )
    retrain_in_api: bool = Field(
        default=True,
        description="Retrain inside the API (one at a time across workers and, with "
        "DATABASE_URL, across replicas); false: the API only records due retrainings and a "
        "separate worker (python -m mlstack.trainer) runs them",
    )
    trainer_poll_seconds: float = Field(
        default=1.0, gt=0, description="How often the trainer worker looks for due retrainings"
    )
    blas_threads: int = Field(
        default=1,
        ge=1,
        description="Threads numpy's BLAS may use in each worker. One: the workers already "
        "keep the cores busy, and a retrained model with many support vectors is large "
        "enough for BLAS to start threads that fight them for the cores",
    )
    api_token: SecretStr | None = Field(
        default=None, description="If set, /feedback needs `Authorization: Bearer <token>`"
    )
    feedback_rate_per_minute: float = Field(
        default=0,
        ge=0,
        description="Per-source limit on /feedback (the bearer token, else the client's "
        "address), per worker; past it a 429. 0: no limit (the web app is one source for "
        "all its users)",
    )
    feedback_burst: int = Field(
        default=20,
        ge=1,
        description="Feedback requests a source may send at once before the rate applies",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description='Origins allowed to call the API from a browser (["https://..."])',
    )
    allowed_hosts: list[str] = Field(
        default_factory=lambda: ["*"], description="Host headers accepted"
    )
    inline_predict_bytes: int = Field(
        default=64 * 1024,
        ge=0,
        description="Uploads up to this size are predicted on the event loop; larger ones in a "
        "thread, so a big photo never stalls other requests",
    )
    inline_predict_pixels: int = Field(
        default=512 * 512,
        ge=0,
        description="...if their header also declares at most this many pixels: a PNG of a few "
        "KB can hold 40 megapixels, seconds of decoding",
    )
    large_decodes_at_once: int = Field(
        default=2,
        ge=1,
        description="Uploads over INLINE_PREDICT_PIXELS decoding at once in each worker; "
        "the others wait their turn: at the 40-megapixel limit one decode takes about 1 GB",
    )
    max_batch_images: int = Field(
        default=64,
        ge=1,
        description="Images one /predict may take at once (`images`: [...]); more is a 422. "
        "The whole body is capped as one upload is (MAX_UPLOAD_BYTES, in base64)",
    )
    metrics_accuracy_window: int = Field(
        default=100, ge=1, description="Feedback rows in the rolling accuracy of /metrics"
    )
    metrics_path: str = Field(default="/metrics", description="Route that serves the metrics")
    opentelemetry: bool = Field(
        default=False,
        description="FastAPI's own OpenTelemetry spans, metrics and logs, to the providers the "
        "process configures (opentelemetry-sdk, or FASTAPI_OTEL_AUTO_CONFIGURE=true for OTLP). "
        "Off, FastAPI no longer asks on every request whether one is configured",
    )
    # `python -m mlstack.serving` (uvicorn's own options when started by `uvicorn`)
    serving_host: str = Field(default="0.0.0.0", description="Address the API listens on")
    serving_port: int = Field(default=8080, ge=0, le=65535, description="Port of the API")
    serving_workers: int = Field(default=1, ge=1, description="uvicorn worker processes")

    @field_validator("api_token", mode="before")
    @classmethod
    def _empty_token_is_no_token(cls, value: object) -> object:
        return _no_empty_token(value)

    @field_validator("retrain_policy", mode="before")
    @classmethod
    def _policy_list(cls, value: object) -> object:
        # RETRAIN_POLICY=every_k,drift as well as a JSON list.
        if isinstance(value, str):
            text = value.strip()
            value = (
                json.loads(text)
                if text.startswith("[")
                else [part.strip() for part in text.replace("+", ",").split(",") if part.strip()]
            )
        unknown = set(value or []) - {"every_k", "drift", "performance"}
        if unknown or not value:
            raise ValueError(
                f"RETRAIN_POLICY takes any of every_k, drift, performance (got {value!r})"
            )
        return value

    @property
    def max_body_bytes(self) -> int:
        # base64 is 4/3 of the bytes, plus room for the other JSON fields.
        return self.max_upload_bytes * 4 // 3 + 64 * 1024


class ReportingSettings(StackSettings):
    """The Evidently project (reporting/project.py) and the metrics exporter."""

    workspace_dir: Path = Field(
        default=Path(), description="Evidently workspace (default ROOT/reporting/workspace)"
    )
    report_project_name: str = Field(
        default="Deployed classifier", description="Name of the Evidently project"
    )
    report_batch_rows: int = Field(default=100, ge=1, description="Feedback rows per snapshot")
    report_max_batches: int = Field(
        default=60,
        ge=2,
        description="Past this many batches the batch size doubles (and batches are redone), "
        "so the number of snapshots stays bounded",
    )
    report_min_rows: int = Field(
        default=10,
        ge=1,
        description="A batch still filling gets a snapshot once it holds this many rows",
    )
    report_max_new_snapshots: int = Field(
        default=10,
        ge=1,
        description="Snapshots made per run, newest batches first; the rest come next run",
    )
    report_max_reference_rows: int = Field(
        default=5000, ge=100, description="Reference rows used (a fixed random sample beyond it)"
    )
    report_every_seconds: float = Field(
        default=0, ge=0, description="Seconds between runs of `project.py --every`; 0: run once"
    )
    report_drift_share: float = Field(
        default=0.5, gt=0, le=1, description="Share of drifted columns that flags the data set"
    )
    # The metrics exporter (Prometheus figures of the same data)
    exporter_host: str = Field(default="0.0.0.0", description="Address the exporter listens on")
    exporter_port: int = Field(default=9108, ge=0, le=65535, description="Port of its /metrics")
    report_refresh_seconds: float = Field(
        default=30.0, gt=0, description="Seconds between the exporter's checks for new data"
    )
    report_window_rows: int = Field(
        default=0, ge=0, description="Newest production rows the exporter uses; 0 uses them all"
    )
    report_min_drift_rows: int = Field(
        default=5, ge=1, description="Fewer production rows than this: no drift figure"
    )

    @model_validator(mode="before")
    @classmethod
    def _workspace_from_root(cls, values: dict) -> dict:
        root = Path(values.get("project_root") or REPO_ROOT)
        values.setdefault("workspace_dir", root / "reporting" / "workspace")
        return values


@lru_cache
def get_serving_settings() -> ServingSettings:
    return ServingSettings()
