"""HTTP client of the serving API, as the web app uses it.

Every call has a timeout and turns each way it can fail into one exception type
with a message a user can read: the API is down or unreachable, it is too slow,
it refused the request (4xx, with the API's own `detail`), or it failed (5xx).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import requests

from mlstack_webapp.labels import Label, parse_label


class ServingError(RuntimeError):
    """A call to the serving API failed; str(error) says why, for the user."""


class ServingUnreachableError(ServingError):
    """Nothing answers at the serving URL (connection refused, DNS, reset)."""


class ServingTimeoutError(ServingError):
    """The serving API did not answer within the timeout."""


class ServingRejectedError(ServingError):
    """The serving API refused the request (4xx); `detail` is its explanation."""

    def __init__(self, message: str, status: int, detail: str) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


class ServingFailedError(ServingError):
    """The serving API failed on its side (5xx) or answered something unexpected."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Prediction:
    prediction: Label
    probabilities: dict[str, float]
    model_version: int
    prediction_id: str | None
    # A table model: {column: value} of the categories never seen in training.
    unknown_categories: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchAnswer:
    """One image of a batch: its prediction, or why it got none (the API's `detail`, or
    the whole request's failure)."""

    prediction: Prediction | None
    error: str | None = None


@dataclass(frozen=True)
class FeedbackResult:
    stored: bool
    rows: int
    retrained: bool
    model_version: int
    # "none", "done", "running" (still training when the API answered) or "failed"
    retraining: str = "none"
    # When a retraining finished: whether its candidate passed the promotion gate and is
    # served now (None: no retraining finished, or an API that does not say).
    promoted: bool | None = None
    candidate_version: int | None = None


@dataclass(frozen=True)
class ModelInfo:
    version: int | None
    classes: list[Label]
    k: int | None
    prod_rows: int | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    # A model trained on a table: its training schema (columns, types, categories,
    # ranges, an example row), from manifest.extra.schema; None for an image model.
    schema: dict[str, Any] | None = None
    # The data set's name (manifest.extra.dataset): "digits", a folder's or a CSV
    # file's name; None from an API that does not say.
    dataset: str | None = None

    @property
    def is_table(self) -> bool:
        return self.schema is not None

    @property
    def is_digits(self) -> bool:
        """The default data set (or one the API does not name): drawn digits fit it."""
        return not self.is_table and self.dataset in (None, "digits")


@dataclass(frozen=True)
class ModelVersion:
    """One entry of GET /model/versions."""

    version: int
    trained_at: str
    reason: str
    rows: dict[str, int]
    metrics: dict[str, Any]
    status: str  # "active" (in use), "accepted" (passed the gate) or "rejected"
    gate: dict[str, Any] | None  # None for the first model

    @property
    def active(self) -> bool:
        return self.status == "active"

    @property
    def rejected(self) -> bool:
        return self.status == "rejected"

    @property
    def gate_reason(self) -> str:
        return str(self.gate.get("reason", "")) if self.gate else ""

    def figure(self, part: str, name: str) -> float | None:
        """A figure of `part` ("holdout": the reference hold-out, or "feedback"),
        e.g. figure("holdout", "f1_macro"); None when the version has none."""
        figures = self.metrics.get(part)
        value = figures.get(name) if isinstance(figures, dict) else None
        return float(value) if isinstance(value, int | float) else None


@dataclass(frozen=True)
class RollbackResult:
    model_version: int
    previous_version: int | None


