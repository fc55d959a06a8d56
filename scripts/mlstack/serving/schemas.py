"""Request and response bodies of the serving API (the contract of docs/serving.md)."""

from __future__ import annotations

import os
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
    model_validator,
)

# A label as the data set names it: an integer for digits, a folder name otherwise.
# Strict: `true` or `7.5` are refused rather than read as 1 or 7.
Label = StrictInt | Annotated[StrictStr, StringConstraints(min_length=1, max_length=100)]

# A real sample (a held-out 3 in the data set's own 8x8 format), so that
# "Try it out" in /docs works as it is.
EXAMPLE_IMAGE = (
    "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAAAAADhZOFXAAAAQklEQVR4nC3IQRGAIAAAsJ1nEBtYgQhEIAoNiEIE"
    "IkgDaYAN8KG/3VDWlUCKawF5Rjb0Z3yjzONXbXZCOEOHerfMC4UmEWmxfDdfAAAAAElFTkSuQmCC"
)


# A table's row: {column: number | text | null}. Its columns, types, categories and
# ranges are the training data's (GET /model: manifest.extra.schema, and /docs once a
# table is loaded); they are checked by the API, not here.
Features = dict[str, StrictBool | StrictInt | StrictFloat | StrictStr | None]
FEATURES_DESCRIPTION = (
    "A table model's input: one row, {column: value}, with every column of the training "
    "data (numbers, or text for categories; null only where the training data had "
    "missing values). Send either `image` or `features`, as the loaded model takes."
)


INPUTS = {
    "image": "`image` (base64 of an image file, for an image model)",
    "images": "`images` (a list of them, for several predictions at once)",
    "features": "`features` ({column: value}, for a table model)",
}


def new_prediction_id() -> str:
    """128 random bits as 32 hex digits, the look of a uuid4's hex: os.urandom directly
    costs a fifth of uuid.uuid4(), on every prediction."""
    return os.urandom(16).hex()


class OneInput(BaseModel):
    """`image` for an image model, `features` for a table model (and, where the request
    takes it, `images` for a batch): exactly one."""

    @model_validator(mode="after")
    def _one_input(self) -> OneInput:
        names = [name for name in INPUTS if name in type(self).model_fields]
        given = [name for name in names if getattr(self, name) is not None]
        if len(given) != 1:
            choices = [INPUTS[name] for name in names]
            raise ValueError(
                "send either "
                + ", ".join(choices[:-1])
                + " or "
                + choices[-1]
                + (", only one of them" if given else "")
            )
        return self


class PredictRequest(OneInput):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"image": EXAMPLE_IMAGE}, {"images": [EXAMPLE_IMAGE, EXAMPLE_IMAGE]}]
        },
    )

    image: str | None = Field(
        default=None,
        min_length=1,
        description="The image file's bytes (PNG, JPEG, ...), base64-encoded",
    )
    images: list[str] | None = Field(
        default=None,
        min_length=1,
        description="Several images at once (each as `image`), at most MAX_BATCH_IMAGES; "
        'the answer is `{"predictions": [...]}`, one item per image, in order',
    )
    features: Features | None = Field(default=None, description=FEATURES_DESCRIPTION)


class PredictResponse(BaseModel):
    prediction: Label
    probabilities: dict[str, float] = Field(description="Class -> score; they sum to 1")
    model_version: int
    prediction_id: str = Field(description="Pass it back with /feedback to link the two")
    unknown_categories: dict[str, str] | None = Field(
        default=None,
        description="A table model only, when the row holds categories never seen in "
        "training: {column: value}. They are encoded as unknown (no category) and the "
        "prediction is made all the same; absent otherwise",
    )


