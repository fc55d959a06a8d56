"""Hostile input over HTTP against a real uvicorn, with and without API_TOKEN:
decompression bombs, huge bodies, deeply nested JSON, NaN and infinities, wrong
content types, path tricks in every name a client can set, very long strings and
unicode. Each gets a 4xx that says what is wrong (never a 5xx), nothing is written,
and the server keeps answering."""

from __future__ import annotations

import http.client
import io
import json
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from mlstack.settings import PipelineSettings, ServingSettings
from PIL import Image, ImageDraw, PngImagePlugin

from tests.reliability.conftest import TOKEN, png, read_prod, record_figures
from tests.support.servers import UvicornServer
from tests.support.serving import b64, sample_images

pytestmark = pytest.mark.timeout(300)


@dataclass
class Api:
    """One running server and what a legitimate client sends it."""

    server: UvicornServer
    settings: PipelineSettings
    headers: dict[str, str]
    name: str

    @property
    def url(self) -> str:
        return self.server.url

    def post(
        self,
        path: str,
        body: object = None,
        *,
        content: bytes | None = None,
        content_type: str = "application/json",
        headers: dict | None = None,
    ) -> httpx.Response:
        if content is None:
            content = json.dumps(body).encode()
        return httpx.post(
            f"{self.url}{path}",
            content=content,
            headers={"content-type": content_type, **self.headers, **(headers or {})},
            timeout=60,
        )

    def prod_bytes(self) -> bytes:
        path = self.settings.prod_data_path
        return path.read_bytes() if path.exists() else b""


TALLY: dict[str, dict[int, int]] = {}


@pytest.fixture(scope="module", params=["no token", "API_TOKEN set"])
def api(request: pytest.FixtureRequest, module_project: PipelineSettings) -> Iterator[Api]:
    if request.param == "no token":
        server: UvicornServer = request.getfixturevalue("plain_server")
        settings, headers = module_project, {}
    else:
        server = request.getfixturevalue("token_server")
        settings, headers = server.settings, {"Authorization": f"Bearer {TOKEN}"}  # type: ignore[attr-defined]
    yield Api(server, settings, headers, request.param)
    assert "Traceback" not in server.log(), server.log()
    counts = TALLY.get(request.param, {})
    record_figures(
        f"hostile-{request.param.replace(' ', '-').lower()}",
        {"requests": sum(counts.values()), "by_status": dict(sorted(counts.items()))},
    )


def refused(api: Api, path: str, body: object = None, *, words: str = "", **kw) -> int:
    """Send one hostile request; it must get a 4xx (with `words` in its detail), write
    nothing, and leave the server healthy. Returns the status."""
    before = api.prod_bytes()
    answer = api.post(path, body, **kw)
    counts = TALLY.setdefault(api.name, {})
    counts[answer.status_code] = counts.get(answer.status_code, 0) + 1
    assert 400 <= answer.status_code < 500, f"{answer.status_code}: {answer.text[:300]}"
    if words:
        assert words in json.dumps(answer.json()), answer.text[:300]
    assert api.prod_bytes() == before, "a refused request wrote to prod_data.csv"
    assert httpx.get(f"{api.url}/health", timeout=30).status_code == 200
    return answer.status_code


def good_image(api: Api) -> tuple[int, str]:
    label, data = sample_images(api.settings)[7]
    return label, b64(data)


# -- images ------------------------------------------------------------------------------
def png_with_size(width: int, height: int) -> bytes:
    """A small PNG whose header claims width x height pixels."""
    data = png(Image.new("L", (8, 8)))
    header = struct.pack(">II", width, height) + data[24:29]
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + header) & 0xFFFFFFFF)
    return data[:16] + header + crc + data[33:]


def gif_with_size(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (8, 8)).save(buffer, format="GIF")
    data = bytearray(buffer.getvalue())
    data[6:10] = struct.pack("<HH", width, height)
    return bytes(data)


def png_text_bomb() -> bytes:
    """50 MB of text in a compressed chunk: about 50 KB on the wire."""
    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "0" * 50_000_000, zip=True)
    return png(Image.new("L", (8, 8)), pnginfo=info)


