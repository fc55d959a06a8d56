"""The web app's settings: the stack's naming rule, and defaults that work from a checkout
whatever the package's location (an installed copy lives in site-packages)."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlstack_webapp.settings import WebappSettings, checkout_root

from tests.webapp.conftest import REPO_ROOT, WEBAPP

VARIABLES = {
    "SERVING_URL": ("serving_url", "http://serving-api:8080", "http://serving-api:8080"),
    "SAMPLES_DIR": ("samples_dir", "/samples", Path("/samples")),
    "REQUEST_TIMEOUT": ("request_timeout", "2.5", 2.5),
    "FEEDBACK_TIMEOUT": ("feedback_timeout", "30", 30.0),
    "MAX_UPLOAD_MB": ("max_upload_mb", "3", 3),
    "BATCH_IMAGES": ("batch_images", "8", 8),
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*VARIABLES, "API_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def test_each_variable_is_its_field_in_capitals(monkeypatch: pytest.MonkeyPatch) -> None:
    assert set(WebappSettings.model_fields) == {v[0] for v in VARIABLES.values()} | {"api_token"}
    for variable, (field, text, value) in VARIABLES.items():
        monkeypatch.setenv(variable, text)
        assert getattr(WebappSettings(), field) == value, variable
    monkeypatch.setenv("API_TOKEN", "s3cret")
    assert WebappSettings().api_token.get_secret_value() == "s3cret"
    monkeypatch.setenv("API_TOKEN", "")  # compose passes ${API_TOKEN:-}: unset is no token
    assert WebappSettings().api_token is None


@pytest.mark.parametrize("variable", ["REQUEST_TIMEOUT", "MAX_UPLOAD_MB", "BATCH_IMAGES"])
def test_nonsense_is_refused(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    monkeypatch.setenv(variable, "0")
    with pytest.raises(ValueError, match=variable.lower()):
        WebappSettings()


@pytest.mark.parametrize("start", [REPO_ROOT, WEBAPP], ids=["checkout root", "webapp folder"])
def test_samples_default_to_the_checkouts_data_samples(
    monkeypatch: pytest.MonkeyPatch, start: Path
) -> None:
    """`streamlit run webapp/api.py` from the checkout and `cd webapp && streamlit run
    api.py` both find data/samples."""
    monkeypatch.chdir(start)
    assert checkout_root() == REPO_ROOT
    assert WebappSettings().samples_dir == REPO_ROOT / "data" / "samples"


def test_elsewhere_the_working_directory_is_the_root(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    assert WebappSettings().samples_dir == tmp_path / "data" / "samples"
