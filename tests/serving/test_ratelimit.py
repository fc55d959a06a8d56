"""The per-source rate limit on /feedback: the bucket's arithmetic, and a real uvicorn
answering 429 with Retry-After to one source while another goes on, writing nothing."""

from __future__ import annotations

import httpx
import pytest
from mlstack.prod_store import ProdDataStore
from mlstack.serving.ratelimit import RateLimiter
from mlstack.settings import PipelineSettings

from tests.support.serving import b64, sample_images

pytestmark = pytest.mark.timeout(120)


def test_bucket_allows_a_burst_then_the_rate() -> None:
    limiter = RateLimiter(per_minute=60, burst=3)  # one a second after three
    assert [limiter.wait_time("a", now=0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.wait_time("a", now=0.0) == pytest.approx(1.0)
    assert limiter.wait_time("b", now=0.0) == 0.0  # another source has its own bucket
    assert limiter.wait_time("a", now=1.0) == 0.0  # refilled by one
    assert limiter.wait_time("a", now=1.5) == pytest.approx(0.5)


def test_feedback_past_the_limit_is_429_and_writes_nothing(
    project: PipelineSettings, serve
) -> None:
    server = serve(project, k=1000, FEEDBACK_RATE_PER_MINUTE="6", FEEDBACK_BURST="3")
    label, data = sample_images(project)[0]
    body = {"image": b64(data), "prediction": label, "target": label}
    first = [httpx.post(f"{server.url}/feedback", json=body).status_code for _ in range(3)]
    assert first == [200, 200, 200]
    refused = httpx.post(f"{server.url}/feedback", json=body)
    assert refused.status_code == 429
    assert "FEEDBACK_RATE_PER_MINUTE" in refused.json()["detail"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 10
    # A made-up token is no other source; another address is; /predict is never limited.
    made_up = httpx.post(
        f"{server.url}/feedback", json=body, headers={"Authorization": "Bearer someone-else"}
    )
    assert made_up.status_code == 429
    elsewhere = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(transport=elsewhere) as other:
        assert other.post(f"{server.url}/feedback", json=body).status_code == 200
    assert httpx.post(f"{server.url}/predict", json={"image": b64(data)}).status_code == 200
    assert ProdDataStore(project.prod_data_path, 30).rows() == 4


def test_no_limit_by_default(project: PipelineSettings, serve) -> None:
    server = serve(project, k=1000)
    label, data = sample_images(project)[0]
    body = {"image": b64(data), "prediction": label, "target": label}
    codes = {httpx.post(f"{server.url}/feedback", json=body).status_code for _ in range(40)}
    assert codes == {200}
