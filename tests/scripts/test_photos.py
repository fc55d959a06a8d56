"""A user's photos (IMAGE_FEATURES=photo): features computed as scikit-image computes
them, blank only when truly uniform, a folder of coloured shapes learnt although
their gray picture shows nothing, and artifact sets saved before photo features
existed still load and predict."""

from __future__ import annotations

import io
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from mlstack.artifacts import ArtifactStore
from mlstack.dataset import FOLDER_FORMAT, PHOTO_FEATURES
from mlstack.embedding import Embedding
from mlstack.example_images import SHAPES, same_gray_colours, shape_image
from mlstack.photos import hog, lbp_histogram
from mlstack.pipeline import bootstrap, read_reference
from mlstack.preprocessing import decode_image, to_format
from mlstack.settings import PipelineSettings
from PIL import Image
from skimage import data
from skimage.feature import hog as skimage_hog
from skimage.feature import local_binary_pattern

from tests.support.photos import PER_LABEL

LIMITS = {"max_bytes": 10_000_000, "max_pixels": 10_000_000}


def encoded(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


@pytest.mark.parametrize("channels", [1, 3])
def test_hog_is_scikit_images(channels: int) -> None:
    picture = data.astronaut()[::8, ::8] / 255.0  # 64x64, colour
    if channels == 1:
        picture = picture @ [0.299, 0.587, 0.114]
    for cell in (8, 16):
        expected = skimage_hog(
            picture,
            orientations=9,
            pixels_per_cell=(cell, cell),
            cells_per_block=(2, 2),
            block_norm="L2-Hys",
            channel_axis=-1 if channels == 3 else None,
        )
        np.testing.assert_allclose(hog(picture, cell, 9), expected, atol=1e-7)


def test_texture_histogram_is_scikit_images_uniform_lbp() -> None:
    """The same codes; flat patches of 8-bit pictures make ties between a diagonal
    neighbour and the pixel, which scikit-image's interpolation breaks either way."""
    for gray, tolerance in (
        (np.random.default_rng(0).random((64, 64)), 1e-12),  # no ties
        (data.brick()[:64, :64] / 255.0, 0.01),
        (data.camera()[::8, ::8] / 255.0, 0.01),
    ):
        with warnings.catch_warnings():  # it advises integers, which would round
            warnings.simplefilter("ignore")
            codes = local_binary_pattern(gray, 8, 1, "uniform")[1:-1, 1:-1].astype(int)
        expected = np.bincount(codes.ravel(), minlength=10) / codes.size
        np.testing.assert_allclose(lbp_histogram(gray), expected, atol=tolerance)


def test_a_coloured_shape_on_a_background_of_its_gray_level_is_not_blank() -> None:
    """The digits' ink detection finds nothing in most of these pictures (same gray
    level); the photo features refuse none of them, as PNG or JPEG."""
    rng = np.random.default_rng(11)
    pictures = [shape_image(SHAPES[i % 3], rng) for i in range(60)]
    grid_blank = 0
    for i, picture in enumerate(pictures):
        data_ = encoded(picture, "JPEG", quality=85) if i % 2 else encoded(picture)
        image = decode_image(data_, **LIMITS)
        features, blank = PHOTO_FEATURES.of_image(image)
        assert not blank, f"picture {i} refused as blank"
        assert features.shape == (PHOTO_FEATURES.size,)
        grid_blank += not to_format(image, FOLDER_FORMAT).any()
    assert grid_blank >= 30  # what the gray grid made of them: nothing to see


def test_same_gray_colours_have_one_gray_level() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        background, shape = same_gray_colours(rng)
        luma = np.array([0.299, 0.587, 0.114])
        assert abs(background @ luma - shape @ luma) < 1e-9
        assert np.linalg.norm(background - shape) >= 0.3
        assert (shape >= 0).all()
        assert (shape <= 1).all()


def test_only_a_truly_uniform_picture_is_blank() -> None:
    rng = np.random.default_rng(5)
    grain = np.clip(rng.normal(128, 2.0, (120, 160, 3)), 0, 255).astype(np.uint8)
    uniform = [
        encoded(Image.new("RGB", (200, 150), (30, 120, 60))),
        encoded(Image.new("RGB", (64, 64), (250, 250, 250)), "JPEG", quality=70),
        encoded(Image.new("L", (300, 300), 0)),
        encoded(Image.new("RGBA", (64, 64), (0, 0, 0, 0))),  # transparent: on white
        encoded(Image.fromarray(grain)),  # sensor grain, nothing else
    ]
    for data_ in uniform:
        assert PHOTO_FEATURES.of_image(decode_image(data_, **LIMITS))[1]
    # A small dot, a faint gradient: something to see.
    dot = Image.new("RGB", (200, 200), (30, 120, 60))
    dot.paste((200, 40, 40), (90, 90, 110, 110))
    ramp = np.tile(np.linspace(100, 160, 200), (200, 1)).astype(np.uint8)
    for image in (dot, Image.fromarray(ramp)):
        assert not PHOTO_FEATURES.of_image(decode_image(encoded(image), **LIMITS))[1]


def test_a_folder_of_coloured_shapes_is_learnt(photo_project: PipelineSettings) -> None:
    """Trained from the folder with the default IMAGE_FEATURES: held-out accuracy well
    above chance (1/3; the gray grid scores chance here) and the samples exported as
    the files themselves, which embed to their rows of ref_data.csv."""
    settings = photo_project
    artifacts = ArtifactStore(settings.artifacts_dir).load()
    manifest = artifacts.manifest
    assert manifest.extra["image_features"] == {"kind": "photo", **vars(PHOTO_FEATURES)}
    assert artifacts.embedding.photo == PHOTO_FEATURES
    assert manifest.metrics["holdout"]["accuracy"] >= 0.6
    ref = read_reference(settings, artifacts.embedding.n_components)
    assert len(ref.targets) == 3 * PER_LABEL
    frame = pd.read_csv(settings.ref_data_path)
    assert list(frame.columns) == [*artifacts.embedding.columns, "target"]
    samples = sorted(settings.samples_dir.glob("*.png"))
    assert len(samples) == 15
    for path in samples:
        row = int(path.stem.rsplit("_", 1)[1])
        assert path.stem.rsplit("_", 1)[0] == ref.targets[row]
        vector = artifacts.embedding.embed_bytes(path.read_bytes(), **LIMITS)
        np.testing.assert_allclose(vector, ref.vectors[row], atol=1e-9)


def test_image_features_grid_keeps_the_gray_grid(tmp_path) -> None:
    for label in ("a", "b"):
        (tmp_path / "images" / label).mkdir(parents=True)
        for i in range(6):
            shape_image(SHAPES[0 if label == "a" else 1], np.random.default_rng(i)).save(
                tmp_path / "images" / label / f"{i}.png"
            )
    settings = PipelineSettings(
        project_root=tmp_path, dataset_dir=tmp_path / "images", image_features="grid"
    )
    artifacts = bootstrap(settings)
    assert artifacts.embedding.photo is None
    assert artifacts.embedding.format == FOLDER_FORMAT
    assert "image_features" not in artifacts.manifest.extra
    with pytest.raises(ValueError, match="photo"):
        PipelineSettings(image_features="colour")


def test_an_artifact_set_saved_before_photo_features_loads_and_predicts(
    project: PipelineSettings,
) -> None:
    """An embedding pickled by the code before IMAGE_FEATURES has no `photo` in its
    state: it loads as the digits' grid and predicts as it did."""
    store = ArtifactStore(project.artifacts_dir)
    current = store.load()
    old = Embedding.__new__(Embedding)
    old.__dict__.update({k: v for k, v in vars(current.embedding).items() if k != "photo"})
    assert b"photo" not in pickle.dumps(old)  # as the old code wrote it
    manifest = store.save(
        old, current.classifier, rows=current.manifest.rows, metrics={}, reason="old set"
    )
    loaded = store.load(manifest.version)
    assert loaded.embedding.photo is None
    for path in sorted(project.samples_dir.glob("*.png"))[:20]:
        data_ = path.read_bytes()
        before = current.embedding.embed_bytes(data_, **LIMITS)
        np.testing.assert_array_equal(loaded.embedding.embed_bytes(data_, **LIMITS), before)
        features, blank = loaded.embedding.features(decode_image(data_, **LIMITS))
        assert not blank
        assert (
            loaded.classifier.predict(loaded.embedding.transform(features[None]))[0]
            == (current.classifier.predict(before[None])[0])
        )
