"""Paths and knobs of the model pipeline, read from the environment.

Every path derives from one root (the repository checkout by default), and each
can be overridden on its own: in Docker, DATA_DIR=/data and ARTIFACTS_DIR=/artifacts.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# scripts/mlstack/settings.py -> the repository root
REPO_ROOT = Path(__file__).resolve().parents[2]


class PipelineSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    project_root: Path = Field(default=REPO_ROOT, description="Root every default path hangs from")
    data_dir: Path = Field(
        default=Path(), description="ref_data.csv, prod_data.csv (default ROOT/data)"
    )
    artifacts_dir: Path = Field(
        default=Path(), description="pickles + manifest (default ROOT/artifacts)"
    )
    dataset_dir: Path | None = Field(
        default=None,
        description="A folder of images, one sub-folder per label; unset: scikit-learn's digits",
    )
    n_components: int = Field(default=30, ge=2, description="Size of the PCA embedding")
    holdout_fraction: float = Field(default=0.2, gt=0, lt=1)
    random_state: int = 0
    # Retraining cost grows with rows; past this many, the oldest production rows are left out.
    max_training_rows: int = Field(default=60_000, ge=100)
    # Font-free synthetic digits (drawn strokes, photo/canvas-like renderings) added
    # to the training rows of the default data set, per label; 0 turns them off.
    synthetic_per_label: int = Field(default=200, ge=0)
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    max_image_pixels: int = Field(default=40_000_000, ge=64)

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
