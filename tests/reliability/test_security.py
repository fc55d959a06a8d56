"""Security properties that can be checked: the token compare path and that the
token never leaks, TrustedHost and CORS when configured (and closed by default),
pickles loaded only from the artifacts folder after their sha256 check, what the
compose files let each container write, and no secret in the repository or images."""

from __future__ import annotations

import hashlib
import hmac
import json
import pickle
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient
from mlstack.artifacts import ArtifactError, ArtifactStore
from mlstack.serving import deps
from mlstack.serving.app import create_app
from mlstack.settings import PipelineSettings, ServingSettings

from tests.conftest import REPO_ROOT
from tests.reliability.conftest import TOKEN, copy_project
from tests.support.servers import UvicornServer
from tests.support.serving import b64, sample_images, serving_server, start_server

pytestmark = pytest.mark.timeout(300)


# -- the token -----------------------------------------------------------------------------
def test_every_token_check_goes_through_compare_digest(
    project: PipelineSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Right, wrong, shorter, longer and empty tokens are all compared by
    hmac.compare_digest (whose time does not depend on where they differ), never by ==."""
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(deps.hmac, "compare_digest", recording)
    settings = ServingSettings(project_root=project.project_root, api_token=TOKEN)
    label, data = sample_images(settings)[0]
    body = {"image": b64(data), "prediction": label, "target": label}
    tries = {
        TOKEN: 200,
        TOKEN[:-1]: 401,
        TOKEN + "0": 401,
        "x" * len(TOKEN): 401,
        TOKEN[:1]: 401,
    }
    with TestClient(create_app(settings)) as client:
        for given, status in tries.items():
            answer = client.post(
                "/feedback", json=body, headers={"Authorization": f"Bearer {given}"}
            )
            assert answer.status_code == status, given
    assert [a for a, _ in calls] == [t.encode() for t in tries]
    assert {b for _, b in calls} == {TOKEN.encode()}


def test_an_empty_api_token_means_no_token(project: PipelineSettings, monkeypatch) -> None:
    """Compose passes API_TOKEN="" when it is unset: that must not lock /feedback."""
    monkeypatch.setenv("API_TOKEN", "")
    settings = ServingSettings(project_root=project.project_root)
    assert settings.api_token is None
    assert TOKEN not in repr(ServingSettings(project_root=project.project_root, api_token=TOKEN))


def test_the_token_never_leaks(token_server: UvicornServer) -> None:
    """Not in any answer (the schema, /model, errors) and not in the log."""
    url = token_server.url
    answers = [
        httpx.get(f"{url}/openapi.json", timeout=30),
        httpx.get(f"{url}/model", timeout=30),
        httpx.get(f"{url}/health", timeout=30),
        httpx.get(f"{url}/docs", timeout=30),
        httpx.post(f"{url}/feedback", json={}, timeout=30),
        httpx.post(f"{url}/feedback", json={}, timeout=30, headers={"Authorization": "Bearer x"}),
        httpx.post(
            f"{url}/feedback",
            json={"image": 1},
            timeout=30,
            headers={"Authorization": f"Bearer {TOKEN}"},
        ),
    ]
    for answer in answers:
        assert TOKEN not in answer.text
        assert TOKEN not in json.dumps(dict(answer.headers))
    assert answers[4].status_code == 401
    assert answers[4].headers["www-authenticate"] == "Bearer"
    assert TOKEN not in token_server.log()


# -- hosts and CORS --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def locked_server(trained_root: Path, tmp_path_factory) -> Iterator[UvicornServer]:
    settings = copy_project(trained_root, tmp_path_factory.mktemp("locked") / "project")
    server = start_server(
        settings,
        settings.project_root.parent / "locked.log",
        k=1000,
        ALLOWED_HOSTS='["api.example.org", "127.0.0.1"]',
        CORS_ORIGINS='["https://app.example.org"]',
    )
    try:
        yield server
    finally:
        server.kill()


def test_allowed_hosts_refuses_other_host_headers(locked_server: UvicornServer) -> None:
    url = f"{locked_server.url}/health"
    assert httpx.get(url, timeout=30).status_code == 200  # Host: 127.0.0.1:<port>
    assert httpx.get(url, headers={"Host": "api.example.org"}, timeout=30).status_code == 200
    for host in ("evil.example.org", "api.example.org.evil.net", "localhost", ""):
        answer = httpx.get(url, headers={"Host": host}, timeout=30)
        assert answer.status_code == 400, host
    # Refused before the route: a feedback with a forged host writes nothing.
    answer = httpx.post(
        f"{locked_server.url}/feedback", json={}, headers={"Host": "evil.org"}, timeout=30
    )
    assert answer.status_code == 400


def test_cors_allows_only_the_configured_origin(locked_server: UvicornServer) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    url = f"{locked_server.url}/predict"
    good = httpx.options(
        url, headers={"Origin": "https://app.example.org", **preflight}, timeout=30
    )
    assert good.status_code == 200
    assert good.headers["access-control-allow-origin"] == "https://app.example.org"
    assert "POST" in good.headers["access-control-allow-methods"]
    assert "access-control-allow-credentials" not in good.headers
    bad = httpx.options(
        url, headers={"Origin": "https://evil.example.org", **preflight}, timeout=30
    )
    assert bad.status_code == 400
    assert "access-control-allow-origin" not in bad.headers
    # Other methods than the API's own are not offered to browsers.
    delete = httpx.options(
        url,
        timeout=30,
        headers={"Origin": "https://app.example.org", "Access-Control-Request-Method": "DELETE"},
    )
    assert delete.status_code == 400
    simple = httpx.get(
        f"{locked_server.url}/health", headers={"Origin": "https://evil.org"}, timeout=30
    )
    assert "access-control-allow-origin" not in simple.headers


def test_cors_is_closed_by_default(plain_server: UvicornServer) -> None:
    for origin in ("https://evil.example.org", "null", "http://localhost:8081"):
        answer = httpx.get(f"{plain_server.url}/health", headers={"Origin": origin}, timeout=30)
        assert "access-control-allow-origin" not in answer.headers
        preflight = httpx.options(
            f"{plain_server.url}/predict",
            timeout=30,
            headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in preflight.headers


# -- pickles -------------------------------------------------------------------------------
class Payload:
    """A pickle that, once loaded, creates a file: proof that it ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def plant_version(folder: Path, marker: Path, version: int) -> None:
    """A version folder whose manifest vouches for a hostile model.pkl (right sha256)."""
    folder.mkdir(parents=True)
    data = pickle.dumps(Payload(marker))
    for name in ("embedding.pkl", "scaler.pkl", "model.pkl"):
        (folder / name).write_bytes(data)
    files = {
        n: hashlib.sha256(data).hexdigest() for n in ("embedding.pkl", "scaler.pkl", "model.pkl")
    }
    manifest = {
        "version": version,
        "trained_at": "2026-01-01T00:00:00+00:00",
        "rows": {},
        "metrics": {},
        "classes": [0],
        "n_components": 30,
        "classifier": "x",
        "files": files,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_a_tampered_pickle_never_runs_and_the_server_does_not_start(
    project: PipelineSettings, tmp_path: Path
) -> None:
    store = ArtifactStore(project.artifacts_dir)
    marker = tmp_path / "payload-ran"
    model = store.version_dir(store.current_version()) / "model.pkl"
    model.write_bytes(pickle.dumps(Payload(marker)))  # sha256 no longer matches the manifest
    server = serving_server(project, tmp_path / "tampered.log")
    try:
        with pytest.raises(AssertionError, match="sha256"):
            server.start(timeout=60)
    finally:
        server.kill()
    assert not marker.exists()


def test_pickles_are_read_only_from_the_artifacts_folder(
    project: PipelineSettings, tmp_path: Path
) -> None:
    """`current` repointed at a folder elsewhere (with a manifest that vouches for its
    pickles) is read as a version number inside artifacts/versions, never followed."""
    store = ArtifactStore(project.artifacts_dir)
    marker = tmp_path / "payload-ran"
    outside = tmp_path / "elsewhere" / "000099"
    plant_version(outside, marker, 99)
    store.current_link.unlink()
    store.current_link.symlink_to(outside)
    with pytest.raises(ArtifactError):
        store.load()
    assert not marker.exists()


# -- containers and the repository ----------------------------------------------------------
# Service -> (container, the mounts it may write); any other mount must be read-only.
COMPOSE = {
    "serving": ("serving-api", {"/data", "/artifacts"}),  # prod_data.csv, new versions
    "webapp": ("webapp", set()),
    "reporting": ("reporting", {"/workspace"}),  # the Evidently workspace
}


@pytest.mark.parametrize("service", COMPOSE)
def test_each_container_can_write_only_what_it_needs(service: str) -> None:
    name, writable = COMPOSE[service]
    compose = yaml.safe_load((REPO_ROOT / service / "docker-compose.yml").read_text())
    spec = compose["services"][name]
    written = set()
    for volume in spec.get("volumes", []):
        parts = volume.split(":")
        if not (len(parts) > 2 and "ro" in parts[2].split(",")):
            written.add(parts[1])
    assert written == writable
    assert not spec.get("privileged", False)
    assert "network_mode" not in spec  # never the host's network
    assert spec.get("user") in (None, "1000:1000", "1000")  # the image's non-root user
    for key, value in (spec.get("environment") or {}).items():
        if re.search(r"TOKEN|SECRET|PASSWORD|KEY", key):
            # From the caller's environment, never written in the file.
            assert re.fullmatch(r"\$\{\w+(:-)?\}", str(value)), (key, value)


SECRET_PATTERNS = {
    "private key": re.compile(rb"-----BEGIN (RSA |EC |OPENSSH |DSA )?PRIVATE KEY-----"),
    "AWS key": re.compile(rb"AKIA[0-9A-Z]{16}"),
    "GitHub token": re.compile(rb"gh[pousr]_[A-Za-z0-9]{36}"),
    "Slack token": re.compile(rb"xox[abprs]-[A-Za-z0-9-]{10,}"),
    "token in an ENV line": re.compile(
        rb"(?im)^\s*(ENV|ARG)\s+\w*(TOKEN|SECRET|PASSWORD)\w*[= ]\s*\S+"
    ),
}


def test_no_secret_in_the_repository_or_the_images() -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=False
    )
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    files = [REPO_ROOT / name for name in listed.stdout.decode().split("\0") if name]
    assert files
    found = []
    for path in files:
        if path.name == ".env" or path.suffix in (".pem", ".key", ".p12"):
            found.append(f"{path}: a secrets file is tracked")
        if not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        data = path.read_bytes()
        for kind, pattern in SECRET_PATTERNS.items():
            if pattern.search(data):
                found.append(f"{path.relative_to(REPO_ROOT)}: {kind}")
    assert found == []
    # What the images are built from leaves local secrets files out.
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    assert "**/.env" in ignored
