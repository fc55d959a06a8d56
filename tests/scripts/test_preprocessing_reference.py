"""The preprocessing against its recorded outputs (preprocessing_reference.npz, made by
preprocessing_reference.py with the preprocessing as it was before it was made about
ten times faster on a canvas drawing).

The faster preprocessing works on a copy of an upload reduced by a whole factor
(its longest side between 128 and 255 pixels, where it was resampled to 192), so its
grids are not bit-for-bit the old ones; the model, retrained on synthetic rows made by
the same code, must still answer the same. The tolerances, from the measured
differences with some room:
- the data set's own 8x8 files (the samples) are taken as they are: identical grids,
  identical predictions;
- elsewhere a grid's cells move by under one level of 16 on average (measured: 0.026
  to 0.030 of the [0, 1] range), and the predicted class is the recorded one for at
  least 97% of the images of every set (measured: 98.7% of the 1,200 real-world
  images, 99% of the 400 tuning ones, all the canvas drawings; 97.5% of the
  enlarged digits, held to 95%);
- no set has more wrong answers than recorded but one in 200 (measured: real-world
  98.0% -> 98.1%, tuning 98.25% -> 98.0%, canvas 99.5% -> 99.5%); the enlarged digits,
  but one in 100 (measured: 340 of 400 recorded, 338 with the faster preprocessing,
  337 once the training rows added printed digits: 190 of the 200 smooth enlargements
  where 189, 147 of the 200 blocky ones where 149; the same class for 95.25%).

The model has since been retrained with digits printed in the tuning fonts added to
its rows (docs/model.md): the real-world sets gain (the whole evaluation set 98.1% ->
99.2%) and their answers move from the recorded ones by what was gained.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mlstack.artifacts import ArtifactStore
from mlstack.preprocessing import DIGITS_FORMAT, bytes_to_format

from tests.scripts import preprocessing_reference as ref
from tests.scripts.test_realworld import needs_fonts


@pytest.fixture(scope="module")
def reference() -> dict[str, dict[str, np.ndarray]]:
    with np.load(ref.REFERENCE) as stored:
        sets: dict[str, dict[str, np.ndarray]] = {}
        for key in stored.files:
            name, field = key.split("/")
            sets.setdefault(name, {})[field] = stored[key]
    return sets


def compare(
    name: str, files, reference, artifacts_dir: Path, agreement: float, more_wrong: int = 200
) -> None:
    """`more_wrong`: one more wrong answer than recorded is allowed per that many images."""
    files = list(files)
    # A prefix of a recorded set: the same first images.
    recorded = {key: value[: len(files)] for key, value in reference[name].items()}
    assert [f for f, _, _ in files] == recorded["names"].tolist()
    if [ref.digest(data) for _, _, data in files] != recorded["digests"].tolist():
        pytest.skip(f"{name}: the generator makes other files here (fonts or Pillow differ)")
    grids = np.stack([bytes_to_format(data, **ref.LIMITS) for _, _, data in files])
    old = recorded["cells"] / DIGITS_FORMAT.levels
    assert np.abs(grids - old).mean() < 1 / DIGITS_FORMAT.levels, name
    artifacts = ArtifactStore(artifacts_dir).load()
    predicted = artifacts.classifier.predict(artifacts.embedding.transform(grids))
    same = float(np.mean(predicted == recorded["predicted"]))
    assert same >= agreement, (name, same)
    labels = recorded["labels"]
    right, right_before = (
        int((predicted == labels).sum()),
        int((recorded["predicted"] == labels).sum()),
    )
    assert right >= right_before - len(labels) // more_wrong, (name, right, right_before)


def test_samples_are_taken_as_they_are(reference, trained_root: Path) -> None:
    recorded = reference["samples"]
    files = list(ref.samples(trained_root))
    grids = np.stack([bytes_to_format(data, **ref.LIMITS) for _, _, data in files])
    np.testing.assert_array_equal(grids * DIGITS_FORMAT.levels, recorded["cells"])
    artifacts = ArtifactStore(trained_root / "artifacts").load()
    predicted = artifacts.classifier.predict(artifacts.embedding.transform(grids))
    np.testing.assert_array_equal(predicted, recorded["predicted"])


def test_canvas_drawings(reference, trained_root: Path) -> None:
    compare("canvas", ref.canvas_drawings(), reference, trained_root / "artifacts", 0.97)


def test_enlarged_digits(reference, trained_root: Path) -> None:
    # Their grids are the recorded ones (96 px: no reduction), but the model is retrained
    # on synthetic rows from the new code; half are blocky enlargements whose faint
    # cells sit at the threshold (85% right), where the class moves more easily.
    compare(
        "digits-enlarged", ref.enlarged_digits(), reference, trained_root / "artifacts", 0.95, 100
    )


@needs_fonts
@pytest.mark.slow
@pytest.mark.parametrize("name", list(ref.REALWORLD_SETS))
def test_realworld_sets(name: str, reference, trained_root: Path) -> None:
    # The first 400 images of each (drawing 1,200 takes minutes on a busy machine; the
    # whole evaluation set: 98.0% recorded, 98.1% with the faster preprocessing, 99.2%
    # with the printed training rows, the same class for 98.0%).
    files = ref.realworld_files(name, per_label=40)
    compare(name, files, reference, trained_root / "artifacts", 0.97)