def _detail(response: requests.Response) -> str:
    """The API's error message: FastAPI's {"detail": ...}, else the body's start."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300] or response.reason or "no details"
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, list):  # FastAPI validation errors: [{"loc": [...], "msg": ...}]
        parts = []
        for item in detail:
            if isinstance(item, dict):
                where = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                parts.append(f"{where}: {item.get('msg', item)}" if where else str(item.get("msg")))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return str(detail)


class ServingClient:
    """The serving API at `base_url` (e.g. http://serving-api:8080)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        token: str | None = None,
        predict_timeout: float | None = None,
        feedback_timeout: float | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.predict_timeout = predict_timeout or timeout
        # A feedback call that triggers retraining may take longer than a prediction.
        self.feedback_timeout = feedback_timeout or timeout
        self.session = session or requests.Session()
        # The API's API_TOKEN: /feedback and /model/rollback need it when the API sets one.
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def _call(
        self,
        method: str,
        path: str,
        *,
        timeout: float,
        json: dict | None = None,
        expect: type = dict,
    ) -> Any:
        url = f"{self.base_url}{path}"
        try:
            response = self.session.request(method, url, json=json, timeout=timeout)
        except requests.Timeout as error:
            raise ServingTimeoutError(
                f"The serving API at {self.base_url} did not answer {method} {path} "
                f"within {timeout:g} s. It may be busy (retraining) or overloaded: try again."
            ) from error
        except requests.ConnectionError as error:
            raise ServingUnreachableError(
                f"The serving API at {self.base_url} is unreachable ({_reason(error)}). "
                "Is it running? Check SERVING_URL."
            ) from error
        except requests.RequestException as error:
            raise ServingUnreachableError(
                f"Could not call the serving API at {self.base_url}: {error}"
            ) from error

        if 400 <= response.status_code < 500:
            detail = _detail(response)
            hint = " Set API_TOKEN for the web app too." if response.status_code == 401 else ""
            raise ServingRejectedError(
                f"The serving API refused {method} {path} ({response.status_code}): {detail}{hint}",
                response.status_code,
                detail,
            )
        if response.status_code >= 500:
            raise ServingFailedError(
                f"The serving API failed on {method} {path} ({response.status_code}): "
                f"{_detail(response)}",
                response.status_code,
            )
        try:
            body = response.json()
        except ValueError as error:
            raise ServingFailedError(
                f"The serving API answered {method} {path} with something that is not JSON.",
                response.status_code,
            ) from error
        if not isinstance(body, expect):
            raise ServingFailedError(
                f"The serving API answered {method} {path} with an unexpected body: {body!r:.200}",
                response.status_code,
            )
        return body

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/health", timeout=self.timeout)

    def model(self) -> ModelInfo:
        body = self._call("GET", "/model", timeout=self.timeout)
        # The manifest may be the body itself or nested under "manifest".
        manifest = body.get("manifest") if isinstance(body.get("manifest"), dict) else body
        classes = body.get("classes", manifest.get("classes")) or []
        version = body.get("model_version", body.get("version", manifest.get("version")))
        try:
            labels = [parse_label(c) for c in classes]
        except TypeError:
            labels = []
        k = body.get("retrain_every_k", body.get("k"))
        rows = body.get("prod_rows")
        extra = manifest.get("extra") if isinstance(manifest.get("extra"), dict) else {}
        schema = extra.get("schema") if extra.get("kind") == "table" else None
        dataset = extra.get("dataset")
        return ModelInfo(
            version=version if isinstance(version, int) else None,
            classes=labels,
            k=k if isinstance(k, int) else None,
            prod_rows=rows if isinstance(rows, int) else None,
            raw=body,
            schema=schema if isinstance(schema, dict) and schema.get("columns") else None,
            dataset=dataset if isinstance(dataset, str) and dataset else None,
        )

    def predict(self, image: bytes | dict[str, Any]) -> Prediction:
        """The label of an image (file bytes) or of a table's row ({column: value})."""
        body = self._call("POST", "/predict", timeout=self.predict_timeout, json=_input(image))
        try:
            return _prediction(body)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ServingFailedError(
                f"Unexpected answer to POST /predict: {body!r:.300}"
            ) from error

    def predict_many(self, images: list[bytes]) -> list[BatchAnswer]:
        """The labels of several images in one request (`images`), in order; a bad image
        gets its own error and the others their predictions. A request refused or
        failed as a whole raises, as `predict` does."""
        payload = {"images": [_b64(image) for image in images]}
        # A batch of large photos takes longer than one image: a second more per image.
        timeout = self.predict_timeout + len(images)
        body = self._call("POST", "/predict", timeout=timeout, json=payload)
        try:
            items = body["predictions"]
            if len(items) != len(images):
                raise ValueError(f"{len(items)} answers for {len(images)} images")
            return [
                BatchAnswer(_prediction(item))
                if item.get("status", 200) == 200
                else BatchAnswer(None, f"{item.get('detail')} ({item['status']})")
                for item in items
            ]
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ServingFailedError(
                f"Unexpected answer to POST /predict: {body!r:.300}"
            ) from error

    def feedback(
        self,
        image: bytes | dict[str, Any],
        prediction: Label,
        target: Label,
        prediction_id: str | None = None,
    ) -> FeedbackResult:
        payload: dict[str, Any] = {**_input(image), "prediction": prediction, "target": target}
        if prediction_id:
            payload["prediction_id"] = prediction_id
        body = self._call("POST", "/feedback", timeout=self.feedback_timeout, json=payload)
        try:
            return FeedbackResult(
                stored=bool(body["stored"]),
                rows=int(body["rows"]),
                retrained=bool(body["retrained"]),
                model_version=int(body["model_version"]),
                retraining=str(body.get("retraining") or ("done" if body["retrained"] else "none")),
                promoted=_optional(body.get("promoted"), bool),
                candidate_version=_optional(body.get("candidate_version"), int),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ServingFailedError(
                f"Unexpected answer to POST /feedback: {body!r:.300}"
            ) from error

    def versions(self) -> list[ModelVersion]:
        """Every version the API keeps, oldest first."""
        body = self._call("GET", "/model/versions", timeout=self.timeout, expect=list)
        try:
            return [
                ModelVersion(
                    version=int(entry["version"]),
                    trained_at=str(entry.get("trained_at") or ""),
                    reason=str(entry.get("reason") or ""),
                    rows={str(k): int(v) for k, v in (entry.get("rows") or {}).items()},
                    metrics=dict(entry.get("metrics") or {}),
                    status=str(entry["status"]),
                    gate=dict(entry["gate"]) if entry.get("gate") else None,
                )
                for entry in body
            ]
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ServingFailedError(
                f"Unexpected answer to GET /model/versions: {body!r:.300}"
            ) from error

    def rollback(self, version: int) -> RollbackResult:
        """Make `version` the one every worker serves (needs the token when the API
        sets one; an unknown version is a 404, a rejected or damaged one a 409)."""
        body = self._call(
            "POST", "/model/rollback", timeout=self.timeout, json={"version": int(version)}
        )
        try:
            return RollbackResult(
                model_version=int(body["model_version"]),
                previous_version=_optional(body.get("previous_version"), int),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ServingFailedError(
                f"Unexpected answer to POST /model/rollback: {body!r:.300}"
            ) from error


def _prediction(body: dict[str, Any]) -> Prediction:
    """A prediction from /predict's fields (a single answer or an item of a batch)."""
    return Prediction(
        prediction=parse_label(body["prediction"]),
        probabilities={str(k): float(v) for k, v in body["probabilities"].items()},
        model_version=int(body["model_version"]),
        prediction_id=body.get("prediction_id"),
        unknown_categories=dict(body.get("unknown_categories") or {}),
    )


def _optional(value: Any, kind: type) -> Any:
    return None if value is None else kind(value)


def _input(value: bytes | dict[str, Any]) -> dict[str, Any]:
    """An image's file bytes as `image`, a table's row as `features`."""
    return {"features": value} if isinstance(value, dict) else {"image": _b64(value)}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _reason(error: requests.ConnectionError) -> str:
    """A short cause of a connection error, without urllib3's object reprs."""
    text = str(error)
    for marker in (
        "Connection refused",
        "Name or service not known",
        "Temporary failure in name resolution",
        "No route to host",
        "Connection reset",
        "Remote end closed connection",
    ):
        if marker in text:
            return marker.lower()
    return "connection failed"
