"""A pretrained image model the user supplies as an ONNX file (IMAGE_MODEL), tested
with a tiny model built here: its output feeds the PCA, the file travels inside the
artifacts, and a missing onnxruntime is a clear error saying what to install."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from mlstack.artifacts import ArtifactStore
from mlstack.example_images import SHAPES, shape_image, write_shapes
from mlstack.onnx_features import IMAGENET_MEAN, IMAGENET_STD, ImageModelError, OnnxFeatures
from mlstack.photos import square_pixels
from mlstack.pipeline import bootstrap, read_reference
from mlstack.settings import PipelineSettings
from onnx import TensorProto, helper

from tests.support.servers import Process, free_port, uvicorn_args
from tests.support.serving import SERVING_DIR, serving_env

LIMITS = {"max_bytes": 10_000_000, "max_pixels": 10_000_000}


def mean_colour_model(path: Path, side: int = 32) -> Path:
    """(n, 3, side, side) -> (n, 3): each channel's mean, a model small enough to check
    by hand."""
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["pixels"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["features"], axis=1),
        ],
        "mean_colour",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["n", 3, side, side])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["n", 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def test_an_onnx_model_is_the_feature_extractor(tmp_path) -> None:
    model_path = mean_colour_model(tmp_path / "mean_colour.onnx")
    write_shapes(tmp_path / "shapes", 20, seed=1)
    settings = PipelineSettings(
        project_root=tmp_path, dataset_dir=tmp_path / "shapes", image_model=model_path
    )
    bootstrap(settings)
    model_path.unlink()  # the artifacts carry the model: the file is no longer needed
    artifacts = ArtifactStore(settings.artifacts_dir).load()
    extra = artifacts.manifest.extra["image_features"]
    assert extra["kind"] == "onnx"
    assert extra["model"] == "mean_colour.onnx"
    assert extra["side"] == 32  # read from the file's input
    assert artifacts.embedding.n_components == 3  # the model's 3 outputs
    assert artifacts.manifest.classes == sorted(SHAPES)

    # The features are the model's output on the normalised NCHW picture.
    picture = shape_image("circle", np.random.default_rng(0))
    features, blank = artifacts.embedding.features(picture)
    expected = (square_pixels(picture, 32).mean(axis=(0, 1)) - IMAGENET_MEAN) / IMAGENET_STD
    np.testing.assert_allclose(features, expected, atol=1e-5)
    assert not blank

    # Exported samples embed to their rows of ref_data.csv through the reloaded pickle.
    ref = read_reference(settings, 3)
    for path in sorted(settings.samples_dir.glob("*.png"))[:5]:
        row = int(path.stem.rsplit("_", 1)[1])
        vector = artifacts.embedding.embed_bytes(path.read_bytes(), **LIMITS)
        np.testing.assert_allclose(vector, ref.vectors[row], atol=1e-6)


def test_without_onnxruntime_the_error_says_what_to_install(tmp_path, monkeypatch) -> None:
    features = OnnxFeatures.load(mean_colour_model(tmp_path / "m.onnx"))
    features.of_image(shape_image("square", np.random.default_rng(1)))
    reloaded = pickle.loads(pickle.dumps(features))  # no session in the pickle
    assert "_cached_session" not in vars(reloaded)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as in a service image
    with pytest.raises(ImageModelError, match="pip install onnxruntime"):
        reloaded.of_image(shape_image("square", np.random.default_rng(1)))


def test_a_file_that_is_no_image_model_is_refused(tmp_path) -> None:
    not_onnx = tmp_path / "notes.onnx"
    not_onnx.write_bytes(b"not a model")
    with pytest.raises(ImageModelError, match=r"notes\.onnx"):
        OnnxFeatures.load(not_onnx)
    with pytest.raises(ImageModelError, match=r"missing\.onnx"):
        OnnxFeatures.load(tmp_path / "missing.onnx")
    graph = helper.make_graph(
        [helper.make_node("Identity", ["row"], ["out"])],
        "table",
        [helper.make_tensor_value_info("row", TensorProto.FLOAT, ["n", 4])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["n", 4])],
    )
    flat = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    flat.ir_version = 8
    onnx.save(flat, str(tmp_path / "flat.onnx"))
    with pytest.raises(ImageModelError, match="takes \\(batch, 3, height, width\\)"):
        OnnxFeatures.load(tmp_path / "flat.onnx")
    with pytest.raises(ValueError, match="IMAGE_MODEL"):
        PipelineSettings(image_model=tmp_path / "flat.onnx")


def test_a_server_without_onnxruntime_stops_at_its_start_saying_what_to_install(
    tmp_path,
) -> None:
    """uvicorn on an artifact set made with IMAGE_MODEL, where onnxruntime cannot be
    imported (as in a service image): it exits at start with the instruction, rather
    than answering every /predict with a 500."""
    model_path = mean_colour_model(tmp_path / "mean_colour.onnx")
    write_shapes(tmp_path / "shapes", 8, seed=2)
    settings = PipelineSettings(
        project_root=tmp_path, dataset_dir=tmp_path / "shapes", image_model=model_path
    )
    bootstrap(settings)
    # uvicorn's own command line, in an interpreter where `import onnxruntime` fails
    # (a None in sys.modules makes the import raise ImportError).
    python, module, uvicorn, *rest = uvicorn_args("api:app", free_port())
    assert (module, uvicorn) == ("-m", "uvicorn")
    without_runtime = (
        "import sys; sys.modules['onnxruntime'] = None; from uvicorn.main import main; main()"
    )
    process = Process(
        [python, "-c", without_runtime, *rest],
        cwd=SERVING_DIR,
        env=serving_env(
            settings, DATASET_DIR=str(settings.dataset_dir), IMAGE_MODEL=str(model_path)
        ),
        log=tmp_path / "log",
    )
    try:
        assert process.popen.wait(timeout=120) != 0
    finally:
        process.kill()
    assert "pip install onnxruntime" in process.output()