class BatchItem(BaseModel):
    """One image of a batch: its prediction (the fields of a single answer), or its error."""

    status: int = Field(description="200, or the 4xx the image alone would have been answered")
    prediction: Label | None = None
    probabilities: dict[str, float] | None = Field(
        default=None, description="Class -> score; they sum to 1"
    )
    model_version: int | None = None
    prediction_id: str | None = Field(
        default=None, description="Pass it back with /feedback (with this image) to link the two"
    )
    detail: str | None = Field(default=None, description="What is wrong with this image")


class BatchPredictResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "predictions": [
                        {
                            "status": 200,
                            "prediction": 3,
                            "probabilities": {"3": 0.97, "8": 0.02, "5": 0.01},
                            "model_version": 1,
                            "prediction_id": "4f1c0d2a9b8e4e0f8a7b6c5d4e3f2a1b",
                        },
                        {"status": 400, "detail": "`image` is not valid base64 (...)"},
                    ]
                }
            ]
        }
    )

    predictions: list[BatchItem] = Field(description="One per image sent, in the same order")


class FeedbackRequest(OneInput):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"image": EXAMPLE_IMAGE, "prediction": 3, "target": 3}]},
    )

    image: str | None = Field(
        default=None, min_length=1, description="The same image as sent to /predict, base64"
    )
    features: Features | None = Field(
        default=None, description="The same row as sent to /predict (a table model)"
    )
    prediction: Label = Field(description="The prediction the user was shown")
    target: Label = Field(description="The true label")
    prediction_id: str | None = Field(
        default=None,
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="The prediction_id /predict answered, if known",
    )


class FeedbackResponse(BaseModel):
    stored: bool
    rows: int = Field(description="Rows in prod_data.csv after this one")
    retrained: bool = Field(description="Whether this row triggered a retraining that finished")
    retraining: str = Field(
        description="'none' (no retraining due), 'done', 'running' (still training after "
        "RETRAIN_WAIT_SECONDS; the new version is served as soon as it is written), "
        "'failed' (the previous model stays; the row is stored) or 'queued' "
        "(RETRAIN_IN_API=false: the trainer worker runs it)"
    )
    model_version: int = Field(description="The version served after this row")
    promoted: bool | None = Field(
        default=None,
        description="When a retraining finished: whether its candidate passed the promotion "
        "gate and is now served (false: rejected, kept for inspection, see /model/versions)",
    )
    candidate_version: int | None = Field(
        default=None, description="The version that retraining wrote"
    )


class HealthResponse(BaseModel):
    status: str = Field(description="'ok': the model is loaded and /predict answers")
    model_version: int
    database: str | None = Field(
        default=None,
        description="With DATABASE_URL: 'ok', or 'down' (/predict still answers from the "
        "model in memory; /feedback answers 503 until the database is back). Absent with "
        "the file backend",
    )


class ModelResponse(BaseModel):
    manifest: dict[str, Any]
    retrain_every_k: int
    prod_rows: int
    retraining: bool = Field(description="A retraining is running in this worker")
    history: list[dict[str, Any]]


class VersionInfo(BaseModel):
    version: int
    trained_at: str
    reason: str
    rows: dict[str, int]
    metrics: dict[str, Any] = Field(description="Figures on the reference and feedback hold-outs")
    status: str = Field(description="'active' (in use), 'accepted' (passed the gate) or 'rejected'")
    gate: dict[str, Any] | None = Field(
        description="The promotion gate's decision: accepted, reason, both models' figures"
    )

    @classmethod
    def from_history(cls, entry: dict[str, Any], active: int | None) -> VersionInfo:
        gate = entry.get("gate")
        rejected = bool(gate) and not gate.get("accepted", True)
        state = "active" if entry["version"] == active else "rejected" if rejected else "accepted"
        return cls(
            **{k: entry[k] for k in ("version", "trained_at", "reason", "rows", "metrics")},
            status=state,
            gate=gate,
        )


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"version": 1}]})

    version: StrictInt = Field(ge=1, description="The version to serve again")


class RollbackResponse(BaseModel):
    model_version: int = Field(description="The version now served")
    previous_version: int | None
