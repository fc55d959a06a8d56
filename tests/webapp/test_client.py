"""The HTTP client against a real HTTP server: what it sends, what it returns, and
the error it raises for each way a call can fail."""

from __future__ import annotations

import base64

import pytest
from mlstack_webapp.client import (
    ServingClient,
    ServingFailedError,
    ServingRejectedError,
    ServingTimeoutError,
    ServingUnreachableError,
)

from tests.webapp.conftest import digit_png
from tests.webapp.contract_server import ContractServer, Override, version_entry


def test_predict_sends_the_file_bytes_as_base64_and_reads_the_answer(
    contract: ContractServer,
) -> None:
    image = digit_png()
    result = ServingClient(contract.url).predict(image)
    method, path, body = contract.requests[-1]
    assert (method, path) == ("POST", "/predict")
    assert base64.b64decode(body["image"]) == image
    assert result.prediction == contract.prediction
    assert result.model_version == contract.version
    assert set(result.probabilities) == {str(c) for c in contract.classes}
    assert max(result.probabilities, key=result.probabilities.get) == str(contract.prediction)
    assert result.prediction_id


def test_feedback_sends_prediction_target_and_id(contract: ContractServer) -> None:
    client = ServingClient(contract.url)
    first = client.feedback(b"img", 3, 5, "abc")
    body = contract.requests[-1][2]
    assert body == {
        "image": base64.b64encode(b"img").decode(),
        "prediction": 3,
        "target": 5,
        "prediction_id": "abc",
    }
    assert (first.stored, first.rows, first.retrained, first.retraining) == (True, 1, False, "none")
    assert first.model_version == 1
    second = client.feedback(b"img", 3, 5)
    assert "prediction_id" not in contract.requests[-1][2]
    assert (second.rows, second.retrained, second.retraining, second.model_version) == (
        2,
        True,
        "done",
        2,
    )


def test_model_reads_classes_from_the_manifest_or_the_body(contract: ContractServer) -> None:
    contract.classes = ["cat", "dog"]
    info = ServingClient(contract.url).model()
    assert (info.classes, info.version, info.k, info.prod_rows) == (["cat", "dog"], 1, 2, 0)
    contract.overrides["/model"] = Override(body={"version": 4, "classes": [0, 1, 2], "k": 10})
    info = ServingClient(contract.url).model()
    assert (info.classes, info.version, info.k) == ([0, 1, 2], 4, 10)


def test_the_token_is_sent_when_the_api_needs_one(contract: ContractServer) -> None:
    contract.token = "s3cret"
    with pytest.raises(ServingRejectedError, match="Set API_TOKEN") as caught:
        ServingClient(contract.url).feedback(b"x", 1, 2)
    assert caught.value.status == 401
    assert ServingClient(contract.url, token="s3cret").feedback(b"x", 1, 2).stored


def test_nothing_listening_is_reported_as_unreachable(dead_url: str) -> None:
    with pytest.raises(ServingUnreachableError) as caught:
        ServingClient(dead_url, timeout=2).predict(b"x")
    message = str(caught.value)
    assert dead_url in message
    assert "unreachable" in message
    assert "SERVING_URL" in message


def test_unknown_host_is_reported_as_unreachable() -> None:
    with pytest.raises(ServingUnreachableError, match="unreachable"):
        ServingClient("http://no-such-host.invalid:8080", timeout=2).health()


def test_a_slow_api_times_out_with_a_message(contract: ContractServer) -> None:
    contract.overrides["/predict"] = Override(delay=1.5)
    with pytest.raises(ServingTimeoutError, match=r"did not answer POST /predict within 0.3 s"):
        ServingClient(contract.url, timeout=0.3).predict(b"x")


def test_a_4xx_carries_the_api_detail(contract: ContractServer) -> None:
    contract.overrides["/predict"] = Override(422, {"detail": "image: not a PNG or JPEG file"})
    with pytest.raises(ServingRejectedError) as caught:
        ServingClient(contract.url).predict(b"x")
    assert caught.value.status == 422
    assert caught.value.detail == "image: not a PNG or JPEG file"
    assert "422" in str(caught.value)
    assert "not a PNG or JPEG file" in str(caught.value)


