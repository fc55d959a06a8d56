"""Settings of the serving API, read from the environment (one typed object).

The paths and model knobs come from the pipeline's own settings (DATA_DIR,
ARTIFACTS_DIR, ...), so the API and the scripts always agree on where things are.
"""

from __future__ import annotations

from functools import lru_cache

from mlstack.settings import PipelineSettings
from pydantic import Field, SecretStr, field_validator


class ServingSettings(PipelineSettings):
    retrain_every_k: int = Field(
        default=10, ge=1, description="Retrain after every k feedback rows (RETRAIN_EVERY_K)"
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
    blas_threads: int = Field(
        default=1,
        ge=1,
        description="Threads numpy's BLAS may use in each worker (BLAS_THREADS). One: the "
        "workers already keep the cores busy, and a retrained model with many support "
        "vectors is large enough for BLAS to start threads that fight them for the cores",
    )
    api_token: SecretStr | None = Field(
        default=None,
        description="If set (API_TOKEN), /feedback needs `Authorization: Bearer <token>`",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description='Origins allowed to call the API from a browser (CORS_ORIGINS=["https://..."])',
    )
    allowed_hosts: list[str] = Field(
        default_factory=lambda: ["*"], description="Host headers accepted (ALLOWED_HOSTS)"
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

    @field_validator("api_token", mode="before")
    @classmethod
    def _empty_token_is_no_token(cls, value: object) -> object:
        # Compose passes `API_TOKEN: ${API_TOKEN:-}`: an empty value means no token.
        return None if value == "" else value

    @property
    def max_body_bytes(self) -> int:
        # base64 is 4/3 of the bytes, plus room for the other JSON fields.
        return self.max_upload_bytes * 4 // 3 + 64 * 1024


@lru_cache
def get_settings() -> ServingSettings:
    return ServingSettings()