def stroke_image(mode: str, width: int, height: int) -> bytes:
    """A big, almost uniform image (a few KB compressed) with one stroke on it."""
    image = Image.new(mode, (width, height))
    ImageDraw.Draw(image).line(
        [(width // 3, height // 4), (width // 2, 3 * height // 4)], fill=1, width=width // 40
    )
    return png(image)


BOMBS = {
    "49 megapixels, 1-bit PNG": (lambda: png(Image.new("1", (7000, 7000))), "pixels"),
    "PNG header claiming 10^10 pixels": (lambda: png_with_size(100_000, 100_000), "image"),
    "GIF screen of 65535 x 65535": (lambda: gif_with_size(65535, 65535), "image"),
    "PNG text chunk of 50 MB": (png_text_bomb, "image"),
}


@pytest.mark.parametrize("bomb", BOMBS)
def test_decompression_bombs_are_refused(api: Api, bomb: str) -> None:
    make, words = BOMBS[bomb]
    data = make()
    assert len(data) < 100_000  # small on the wire: the danger is in decoding
    label, _ = good_image(api)
    refused(api, "/predict", {"image": b64(data)}, words=words)
    body = {"image": b64(data), "prediction": label, "target": label}
    refused(api, "/feedback", body, words=words)


def test_an_image_costly_to_decode_does_not_stall_other_requests(api: Api) -> None:
    """A 40-megapixel PNG is ~20 KB on the wire but far more work to decode and reduce
    than a request's worth: it must be worked on off the event loop, so that a request
    sent right after it (here /health) is answered before it. Three of them in one batch
    (each decoded in turn, about three times one decode) leave /health a margin that a
    busy machine does not eat, while on the event loop they would hold /health back
    for all three."""
    data = stroke_image("1", 6300, 6300)  # just under MAX_IMAGE_PIXELS (40 M)
    batch = [b64(data)] * 3
    # Small enough for the in-line path, if size alone decided (INLINE_PREDICT_BYTES).
    assert sum(len(text) * 3 // 4 for text in batch) < 64 * 1024
    host, port = api.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=120)
    finished: list[str] = []
    answers: list[tuple[int, str]] = []

    def await_prediction() -> None:
        answer = connection.getresponse()
        answers.append((answer.status, answer.read().decode()))
        finished.append("predict")

    # The whole request is in the server's hands when request() returns (a sleep here
    # would race a fast decode); a thread waits for its answer while /health is asked.
    connection.request(
        "POST",
        "/predict",
        body=json.dumps({"images": batch}),
        headers={"content-type": "application/json", **api.headers},
    )
    worker = threading.Thread(target=await_prediction)
    worker.start()
    started = time.perf_counter()
    assert httpx.get(f"{api.url}/health", timeout=60).status_code == 200
    health_seconds = time.perf_counter() - started
    finished.append("health")
    worker.join(timeout=120)
    connection.close()
    assert len(answers) == 1, finished
    assert answers[0][0] in (200, 422), answers
    record_figures(
        f"costly-image-{api.name.replace(' ', '-').lower()}",
        {
            "bytes": len(data),
            "pixels": 6300 * 6300,
            "order": finished,
            "health_seconds": round(health_seconds, 3),
        },
    )
    # Worked on in-line, the prediction would be answered before /health.
    assert finished == ["health", "predict"]


# -- bodies ------------------------------------------------------------------------------
def test_huge_bodies_are_refused_before_they_are_read(api: Api) -> None:
    serving = ServingSettings(project_root=api.settings.project_root)
    max_body = serving.max_body_bytes
    big = b"A" * (max_body + 1)
    refused(api, "/predict", content=big, words=str(max_body))
    refused(api, "/feedback", content=big, words=str(max_body))

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(max_body // 65536 + 2):
            yield b"A" * 65536

    answer = httpx.post(
        f"{api.url}/predict",
        content=chunks(),
        headers={"content-type": "application/json", **api.headers},
        timeout=60,
    )
    assert answer.status_code == 413
    # Under the body limit, but the image itself over MAX_UPLOAD_BYTES.
    image = "A" * (serving.max_upload_bytes * 4 // 3 + 8)
    refused(api, "/predict", {"image": image}, words="over the limit")


def test_deeply_nested_json_is_refused(api: Api) -> None:
    depth = 100_000
    refused(api, "/predict", content=b'{"image": ' + b"[" * depth + b"]" * depth + b"}")
    refused(api, "/feedback", content=b"[" * depth + b"]" * depth)
    nested = b'{"a":' * depth + b"1" + b"}" * depth
    refused(api, "/feedback", content=b'{"prediction_id": ' + nested + b"}")


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_nan_and_infinities_are_422(api: Api, value: str) -> None:
    label, image = good_image(api)
    refused(api, "/predict", content=f'{{"image": {value}}}'.encode(), words="image")
    for field in ("target", "prediction"):
        body = {"image": image, "prediction": label, "target": label}
        text = json.dumps(body).replace(f'"{field}": {label}', f'"{field}": {value}')
        refused(api, "/feedback", content=text.encode(), words=field)


@pytest.mark.parametrize(
    ("content_type", "content"),
    [
        ("text/plain", b"image=abc"),
        ("application/x-www-form-urlencoded", b"image=abc&prediction=1&target=1"),
        (
            "multipart/form-data; boundary=x",
            b'--x\r\nContent-Disposition: form-data; name="image"\r\n\r\nabc\r\n--x--\r\n',
        ),
        ("application/xml", b"<image>abc</image>"),
        ("application/json", b'{"image": '),
        ("application/json", b"\xff\xfe\x00garbage"),
        ("application/json", b""),
    ],
)
def test_wrong_content_types_and_broken_json_are_4xx(
    api: Api, content_type: str, content: bytes
) -> None:
    refused(api, "/predict", content=content, content_type=content_type)
    refused(api, "/feedback", content=content, content_type=content_type)


# -- names a client sets -------------------------------------------------------------------
PATH_TRICKS = [
    "../../etc/passwd",
    "..\\..\\windows\\win.ini",
    "/etc/passwd",
    "a/b",
    "%2e%2e%2f",
    "x\x00y",
    "x\ny",
    "a,b",
    "=cmd|' /C calc'!A0",
    "prod_data.csv",
    "~root",
    "..",
]


@pytest.mark.parametrize("trick", PATH_TRICKS)
def test_path_tricks_in_prediction_id_and_labels_are_refused(api: Api, trick: str) -> None:
    label, image = good_image(api)
    tree_before = sorted(
        p.relative_to(api.settings.project_root) for p in api.settings.project_root.rglob("*")
    )
    refused(
        api,
        "/feedback",
        {"image": image, "prediction": label, "target": label, "prediction_id": trick},
        words="prediction_id",
    )
    refused(
        api, "/feedback", {"image": image, "prediction": label, "target": trick}, words="target"
    )
    refused(
        api, "/feedback", {"image": image, "prediction": trick, "target": label}, words="prediction"
    )
    tree_after = sorted(
        p.relative_to(api.settings.project_root) for p in api.settings.project_root.rglob("*")
    )
    assert tree_after == tree_before  # no file made, wherever the name pointed


@pytest.mark.parametrize(
    "path",
    [
        "/../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/static/../../etc/passwd",
        "/predict/..%2f..%2fetc%2fpasswd",
        "//etc/passwd",
        "/health%00",
        "/docs/..%2f..%2fapi.py",
    ],
)
def test_path_tricks_in_urls_serve_no_file(api: Api, path: str) -> None:
    host, port = api.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request("GET", path)  # sent as is: no client-side normalising
        answer = connection.getresponse()
        body = answer.read()
    finally:
        connection.close()
    assert answer.status in (400, 404, 405), (answer.status, body[:200])
    assert b"root:" not in body  # no /etc/passwd
    assert b"import" not in body  # no source file


# -- long strings and unicode ------------------------------------------------------------
def test_very_long_strings_are_refused(api: Api) -> None:
    label, image = good_image(api)
    good = {"image": image, "prediction": label, "target": label}
    refused(api, "/feedback", {**good, "prediction_id": "a" * 100_000}, words="prediction_id")
    refused(api, "/feedback", {**good, "target": "7" * 1_000_000}, words="target")
    refused(api, "/feedback", {**good, "x" * 100_000: 1})
    refused(api, "/predict", {"image": image, "y" * 100_000: 1})
    refused(api, "/predict", {"image": "=" * 1_000_000}, words="base64")
    answer = httpx.get(f"{api.url}/health", headers={"X-Long": "a" * 60_000}, timeout=30)
    assert answer.status_code < 500


@pytest.mark.parametrize(
    "text",
    ["٣", "３", "三", "3\u200b", "ünïcødé", "🙂", "\u202eevil", "\ud800", "\udfff\ud800"],
)
def test_unicode_and_lone_surrogates_are_refused(api: Api, text: str) -> None:
    label, image = good_image(api)
    good = {"image": image, "prediction": label, "target": label}
    # ensure_ascii: lone surrogates travel as \ud800 escapes, as a hostile client sends them.
    for body, words in [
        ({**good, "target": text}, "target"),
        ({**good, "prediction": text}, "prediction"),
        ({**good, "prediction_id": text}, "prediction_id"),
        ({**good, text: 1}, ""),
    ]:
        refused(api, "/feedback", content=json.dumps(body, ensure_ascii=True).encode(), words=words)
    refused(api, "/predict", content=json.dumps({"image": text}).encode(), words="image")


def test_with_the_token_set_feedback_without_it_writes_nothing(
    request: pytest.FixtureRequest,
) -> None:
    server: UvicornServer = request.getfixturevalue("token_server")
    settings: PipelineSettings = server.settings  # type: ignore[attr-defined]
    label, data = sample_images(settings)[7]
    body = {"image": b64(data), "prediction": label, "target": label}
    before = read_prod(settings.prod_data_path)[2]
    for headers in (
        {},
        {"Authorization": "Bearer"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Bearer {TOKEN[:-1]}"},
        {"Authorization": "Bearer \u00e9\u00e9".encode()},
        {"Authorization": "Bearer " + "a" * 10_000},
    ):
        answer = httpx.post(f"{server.url}/feedback", json=body, headers=headers, timeout=30)
        assert answer.status_code in (400, 401), (headers, answer.status_code)
    # A body of the wrong shape without the token is refused for the token first.
    answer = httpx.post(f"{server.url}/feedback", json={"image": "x" * 1000}, timeout=30)
    assert answer.status_code == 401
    assert read_prod(settings.prod_data_path)[2] == before
    ok = httpx.post(
        f"{server.url}/feedback",
        json=body,
        timeout=30,
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert ok.status_code == 200