def test_fastapi_validation_errors_are_summarised(contract: ContractServer) -> None:
    contract.overrides["/feedback"] = Override(
        422,
        {"detail": [{"loc": ["body", "target"], "msg": "Field required", "type": "missing"}]},
    )
    with pytest.raises(ServingRejectedError) as caught:
        ServingClient(contract.url).feedback(b"x", 1, 2)
    assert caught.value.detail == "target: Field required"


def test_a_5xx_is_a_failure_of_the_api(contract: ContractServer) -> None:
    contract.overrides["/feedback"] = Override(503, {"detail": "model is reloading"})
    with pytest.raises(ServingFailedError) as caught:
        ServingClient(contract.url).feedback(b"x", 1, 2)
    assert caught.value.status == 503
    assert "model is reloading" in str(caught.value)


@pytest.mark.parametrize("body", [b"<html>proxy error</html>", [1, 2], {"prediction": 3}], ids=str)
def test_an_unexpected_answer_is_a_failure_not_a_crash(
    contract: ContractServer, body: object
) -> None:
    contract.overrides["/predict"] = Override(200, body)
    with pytest.raises(ServingFailedError):
        ServingClient(contract.url).predict(b"x")


def test_feedback_says_whether_its_retraining_went_live(contract: ContractServer) -> None:
    contract.k = 1
    client = ServingClient(contract.url)
    live = client.feedback(b"img", 3, 5)
    assert (live.retrained, live.promoted, live.candidate_version, live.model_version) == (
        True,
        True,
        2,
        2,
    )
    contract.gate_rejects = True
    kept = client.feedback(b"img", 3, 5)
    assert (kept.retrained, kept.promoted, kept.candidate_version, kept.model_version) == (
        True,
        False,
        3,
        2,
    )
    contract.k = 10
    plain = client.feedback(b"img", 3, 5)
    assert (plain.promoted, plain.candidate_version) == (None, None)


def test_versions_are_read_oldest_first(contract: ContractServer) -> None:
    contract.history += [
        version_entry(2, feedback_f1=0.9),
        version_entry(3, accepted=False, f1=0.5, gate_reason="below the floor"),
    ]
    contract.version = 2
    first, second, third = ServingClient(contract.url).versions()
    assert [v.version for v in (first, second, third)] == [1, 2, 3]
    assert [v.status for v in (first, second, third)] == ["accepted", "active", "rejected"]
    assert (first.gate, first.gate_reason, first.reason) == (None, "", "bootstrap")
    assert second.active
    assert not second.rejected
    assert second.figure("holdout", "f1_macro") == 0.95
    assert second.figure("feedback", "f1_macro") == 0.9
    assert first.figure("feedback", "f1_macro") is None
    assert third.rejected
    assert third.gate_reason == "below the floor"
    assert third.rows["total"] == 1437


@pytest.mark.parametrize("body", [{"versions": []}, [{"version": 1}], "text"], ids=str)
def test_an_unexpected_versions_answer_is_a_failure(contract: ContractServer, body: object) -> None:
    contract.overrides["/model/versions"] = Override(200, body)
    with pytest.raises(ServingFailedError):
        ServingClient(contract.url).versions()


def test_rollback_sends_the_version_and_the_token(contract: ContractServer) -> None:
    contract.token = "s3cret"
    contract.history.append(version_entry(2))
    contract.version = 2
    with pytest.raises(ServingRejectedError, match="Set API_TOKEN") as caught:
        ServingClient(contract.url).rollback(1)
    assert caught.value.status == 401
    assert contract.version == 2
    result = ServingClient(contract.url, token="s3cret").rollback(1)
    assert (result.model_version, result.previous_version) == (1, 2)
    method, path, body = contract.requests[-1]
    assert (method, path, body) == ("POST", "/model/rollback", {"version": 1})
    assert contract.version == 1


@pytest.mark.parametrize(
    ("version", "status", "detail"),
    [(9, 404, "there is no version 9"), (2, 409, "version 2 was rejected by the gate")],
)
def test_a_refused_rollback_carries_the_api_detail(
    contract: ContractServer, version: int, status: int, detail: str
) -> None:
    contract.history.append(version_entry(2, accepted=False))
    with pytest.raises(ServingRejectedError) as caught:
        ServingClient(contract.url).rollback(version)
    assert caught.value.status == status
    assert caught.value.detail.startswith(detail)
    assert detail in str(caught.value)
    assert contract.version == 1
