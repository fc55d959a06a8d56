"""Settings of the web app, read from the environment."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def checkout_root(cwd: Path | None = None) -> Path:
    """Where a checkout's data/ folder is: the working directory (`streamlit run
    webapp/api.py` from the checkout), or its parent when that is the web app's own
    folder (`cd webapp && streamlit run api.py`). Never the package's location: an
    installed copy lives in site-packages."""
    cwd = Path.cwd() if cwd is None else cwd
    return cwd.parent if (cwd / "mlstack_webapp").is_dir() else cwd


class WebappSettings(BaseSettings):
    """The web app's settings, by the stack's naming rule: a field's environment
    variable is its name in capitals, with no prefix (SERVING_URL, SAMPLES_DIR, ...).

    The web app keeps its own class instead of sharing mlstack's settings: its image
    carries no model code (no mlstack package, no scikit-learn), only the page and its
    HTTP client.
    """

    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    serving_url: str = Field(
        default="http://127.0.0.1:8080",
        description="Base URL of the serving API (http://serving-api:8080 in Docker)",
    )
    samples_dir: Path = Field(
        default_factory=lambda: checkout_root() / "data" / "samples",
        description="Sample images <label>_<row>.png a user can pick (/samples in Docker)",
    )
    request_timeout: float = Field(
        default=10.0, gt=0, description="Seconds to wait for /predict, /model, /health"
    )
    # A feedback that completes k rows retrains the model before it answers.
    feedback_timeout: float = Field(default=120.0, gt=0, description="Seconds for /feedback")
    max_upload_mb: int = Field(default=10, ge=1, description="Largest upload the page accepts")
    batch_images: int = Field(
        default=32,
        ge=1,
        description="Images per /predict request on the Batch page (at most the API's "
        "MAX_BATCH_IMAGES); a request also stays under MAX_UPLOAD_MB in all",
    )
    api_token: SecretStr | None = Field(
        default=None, description="The serving API's API_TOKEN, when it sets one"
    )

    @field_validator("api_token", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value in ("", None) else value
