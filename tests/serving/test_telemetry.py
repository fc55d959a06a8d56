"""FastAPI's own OpenTelemetry runs only when OPENTELEMETRY asks for it."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from mlstack.serving.app import create_app
from mlstack.settings import PipelineSettings, ServingSettings
from opentelemetry import trace


class RecordingTracerProvider(trace.TracerProvider):
    """A configured provider (neither OpenTelemetry's default proxy nor its no-op one,
    which FastAPI skips) that notes each tracer it is asked for."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def get_tracer(self, instrumenting_module_name: str, *args, **kwargs) -> trace.Tracer:
        self.asked.append(instrumenting_module_name)
        return trace.NoOpTracer()


@pytest.mark.parametrize("on", [False, True])
def test_fastapi_traces_requests_only_when_asked(
    project: PipelineSettings, monkeypatch: pytest.MonkeyPatch, on: bool
) -> None:
    provider = RecordingTracerProvider()
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    settings = ServingSettings(project_root=project.project_root, opentelemetry=on)
    with TestClient(create_app(settings)) as client:
        assert client.get("/health").status_code == 200
    assert ("fastapi" in provider.asked) is on, provider.asked
