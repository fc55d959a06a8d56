"""The page's logic, driven by Streamlit's AppTest against a real HTTP server that
speaks the serving API's contract: what the user sees and what the API receives."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from tests.webapp.conftest import APP, digit_png
from tests.webapp.contract_server import ContractServer, Override, version_entry

Page = Callable[..., AppTest]


@pytest.fixture
def page(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Page:
    """A factory of AppTests of webapp/api.py, configured through the environment."""

    def make(url: str, samples: Path | None = None, timeout: float = 5.0) -> AppTest:
        monkeypatch.setenv("SERVING_URL", url)
        monkeypatch.setenv("SAMPLES_DIR", str(samples or tmp_path / "no-samples"))
        monkeypatch.setenv("REQUEST_TIMEOUT", str(timeout))
        return AppTest.from_file(str(APP), default_timeout=30).run()

    return make


def texts(elements) -> list[str]:
    return [str(e.value) for e in elements]


def upload(at: AppTest, data: bytes, name: str = "digit.png") -> AppTest:
    at.radio(key="source").set_value("Upload an image").run()
    at.file_uploader(key="upload").set_value((name, data, "image/png")).run()
    return at


def predict(at: AppTest) -> AppTest:
    return at.button(key="predict_button").click().run()


def true_label_box(at: AppTest):
    boxes = [s for s in at.selectbox if s.label == "True label"]
    assert len(boxes) == 1, f"{len(boxes)} 'True label' boxes"
    return boxes[0]


def chart_data(at: AppTest) -> pd.DataFrame:
    charts = at.get("vega_lite_chart")
    assert len(charts) == 1, "no probability chart"
    (dataset,) = charts[0].proto.datasets
    return pa.ipc.open_stream(dataset.data.data).read_pandas()


def line_chart_data(at: AppTest) -> pd.DataFrame:
    charts = at.get("vega_lite_chart")
    assert len(charts) == 1, "no line chart"
    return pa.ipc.open_stream(charts[0].proto.data.data).read_pandas()


def sent(server: ContractServer, path: str) -> list[dict]:
    return [body for _, p, body in server.requests if p == path]


def test_upload_predict_and_feedback_round_trip(page: Page, contract: ContractServer) -> None:
    contract.prediction = 7
    at = page(contract.url)
    assert not at.exception
    assert at.button(key="predict_button").disabled  # nothing to predict yet
    assert any("Model version 1" in s for s in texts(at.sidebar.success))

    image = digit_png()
    upload(at, image)
    assert len(at.get("image")) == 1  # the upload is shown
    predict(at)
    assert not at.exception
    assert not at.error
    (request,) = sent(contract, "/predict")
    assert base64.b64decode(request["image"]) == image
    assert [m.value for m in at.metric] == ["7"]
    assert "Model version 1" in texts(at.caption)
    chart = chart_data(at)
    assert chart["label"].tolist() == [str(c) for c in contract.classes]
    assert chart.set_index("label")["probability"].idxmax() == "7"

    box = true_label_box(at)
    assert box.options == [str(c) for c in contract.classes]
    assert box.value == 7  # the prediction is the default answer
    box.set_value(9).run()
    at.button(key="feedback_button").click().run()
    assert not at.exception
    (feedback,) = sent(contract, "/feedback")
    assert (feedback["prediction"], feedback["target"]) == (7, 9)
    # The id /predict answered, as the page shows it.
    assert f"Prediction id {feedback['prediction_id']}" in texts(at.caption)
    assert base64.b64decode(feedback["image"]) == image
    assert any("true label 9" in s and "holds 1 row." in s for s in texts(at.success))
    assert any("Not retrained" in s and "version 1" in s for s in texts(at.info))
    assert "Feedback rows stored: 1" in texts(at.sidebar.markdown)
    # One feedback per prediction: the button waits for the next Predict.
    assert at.button(key="feedback_button").disabled


def test_retraining_is_reported_and_the_new_version_shown(
    page: Page, contract: ContractServer
) -> None:
    contract.k = 2
    at = upload(page(contract.url), digit_png())
    for stored in ("holds 1 row.", "holds 2 rows."):
        predict(at)
        at.button(key="feedback_button").click().run()
        assert not at.exception
        assert any(stored in s for s in texts(at.success))
    assert any("retrained: now version 2" in s for s in texts(at.success))
    # The sidebar asked /model again and shows the new version.
    assert any("Model version 2" in s for s in texts(at.sidebar.success))
    predict(at)
    assert "Model version 2" in texts(at.caption)


@pytest.mark.parametrize(
    ("state", "message"),
    [("running", "still running"), ("failed", "Retraining failed")],
)
def test_a_retraining_still_running_or_failed_is_said(
    page: Page, contract: ContractServer, state: str, message: str
) -> None:
    contract.k, contract.retraining = 1, state
    at = predict(upload(page(contract.url), digit_png()))
    at.button(key="feedback_button").click().run()
    assert not at.exception
    assert any("holds 1 row." in s for s in texts(at.main.success))
    shown = texts(at.main.info) + texts(at.main.warning)
    assert any(message in s and "version 1" in s for s in shown)


def test_the_api_token_is_sent_with_feedback(
    page: Page, contract: ContractServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    contract.token = "s3cret"
    at = predict(upload(page(contract.url), digit_png()))
    at.button(key="feedback_button").click().run()
    assert any("401" in s and "API_TOKEN" in s for s in texts(at.main.error))
    monkeypatch.setenv("API_TOKEN", "s3cret")
    at.run().button(key="feedback_button").click().run()
    assert not at.main.error
    assert any("holds 1 row." in s for s in texts(at.main.success))


def test_api_down_shows_a_message_not_a_traceback(page: Page, dead_url: str) -> None:
    at = page(dead_url)
    assert not at.exception
    assert any("unreachable" in s for s in texts(at.sidebar.error))
    upload(at, digit_png())
    predict(at)
    assert not at.exception
    errors = texts(at.main.error)
    assert len(errors) == 1
    assert dead_url in errors[0]
    assert "unreachable" in errors[0]
    assert not at.metric
    # Without /model, the labels fall back to 0-9 once a prediction exists: none here.
    assert not [s for s in at.selectbox if s.label == "True label"]


def test_api_refusal_shows_its_detail(page: Page, contract: ContractServer) -> None:
    contract.overrides["/predict"] = Override(422, {"detail": "image: not a PNG or JPEG file"})
    at = upload(page(contract.url), b"definitely not an image", "notes.png")
    assert any("cannot be shown" in s for s in texts(at.warning))
    predict(at)
    assert not at.exception
    (error,) = texts(at.main.error)
    assert "422" in error
    assert "not a PNG or JPEG file" in error
    assert not at.metric


def test_a_refused_feedback_is_an_error_not_a_success(page: Page, contract: ContractServer) -> None:
    at = predict(upload(page(contract.url), digit_png()))
    contract.overrides["/feedback"] = Override(422, {"detail": "unknown label 12"})
    at.button(key="feedback_button").click().run()
    assert not at.exception
    assert any("unknown label 12" in s for s in texts(at.main.error))
    assert not at.main.success
    assert not at.button(key="feedback_button").disabled  # the user may try again


def test_server_error_and_slow_api(page: Page, contract: ContractServer) -> None:
    contract.overrides["/predict"] = Override(500, {"detail": "Internal Server Error"})
    at = predict(upload(page(contract.url, timeout=0.5), digit_png()))
    assert not at.exception
    (error,) = texts(at.main.error)
    assert "failed" in error
    assert "500" in error

    contract.overrides["/predict"] = Override(delay=2.0)
    predict(at)
    assert not at.exception
    (error,) = texts(at.main.error)
    assert "did not answer" in error
    assert "0.5 s" in error

    del contract.overrides["/predict"]
    predict(at)
    assert not at.main.error  # the message goes once the API answers
    assert [m.value for m in at.metric] == [str(contract.prediction)]


def test_labels_come_from_the_model(page: Page, contract: ContractServer) -> None:
    contract.classes = [0, 1, 2, 3]
    at = predict(upload(page(contract.url), digit_png()))
    assert true_label_box(at).options == ["0", "1", "2", "3"]


def test_labels_fall_back_to_0_9_when_the_model_route_fails(
    page: Page, contract: ContractServer
) -> None:
    contract.overrides["/model"] = Override(404, {"detail": "Not Found"})
    contract.classes, contract.prediction = [0, 1, 2], 1  # what /predict's probabilities list
    at = predict(upload(page(contract.url), digit_png()))
    assert not at.exception
    assert true_label_box(at).options == ["0", "1", "2"]
    contract.overrides["/predict"] = Override(
        200, {"prediction": 1, "probabilities": {}, "model_version": 1, "prediction_id": "x"}
    )
    predict(at)
    assert true_label_box(at).options == [str(d) for d in range(10)]


def test_a_sample_is_sent_as_its_file_and_its_label_offered(
    page: Page, contract: ContractServer, tmp_path: Path
) -> None:
    samples = tmp_path / "samples"
    samples.mkdir()
    files = {name: digit_png(8 + i) for i, name in enumerate(["3_0101.png", "1_0007.png"])}
    for name, data in files.items():
        (samples / name).write_bytes(data)
    (samples / "README.txt").write_text("not an image")
    at = page(contract.url, samples=samples)
    at.radio(key="source").set_value("Pick a sample").run()
    box = at.selectbox(key="sample")
    assert box.options == ["1  (1_0007.png)", "3  (3_0101.png)"]
    box.select_index(1).run()
    predict(at)
    (request,) = sent(contract, "/predict")
    assert base64.b64decode(request["image"]) == files["3_0101.png"]
    # The true label offered first is the one in the file's name, not the prediction.
    contract.prediction = 5
    at.selectbox(key="sample").select_index(0).run()
    predict(at)
    assert [m.value for m in at.metric] == ["5"]
    assert true_label_box(at).value == 1


def test_no_samples_is_explained(page: Page, contract: ContractServer) -> None:
    at = page(contract.url)
    at.radio(key="source").set_value("Pick a sample").run()
    assert any("No sample images" in s and "SAMPLES_DIR" in s for s in texts(at.warning))
    assert at.button(key="predict_button").disabled


def test_a_new_image_hides_the_old_prediction(page: Page, contract: ContractServer) -> None:
    at = predict(upload(page(contract.url), digit_png()))
    assert at.metric
    upload(at, digit_png(text_offset=5), "other.png")
    assert not at.metric
    assert not [s for s in at.selectbox if s.label == "True label"]
    assert any("image changed" in s for s in texts(at.info))


def test_the_draw_tab_renders_the_canvas(page: Page, contract: ContractServer) -> None:
    at = page(contract.url)
    at.radio(key="source").set_value("Draw a digit").run()
    assert not at.exception
    assert not at.main.error
    assert at.button(key="predict_button").disabled  # an empty canvas is no image
    at.button(key="clear_canvas").click().run()
    assert not at.exception
    assert at.session_state["canvas_round"] == 1


# ---------------------------------------------------------------- the Model page


def three_versions(contract: ContractServer) -> ContractServer:
    """Version 1 (the first model), 2 (accepted, in use), 3 (rejected by the gate)."""
    contract.history += [
        version_entry(2, f1=0.96, feedback_f1=0.9),
        version_entry(3, accepted=False, f1=0.4, feedback_f1=0.3, gate_reason="below the floor"),
    ]
    contract.version = 2
    return contract


def model_page(at: AppTest) -> AppTest:
    return at.radio(key="page").set_value("Model").run()


def test_predict_is_the_default_page(page: Page, contract: ContractServer) -> None:
    at = page(contract.url)
    assert at.radio(key="page").value == "Predict"
    assert "Digit classifier" in texts(at.title)
    assert not sent(contract, "/model/versions")  # asked only when the Model page is open


def test_the_model_page_lists_the_versions(page: Page, contract: ContractServer) -> None:
    at = model_page(page(three_versions(contract).url))
    assert not at.exception
    assert "Model versions" in texts(at.title)
    (table,) = at.dataframe
    frame = table.value
    assert frame["version"].tolist() == [1, 2, 3]
    assert frame["status"].tolist() == ["accepted", "active", "rejected"]
    assert frame["in use"].tolist() == [False, True, False]
    assert frame["reason"].tolist() == ["bootstrap", "retraining", "retraining"]
    assert frame["rows"].tolist() == [1437] * 3
    assert frame["reference F1"].tolist() == [0.95, 0.96, 0.4]
    assert frame["reference balanced accuracy"].tolist() == pytest.approx([0.94, 0.95, 0.39])
    assert frame["feedback F1"].tolist()[1:] == [0.9, 0.3]
    assert pd.isna(frame["feedback F1"].iloc[0])
    assert frame["gate"].iloc[2] == "below the floor"
    assert frame["trained at"].iloc[0] == "2026-01-01 12:00:00"
    assert any("Version 2 is in use" in s for s in texts(at.main.success))
    assert any("Version 3 was rejected" in s and "below the floor" in s for s in texts(at.warning))
    # The line chart: reference and feedback F1 over versions.
    lines = line_chart_data(at).pivot(index="version", columns="figure", values="F1")
    assert lines["reference F1"].tolist() == [0.95, 0.96, 0.4]
    assert lines["feedback F1"].tolist()[1:] == [0.9, 0.3]
    # Rejected candidates, and the version in use, are not offered.
    assert at.selectbox(key="rollback_version").value == 1
    assert len(at.selectbox(key="rollback_version").options) == 1


def test_a_rollback_needs_confirmation_and_shows_the_answer(
    page: Page, contract: ContractServer
) -> None:
    at = model_page(page(three_versions(contract).url))
    button = at.button(key="rollback_button")
    assert button.disabled  # not yet confirmed
    (box,) = at.checkbox
    assert box.label == "I understand every worker will serve version 1"
    box.check().run()
    assert not at.button(key="rollback_button").disabled
    at.button(key="rollback_button").click().run()
    assert not at.exception
    assert sent(contract, "/model/rollback") == [{"version": 1}]
    assert contract.version == 1
    assert any("every worker now serves version 1 (was 2)" in s for s in texts(at.main.success))
    assert at.dataframe[0].value["status"].tolist() == ["active", "accepted", "rejected"]
    assert any("Model version 1" in s for s in texts(at.sidebar.success))
    # Version 2 is offered now, and needs its own confirmation.
    assert at.selectbox(key="rollback_version").value == 2
    assert at.button(key="rollback_button").disabled


def test_a_rollback_without_the_token_is_refused_with_the_api_message(
    page: Page, contract: ContractServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    three_versions(contract).token = "s3cret"
    at = model_page(page(contract.url))
    at.checkbox[0].check().run()
    at.button(key="rollback_button").click().run()
    assert not at.exception
    assert any("401" in s and "API_TOKEN" in s for s in texts(at.main.error))
    assert contract.version == 2
    assert at.button(key="rollback_button").disabled  # the confirmation is asked again
    monkeypatch.setenv("API_TOKEN", "s3cret")
    at.run().checkbox[0].check().run()
    at.button(key="rollback_button").click().run()
    assert not at.main.error
    assert contract.version == 1


@pytest.mark.parametrize(
    ("status", "detail"),
    [(409, "version 1 has damaged files"), (404, "there is no version 1")],
)
def test_a_refused_rollback_shows_the_api_detail(
    page: Page, contract: ContractServer, status: int, detail: str
) -> None:
    at = model_page(page(three_versions(contract).url))
    contract.overrides["/model/rollback"] = Override(status, {"detail": detail})
    at.checkbox[0].check().run()
    at.button(key="rollback_button").click().run()
    assert not at.exception
    assert any(str(status) in s and detail in s for s in texts(at.main.error))
    assert not any("Rolled back" in s for s in texts(at.main.success))


def test_only_the_active_version_means_nothing_to_roll_back_to(
    page: Page, contract: ContractServer
) -> None:
    contract.history.append(version_entry(2, accepted=False))
    at = model_page(page(contract.url))
    assert not at.exception
    assert any("No other version can be served" in s for s in texts(at.info))
    assert not at.checkbox


def test_the_model_page_with_the_api_down(page: Page, dead_url: str) -> None:
    at = model_page(page(dead_url))
    assert not at.exception
    assert any("unreachable" in s for s in texts(at.main.error))
    assert not at.dataframe


def test_a_candidate_the_gate_rejected_is_said_on_the_predict_page(
    page: Page, contract: ContractServer
) -> None:
    contract.k, contract.gate_rejects = 1, True
    at = predict(upload(page(contract.url), digit_png()))
    at.button(key="feedback_button").click().run()
    assert not at.exception
    assert any(
        "gate rejected the new version 2" in s and "version 1 stays in use" in s
        for s in texts(at.main.warning)
    )
    assert not any("retrained: now" in s for s in texts(at.main.success))
    contract.gate_rejects = False
    predict(at).button(key="feedback_button").click().run()
    assert any("now version 3" in s and "went live" in s for s in texts(at.main.success))
    assert any("Model version 3" in s for s in texts(at.sidebar.success))
