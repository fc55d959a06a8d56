"""The serving API (FastAPI): `mlstack.serving.app:app`, or `create_app(settings)`.

Layout: app.py (factory and lifespan), holder.py (the model in memory), retrainer.py
(retraining off the request path), services.py (what a request needs), deps.py,
inputs.py, limits.py, schemas.py, routers/ (one per route group), metrics/ (Prometheus).
"""
