"""Settings of the web app (environment variables) and the sample images it offers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# webapp/webapp_config.py -> the repository root (/app in the image)
REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_SUFFIXES = (".png", ".jpg", ".jpeg")


class WebappSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    serving_url: str = Field(
        default="http://127.0.0.1:8080",
        description="Base URL of the serving API (http://serving-api:8080 in Docker)",
    )
    samples_dir: Path = Field(
        default=REPO_ROOT / "data" / "samples",
        description="Sample images <label>_<row>.png a user can pick (/samples in Docker)",
    )
    request_timeout: float = Field(
        default=10.0, gt=0, description="Seconds to wait for /predict, /model, /health"
    )
    # A feedback that completes k rows retrains the model before it answers.
    feedback_timeout: float = Field(default=120.0, gt=0, description="Seconds for /feedback")
    max_upload_mb: int = Field(default=10, ge=1, description="Largest upload the page accepts")
    api_token: SecretStr | None = Field(
        default=None, description="The serving API's API_TOKEN, when it sets one"
    )

    @field_validator("api_token", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value in ("", None) else value


@dataclass(frozen=True)
class Sample:
    path: Path
    label: int | str

    @property
    def title(self) -> str:
        return f"{self.label}  ({self.path.name})"


def _label(text: str) -> int | str:
    return int(text) if re.fullmatch(r"-?\d+", text) else text


def list_samples(folder: Path) -> list[Sample]:
    """The images in `folder` named <label>_<row>.<ext>, ordered by label then row.
    A missing folder gives no samples (the page says so)."""
    if not folder.is_dir():
        return []
    samples = []
    for path in folder.iterdir():
        if not path.is_file() or path.suffix.lower() not in SAMPLE_SUFFIXES:
            continue
        label, sep, _row = path.stem.rpartition("_")
        samples.append(Sample(path, _label(label if sep else path.stem)))
    return sorted(samples, key=lambda s: (isinstance(s.label, str), s.label, s.path.name))
