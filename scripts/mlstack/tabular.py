"""A table as the data set: one CSV, one row per example, one column the label.

The embedding of a table is its preprocessing followed by a PCA, fitted once on the
training split and then frozen, as the images' is:

- numeric columns: missing values imputed with the training median, then scaled
  (standard score);
- text (categorical) columns: missing values imputed with the most frequent
  category, then one-hot encoded; a category never seen in training encodes as all
  zeros (`handle_unknown="ignore"`) and is reported back to the caller;
- then a PCA to `PCA_1..PCA_n` (n at most the number of encoded features).

One code path (`TableEmbedding.transform_frame`) embeds the training rows
(ref_data.csv), a row sent to /predict and a row sent to /feedback (prod_data.csv).
The schema of the training data (columns, types, categories, ranges, an example
row) travels with the embedding and in the manifest; a row is checked against it
(`TableSchema.check_row`) before it is embedded.

Missing values in a request (`null`): accepted, and imputed, for the columns in which
the training data had missing values; refused for the others (`nullable` false in
the schema), since the model never saw an imputed value there and a null there is
more likely a client's mistake than a real unknown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from .labels import parse_label

NUMBER = "number"
CATEGORY = "category"
# A column of numbers with this few distinct values or fewer still counts as numbers;
# a column is categorical only when it holds text (or booleans).
MAX_CATEGORIES = 1000
# How the report names a category it cannot tell (one never seen in training).
UNKNOWN_CATEGORY = "(unknown)"


class TableError(ValueError):
    """The CSV cannot serve as a data set (missing file, no target column, ...)."""


class RowError(ValueError):
    """A row that does not fit the training schema; `column` names the culprit."""

    def __init__(self, column: str | None, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.column = column
        self.message = message
        self.status = status


@dataclass
class ColumnSpec:
    name: str
    type: str  # NUMBER or CATEGORY
    nullable: bool  # the training data had missing values here: a null is imputed
    categories: list[str] = field(default_factory=list)  # CATEGORY only
    min: float | None = None  # NUMBER only: the training range
    max: float | None = None
    integer: bool = False  # NUMBER only: every training value was a whole number

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "nullable": self.nullable}
        if self.type == CATEGORY:
            out["categories"] = self.categories
        else:
            out.update(min=self.min, max=self.max, integer=self.integer)
        return out


@dataclass
class TableSchema:
    columns: list[ColumnSpec]
    target: str
    example: dict[str, Any]  # one training row, as a client would send it

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def numeric(self) -> list[str]:
        return [c.name for c in self.columns if c.type == NUMBER]

    @property
    def categorical(self) -> list[str]:
        return [c.name for c in self.columns if c.type == CATEGORY]

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "columns": [c.to_dict() for c in self.columns],
            "example": self.example,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TableSchema:
        return cls(
            columns=[ColumnSpec(**c) for c in data["columns"]],
            target=data["target"],
            example=data["example"],
        )

    @classmethod
    def infer(cls, features: pd.DataFrame, target: str) -> TableSchema:
        specs = []
        for name in features.columns:
            values = features[name]
            nullable = bool(values.isna().any())
            if is_numeric(values):
                present = values.dropna().astype(float)
                specs.append(
                    ColumnSpec(
                        name=str(name),
                        type=NUMBER,
                        nullable=nullable,
                        min=float(present.min()) if len(present) else None,
                        max=float(present.max()) if len(present) else None,
                        integer=bool(len(present) and (present == present.round()).all()),
                    )
                )
            else:
                categories = sorted(values.dropna().astype(str).unique().tolist())
                if len(categories) > MAX_CATEGORIES:
                    raise TableError(
                        f"column {name!r} holds {len(categories)} distinct texts: too many "
                        f"categories (at most {MAX_CATEGORIES}); drop it or turn it into numbers"
                    )
                specs.append(ColumnSpec(str(name), CATEGORY, nullable, categories))
        schema = cls(specs, target, {})
        complete = features.dropna()
        row = complete.iloc[0] if len(complete) else features.iloc[0]
        schema.example = {spec.name: _json_value(row[spec.name], spec) for spec in specs}
        return schema

    # -- checking one row ---------------------------------------------------------------
    def check_row(self, row: Any) -> tuple[dict[str, Any], dict[str, str]]:
        """A request's `features` checked against the schema: (the row with numbers
        as floats and nulls as NaN/None, {column: category never seen in training}).
        Raises RowError naming the column on a missing, extra or mistyped value."""
        if not isinstance(row, dict):
            raise RowError(None, "`features` must be an object: {column: value, ...}")
        extra = [name for name in row if name not in self._by_name]
        if extra:
            raise RowError(
                extra[0],
                f"`features`: unknown column {extra[0]!r}; the columns are {self.names}",
            )
        missing = [name for name in self.names if name not in row]
        if missing:
            raise RowError(
                missing[0],
                f"`features`: missing column {missing[0]!r}"
                + (f" (and {len(missing) - 1} more: {missing[1:]})" if len(missing) > 1 else ""),
            )
        clean: dict[str, Any] = {}
        unknown: dict[str, str] = {}
        for spec in self.columns:
            value = row[spec.name]
            where = f"`features.{spec.name}`"
            if value is None:
                if not spec.nullable:
                    raise RowError(
                        spec.name,
                        f"{where}: a value is required (the training data had no missing "
                        "value in this column, so nothing is imputed here)",
                    )
                clean[spec.name] = np.nan if spec.type == NUMBER else None
            elif spec.type == NUMBER:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise RowError(
                        spec.name, f"{where}: expected a number, got {type(value).__name__}"
                    )
                if not math.isfinite(value):
                    raise RowError(spec.name, f"{where}: expected a finite number")
                clean[spec.name] = float(value)
            else:
                if not isinstance(value, str):
                    raise RowError(
                        spec.name,
                        f"{where}: expected a category (text, one of {spec.categories[:20]}), "
                        f"got {type(value).__name__}",
                    )
                if value not in spec.categories:
                    unknown[spec.name] = value
                clean[spec.name] = value
        return clean, unknown

    @property
    def _by_name(self) -> dict[str, ColumnSpec]:
        return {c.name: c for c in self.columns}


def is_numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _json_value(value: Any, spec: ColumnSpec) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)) or pd.isna(value):
        return None
    if spec.type == CATEGORY:
        return str(value)
    number = float(value)
    return int(number) if spec.integer else number


def _categorical_pipeline() -> Pipeline:
    return Pipeline(
        [
            ("impute", SimpleImputer(strategy="most_frequent")),
            (
                "onehot",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype=np.float64),
            ),
        ]
    )


def _numeric_pipeline() -> Pipeline:
    return Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("scale", StandardScaler()),
        ]
    )


@dataclass
class TableEmbedding:
    """Preprocessing (ColumnTransformer) + PCA: a table row -> PCA_1..PCA_n."""

    schema: TableSchema
    preprocess: ColumnTransformer
    pca: PCA
    kind: str = "table"

    @classmethod
    def fit(
        cls, features: pd.DataFrame, schema: TableSchema, n_components: int, seed: int = 0
    ) -> TableEmbedding:
        parts = []
        if schema.numeric:
            parts.append(("numeric", _numeric_pipeline(), schema.numeric))
        if schema.categorical:
            parts.append(("categorical", _categorical_pipeline(), schema.categorical))
        preprocess = ColumnTransformer(parts, remainder="drop", verbose_feature_names_out=True)
        frame = as_frame(features, schema)
        encoded = preprocess.fit_transform(frame)
        # Capped at the number of encoded features (and of rows).
        n = min(n_components, encoded.shape[1], encoded.shape[0])
        pca = PCA(n_components=n, random_state=seed).fit(encoded)
        return cls(schema, preprocess, pca)

    @property
    def n_components(self) -> int:
        return int(self.pca.n_components_)

    @property
    def n_features(self) -> int:
        """Encoded features (numbers + one-hot columns) before the PCA."""
        return int(self.pca.n_features_in_)

    @property
    def columns(self) -> list[str]:
        from .embedding import feature_columns

        return feature_columns(self.n_components)

    @property
    def explained_variance_ratio(self) -> np.ndarray:
        return self.pca.explained_variance_ratio_

    def transform_frame(self, features: pd.DataFrame) -> np.ndarray:
        """Rows (the schema's columns) -> (n, n_components) vectors: the one code path
        of ref_data.csv, /predict and /feedback."""
        frame = as_frame(features, self.schema)
        numbers = frame[self.schema.numeric].to_numpy(dtype=np.float64)
        texts = frame[self.schema.categorical].to_numpy(dtype=object)
        return self._encode(numbers, texts)

    def embed_row(self, row: Any) -> tuple[np.ndarray, dict[str, str]]:
        """A request's `features` -> (one vector, unknown categories); RowError if it
        does not fit the schema."""
        clean, unknown = self.schema.check_row(row)
        numbers = np.array([[clean[name] for name in self.schema.numeric]], dtype=np.float64)
        texts = np.array([[clean[name] for name in self.schema.categorical]], dtype=object)
        return self._encode(numbers, texts)[0], unknown

    def preprocess_reference(self, features: pd.DataFrame) -> np.ndarray:
        """scikit-learn's own transform of the fitted ColumnTransformer, before the PCA:
        what `_encode` computes with plain arrays (the tests hold them equal)."""
        return np.asarray(self.preprocess.transform(as_frame(features, self.schema)), float)

    def _encode(self, numbers: np.ndarray, texts: np.ndarray) -> np.ndarray:
        """The fitted preprocessing and PCA with plain numpy: for one row, scikit-learn's
        per-call checks (a DataFrame, a ColumnTransformer, two Pipelines) cost about
        10 ms; these arrays cost tens of microseconds and give the same numbers."""
        fitted = self._fitted()
        parts = []
        if numbers.shape[1]:
            numbers = np.where(np.isnan(numbers), fitted["medians"], numbers)
            parts.append((numbers - fitted["mean"]) / fitted["scale"])
        if texts.shape[1]:
            onehot = np.zeros((len(texts), fitted["width"]))
            for j, (index, fill, offset) in enumerate(fitted["categories"]):
                for i, value in enumerate(texts[:, j]):
                    if _missing(value):
                        value = fill
                    position = index.get(str(value))
                    if position is not None:  # an unknown category: all zeros
                        onehot[i, offset + position] = 1.0
            parts.append(onehot)
        encoded = np.hstack(parts) if len(parts) > 1 else parts[0]
        return (encoded - self.pca.mean_) @ self.pca.components_.T

    def columns_back(self, vectors: np.ndarray) -> pd.DataFrame:
        """PCA vectors -> the table's own columns, for the report's drift of the raw
        columns (prod_data.csv keeps the brief's layout: vectors only). Numbers come back
        on their own scale, a category as the one its one-hot block points to most, or
        UNKNOWN_CATEGORY when the block is near zero (a category unseen in training).
        Exact but for imputed values when the PCA keeps every encoded feature (the
        default for tables of up to N_COMPONENTS encoded features), an approximation
        otherwise."""
        fitted = self._fitted()
        encoded = np.asarray(vectors, dtype=np.float64) @ self.pca.components_ + self.pca.mean_
        out: dict[str, Any] = {}
        numeric = self.schema.numeric
        if numeric:
            numbers = encoded[:, : len(numeric)] * fitted["scale"] + fitted["mean"]
            out.update({name: numbers[:, j] for j, name in enumerate(numeric)})
        for name, (index, _fill, offset) in zip(
            self.schema.categorical, fitted.get("categories", []), strict=True
        ):
            block = encoded[:, len(numeric) + offset : len(numeric) + offset + len(index)]
            known = np.array(list(index), dtype=object)  # position order
            out[name] = np.where(
                block.max(axis=1) >= 0.5, known[block.argmax(axis=1)], UNKNOWN_CATEGORY
            )
        return pd.DataFrame(out, columns=self.schema.names)

    def _fitted(self) -> dict[str, Any]:
        """The fitted numbers of the ColumnTransformer, read once per process."""
        fitted = self.__dict__.get("_fitted_arrays")
        if fitted is not None:
            return fitted
        fitted = {}
        steps = dict(self.preprocess.named_transformers_)
        if self.schema.numeric:
            numeric = steps["numeric"]
            scale = numeric.named_steps["scale"]
            fitted.update(
                medians=numeric.named_steps["impute"].statistics_.astype(np.float64),
                mean=scale.mean_,
                scale=scale.scale_,
            )
        if self.schema.categorical:
            categorical = steps["categorical"]
            fills = categorical.named_steps["impute"].statistics_
            offset, specs = 0, []
            for fill, known in zip(
                fills, categorical.named_steps["onehot"].categories_, strict=True
            ):
                specs.append(({str(c): k for k, c in enumerate(known)}, fill, offset))
                offset += len(known)
            fitted.update(categories=specs, width=offset)
        self.__dict__["_fitted_arrays"] = fitted
        return fitted

    def __getstate__(self) -> dict[str, Any]:
        # The arrays are derived from the ColumnTransformer: never pickled.
        return {k: v for k, v in self.__dict__.items() if k != "_fitted_arrays"}


def as_frame(features: pd.DataFrame, schema: TableSchema) -> pd.DataFrame:
    """The schema's columns in order, numbers as floats and categories as text (NaN
    where missing), whatever types pandas guessed when it read the CSV."""
    out = {}
    for spec in schema.columns:
        values = features[spec.name]
        if spec.type == NUMBER:
            out[spec.name] = pd.to_numeric(values, errors="coerce").astype(np.float64)
        else:
            out[spec.name] = values.map(lambda v: np.nan if _missing(v) else str(v)).astype(object)
    return pd.DataFrame(out, index=features.index)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


@dataclass
class TableDataset:
    name: str
    features: pd.DataFrame
    labels: np.ndarray
    schema: TableSchema

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def classes(self) -> list:
        return sorted(set(self.labels.tolist()))


def parse_labels(values: pd.Series, column: str) -> np.ndarray:
    """The target column as labels: integers stay integers, other text stays text; a
    column mixing both is kept as text."""
    try:
        labels = [parse_label(v) for v in values]
    except TypeError as exc:
        raise TableError(f"target column {column!r}: {exc}") from None
    if len({type(label) for label in labels}) > 1:
        labels = [str(label) for label in labels]
    return np.array(labels)


def load_table(path: Path, target: str) -> TableDataset:
    """DATASET_CSV as a data set: every column but TARGET_COLUMN is a feature; rows
    with no target are left out."""
    path = Path(path)
    if not path.is_file():
        raise TableError(f"DATASET_CSV {path} is not a file")
    frame = pd.read_csv(path)
    if target not in frame.columns:
        raise TableError(
            f"{path} has no column {target!r} (TARGET_COLUMN); its columns are "
            f"{list(frame.columns)}"
        )
    frame = frame[frame[target].notna()].reset_index(drop=True)
    features = frame.drop(columns=[target])
    if features.shape[1] == 0:
        raise TableError(f"{path} has no feature column besides {target!r}")
    for name in features.columns:
        if pd.api.types.is_bool_dtype(features[name]):
            features[name] = features[name].astype(str)
    labels = parse_labels(frame[target], target)
    counts = pd.Series(labels).value_counts()
    if len(counts) < 2:
        raise TableError(f"{path}: the target column {target!r} holds fewer than two labels")
    if counts.min() < 2:
        raise TableError(
            f"{path}: label {counts.idxmin()!r} has a single row; every label needs two "
            "or more (one to train on, one to hold out)"
        )
    schema = TableSchema.infer(features, target)
    return TableDataset(path.stem, features, labels, schema)
