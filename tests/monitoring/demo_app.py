"""A small FastAPI app wired like the serving API, to test mlstack.serving.metrics on
its own. Start it as `uvicorn tests.monitoring.demo_app:app` from the checkout's root.
"""

from __future__ import annotations

import os

from fastapi import FastAPI, HTTPException
from mlstack.serving import metrics
from pydantic import BaseModel

app = FastAPI()
if os.environ.get("DEMO_INSTRUMENT", "1") == "1":  # 0: the benchmark's baseline
    metrics.instrument(app)
metrics.set_model_version(int(os.environ.get("DEMO_MODEL_VERSION", "1")))


class Item(BaseModel):
    label: int


class Feedback(BaseModel):
    prediction: int
    target: int
    rows: int | None = None


@app.get("/health")
def health() -> dict:
    return {"status": "ok", "pid": os.getpid()}


@app.post("/predict")
def predict(item: Item) -> dict:
    metrics.observe_prediction(item.label)
    return {"prediction": item.label, "pid": os.getpid()}


@app.post("/feedback")
def feedback(body: Feedback) -> dict:
    metrics.observe_feedback(body.prediction == body.target, rows=body.rows)
    return {"stored": True, "pid": os.getpid()}


@app.post("/retrain/{version}")
def retrain(version: int) -> dict:
    metrics.observe_retrain(0.3, version)
    metrics.observe_gate(accepted=True)
    return {"model_version": version, "pid": os.getpid()}


@app.get("/items/{item_id}")
def item(item_id: int) -> dict:
    if item_id < 0:
        raise HTTPException(status_code=404, detail="no such item")
    return {"item": item_id}


@app.get("/boom")
def boom() -> dict:
    raise RuntimeError("failure on purpose")
