"""Property-based fuzzing of the API from its own OpenAPI document (schemathesis):
requests that fit the schema and requests that break it, against a real uvicorn,
with and without API_TOKEN. No answer may be a 5xx, a schema-invalid request must
be refused with a 4xx, and every status and content type must be a documented one.

Two of schemathesis's checks are left out on purpose: `positive_data_acceptance`
(a string that fits the schema is rarely an image, so a 4xx is right) and
`response_schema_conformance` (the API's own 4xx messages carry `detail` as a
string, where FastAPI documents a list for 422: see docs/reliability.md)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from mlstack.artifacts import ArtifactStore
from mlstack.serving.app import app
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    status_code_conformance,
)

from tests.reliability.conftest import (
    TOKEN,
    copy_project,
    malformed_rows,
    record_figures,
    start_server,
)
from tests.support.servers import UvicornServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

MAX_EXAMPLES = 50
CHECKS = [
    not_a_server_error,
    negative_data_rejection,
    status_code_conformance,
    content_type_conformance,
]

schema = schemathesis.openapi.from_dict(app.openapi())
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
    max_examples=MAX_EXAMPLES,
    deterministic=True,
)
STATUSES: dict[str, Counter] = {}


@pytest.fixture(scope="module", params=["no token", "API_TOKEN set"])
def target(
    request: pytest.FixtureRequest, trained_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[UvicornServer, dict[str, str], str]]:
    """(server, headers to send, name); prod_data.csv is checked when it stops."""
    settings_ = copy_project(trained_root, tmp_path_factory.mktemp("fuzz") / "project")
    token = request.param != "no token"
    env = {"API_TOKEN": TOKEN} if token else {}
    server = start_server(settings_, settings_.project_root.parent / "fuzz.log", k=1000, **env)
    headers = {"Authorization": f"Bearer {TOKEN}"} if token else {}
    STATUSES[request.param] = Counter()
    try:
        yield server, headers, request.param
        # Whatever came in, what was written is whole rows of known labels.
        labels = {str(c) for c in ArtifactStore(settings_.artifacts_dir).manifest().classes}
        assert malformed_rows(settings_.prod_data_path, labels) == []
        assert "Traceback" not in server.log(), server.log()
    finally:
        server.kill()
    record_figures(
        f"fuzz-{request.param.replace(' ', '-').lower()}",
        {
            "requests": sum(STATUSES[request.param].values()),
            "by_status": dict(sorted(STATUSES[request.param].items())),
            "server_errors": sum(n for s, n in STATUSES[request.param].items() if s >= 500),
            "max_examples_per_operation_and_phase": MAX_EXAMPLES,
        },
    )


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_generated_requests_never_get_a_server_error(case, target) -> None:
    server, headers, name = target
    response = case.call(base_url=server.url, headers=headers, timeout=60)
    STATUSES[name][response.status_code] += 1
    case.validate_response(response, checks=CHECKS, headers=headers)
