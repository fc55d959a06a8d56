"""The OpenAPI document (/docs, /openapi.json) of the data set actually loaded.

The request models are the same for every data set (`image` or `features`). Once a
model trained on a table is loaded, the document is rewritten to show that table:
`features` gets the training schema's columns (types, categories, training ranges,
which may be null) and the examples become the manifest's example row, so "Try it
out" in /docs sends a real row. An image model's document is left as it is.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from mlstack.tabular import CATEGORY, TableSchema

from .inputs import is_table


def column_schema(column: dict[str, Any]) -> dict[str, Any]:
    if column["type"] == CATEGORY:
        categories = column.get("categories") or []
        shown = ", ".join(map(repr, categories[:30])) + (" ..." if len(categories) > 30 else "")
        out: dict[str, Any] = {
            "type": "string",
            "description": f"A category seen in training: {shown}. Another text is accepted, "
            "encoded as unknown and named in the answer's `unknown_categories`",
            "examples": categories[:5],
        }
    else:
        kind = "integer" if column.get("integer") else "number"
        out = {
            "type": "number",
            "description": f"A number ({kind} in training), training range "
            f"[{column.get('min')}, {column.get('max')}]",
        }
    if column.get("nullable"):
        out = {
            "anyOf": [out, {"type": "null"}],
            "description": out["description"] + "; null: imputed as in training",
        }
    return out


def row_schema(schema: dict[str, Any]) -> dict[str, Any]:
    columns = schema["columns"]
    return {
        "type": "object",
        "title": "Features",
        "description": "One row of the table the model was trained on: every column, no "
        "other (GET /model: manifest.extra.schema)",
        "properties": {c["name"]: column_schema(c) for c in columns},
        "required": [c["name"] for c in columns],
        "additionalProperties": False,
        "examples": [schema["example"]],
    }


def table_document(document: dict[str, Any], extra: dict[str, Any], classes: list) -> dict:
    """`document` rewritten for the table described by a manifest's `extra`."""
    doc = copy.deepcopy(document)
    schema = extra["schema"]
    TableSchema.from_dict(schema)  # a malformed schema fails here, not in a client
    row = row_schema(schema)
    example = schema["example"]
    label = classes[0] if classes else None
    components = doc.get("components", {}).get("schemas", {})
    for name, examples in (
        ("PredictRequest", [{"features": example}]),
        ("FeedbackRequest", [{"features": example, "prediction": label, "target": label}]),
    ):
        model = components.get(name)
        if model is None:
            continue
        model["examples"] = examples
        properties = model.get("properties", {})
        properties["features"] = {**row, "description": row["description"]}
        if "image" in properties:
            properties["image"] = {
                **properties["image"],
                "description": "Image models only: this model takes `features`",
            }
    info = doc.setdefault("info", {})
    info["title"] = f"Table classifier ({extra.get('dataset', 'table')}): serving API"
    names = ", ".join(c["name"] for c in schema["columns"])
    info["description"] = (
        f"Predicts the `{schema['target']}` of one row of a table ({names}) and takes "
        "feedback (the true label); each row is stored embedded (PCA_1..PCA_n) in "
        "prod_data.csv, and every RETRAIN_EVERY_K feedback rows the model is retrained."
        "\n\nExample row:\n\n```json\n" + json.dumps(example) + "\n```"
    )
    return doc


def install(app: FastAPI) -> None:
    """Make app.openapi() describe the loaded data set once the lifespan loaded it."""
    plain: Callable[[], dict[str, Any]] = app.openapi
    cache: dict[int, dict[str, Any]] = {}

    def openapi() -> dict[str, Any]:
        document = plain()
        services = getattr(app.state, "services", None)
        if services is None:
            return document
        model = services.holder.model
        if not is_table(model):
            return document
        # The schema is frozen with the embedding: one document per embedding.
        key = id(model.artifacts.embedding.schema)
        if key not in cache:
            cache.clear()
            cache[key] = table_document(
                document, model.artifacts.manifest.extra, list(model.classes)
            )
        return cache[key]

    app.openapi = openapi  # type: ignore[method-assign]
