"""Accuracy on real-world-like images the model never saw, through the real trained
artifacts and the scripts a user runs: make_realworld_set.py writes the images,
evaluate_realworld.py sends each file's bytes through embedding, scaler and
classifier as serving does.

The printed digits use evaluation fonts only (Liberation, FreeFont, URW base35),
never the fonts used while tuning, which are the only ones training prints with
(DejaVu)."""

import hashlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlstack import augment
from mlstack.artifacts import ArtifactStore
from mlstack.settings import PipelineSettings

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def _script_module(name: str):
    """A script of scripts/ as a module, without putting scripts/ on sys.path."""
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


find_fonts = _script_module("make_realworld_set").find_fonts
EVAL_FONTS = find_fonts(["eval"])
needs_fonts = pytest.mark.skipif(
    not EVAL_FONTS,
    reason="no evaluation font (apt-get install fonts-liberation fonts-freefont-ttf "
    "fonts-urw-base35; tools/setup-machine.sh does it)",
)


def run(script: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(SCRIPTS / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return result.stdout


def generate_and_evaluate(
    out: Path, artifacts: Path, kinds: list[str], per_label: int, seed: int
) -> dict:
    run(
        "make_realworld_set.py",
        *("--out", str(out), "--per-label", str(per_label), "--seed", str(seed)),
        *("--kinds", *kinds),
    )
    return json.loads(
        run("evaluate_realworld.py", str(out), "--artifacts", str(artifacts), "--json")
    )


@needs_fonts
@pytest.mark.slow
def test_printed_digits_in_unseen_fonts(trained_root: Path, tmp_path: Path) -> None:
    result = generate_and_evaluate(
        tmp_path / "fonts", trained_root / "artifacts", ["font-photo", "font-scan"], 8, 4242
    )
    assert result["images"] == 80
    assert not result["unreadable"]
    assert result["accuracy"] >= 0.95, result["by_class"]
    assert len(result["by_font"]) >= 20  # many fonts, never the tuning ones
    assert not any(font.startswith("DejaVu") for font in result["by_font"])


@pytest.mark.slow
def test_drawn_digits_photographed_and_from_a_canvas(trained_root: Path, tmp_path: Path) -> None:
    result = generate_and_evaluate(
        tmp_path / "strokes", trained_root / "artifacts", ["stroke-photo", "stroke-canvas"], 6, 4343
    )
    assert result["images"] == 60
    assert result["accuracy"] >= 0.90, result["by_class"]
    confusion = np.array(result["confusion"])
    assert confusion.sum() == 60
    assert np.trace(confusion) == round(result["accuracy"] * 60)


def test_without_synthetic_rows_real_world_accuracy_drops(
    trained_root: Path, tmp_path: Path
) -> None:
    """The synthetic training rows are what carries real-world accuracy: a model
    trained on the digits alone does much worse on the same images."""
    from mlstack.pipeline import train_initial

    plain = PipelineSettings(
        project_root=tmp_path / "plain", synthetic_per_label=0, printed_per_label=0
    )
    train_initial(plain)
    assert not plain.synthetic_data_path.exists()
    out = tmp_path / "set"
    run(
        "make_realworld_set.py",
        *("--out", str(out), "--per-label", "4", "--seed", "99"),
        *("--kinds", "stroke-photo", "stroke-canvas"),
    )
    with_rows = json.loads(
        run(
            "evaluate_realworld.py",
            str(out),
            "--artifacts",
            str(trained_root / "artifacts"),
            "--json",
        )
    )
    without = json.loads(
        run("evaluate_realworld.py", str(out), "--artifacts", str(plain.artifacts_dir), "--json")
    )
    assert with_rows["accuracy"] >= without["accuracy"] + 0.15


def test_reference_keeps_the_data_sets_own_images(trained_root: Path) -> None:
    settings = PipelineSettings(project_root=trained_root)
    manifest = ArtifactStore(settings.artifacts_dir).manifest()
    assert manifest.rows["synthetic"] == 10 * (
        settings.synthetic_per_label + settings.printed_per_label
    )
    assert manifest.rows["total"] == manifest.rows["ref"] + manifest.rows["synthetic"]
    assert manifest.metrics["holdout"]["accuracy"] >= 0.98
    assert len(pd.read_csv(settings.ref_data_path)) == 1797
    synthetic = pd.read_csv(settings.synthetic_data_path)
    assert len(synthetic) == manifest.rows["synthetic"]
    assert sorted(synthetic["target"].unique()) == list(range(10))


def test_shipped_synthetic_cache_matches_the_code() -> None:
    """The cached synthetic grids were made by this very code: a first training
    reads them instead of drawing 3,680 images (and needs no font file), and they
    are what drawing gives: the strokes first, then the printed digits."""
    settings = PipelineSettings()
    fmt = augment.DIGITS_FORMAT
    strokes, printed = settings.synthetic_per_label, settings.printed_per_label
    fingerprint = augment._fingerprint(strokes, printed, settings.random_state, fmt)
    with np.load(augment.CACHE_PATH) as stored:
        assert str(stored["fingerprint"]) == fingerprint, (
            "scripts/mlstack/synthetic_digits.npz is stale: delete it and run "
            "python -c 'from mlstack.augment import training_grids; "
            f"training_grids({strokes}, printed_per_label={printed})' "
            "with the DejaVu fonts installed (tools/setup-machine.sh)"
        )
        cells, labels = stored["cells"] / fmt.levels, stored["labels"]
    assert len(cells) == 10 * (strokes + printed)
    drawn, drawn_labels = augment.synthetic_grids(3, settings.random_state, fmt)
    np.testing.assert_array_equal(drawn, cells[:30])
    assert drawn_labels.tolist() == labels[:30].tolist() == list(range(10)) * 3
    fonts = augment.training_fonts()
    if fonts is None:
        pytest.skip("the DejaVu fonts are not all installed: the printed rows cannot be drawn")
    drawn, drawn_labels = augment.printed_grids(3, settings.random_state, fmt, fonts)
    first = 10 * strokes
    np.testing.assert_array_equal(drawn, cells[first : first + 30])
    assert drawn_labels.tolist() == labels[first : first + 30].tolist()


def test_training_prints_with_the_tuning_fonts_only() -> None:
    """The evaluation fonts stay out of training: the printed rows use DejaVu faces,
    none of which is an evaluation font."""
    assert len(augment.TRAINING_FACES) == 21
    assert all(face.startswith("DejaVu") for face in augment.TRAINING_FACES)
    assert not {font.stem for font in EVAL_FONTS} & set(augment.TRAINING_FACES)
    fonts = augment.training_fonts()
    if fonts is not None:
        assert {font.stem for font in fonts} == set(augment.TRAINING_FACES)


def test_without_the_fonts_training_keeps_the_strokes_and_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A stale cache where the fonts are missing: the stroke rows are drawn, the
    printed ones left out with a warning, and no cache claims rows it does not hold.
    With the fonts, both are drawn and cached, and the cache is read back."""
    cache = tmp_path / "rows.npz"
    monkeypatch.setattr(augment, "FONT_ROOT", tmp_path / "no-fonts")
    grids, labels = augment.training_grids(2, 0, cache=cache, printed_per_label=1)
    assert grids.shape == (20, 8, 8)
    assert labels.tolist() == list(range(10)) * 2
    assert not cache.exists()
    assert "fonts-dejavu" in caplog.text
    monkeypatch.undo()
    if augment.training_fonts() is None:
        pytest.skip("the DejaVu fonts are not all installed")
    grids, labels = augment.training_grids(2, 0, cache=cache, printed_per_label=1)
    assert grids.shape == (30, 8, 8)
    assert labels.tolist() == list(range(10)) * 3
    again, _ = augment.training_grids(2, 0, cache=cache, printed_per_label=1)
    levels = augment.DIGITS_FORMAT.levels
    np.testing.assert_array_equal(again, np.round(grids * levels) / levels)


def test_generated_sets_are_deterministic(tmp_path: Path) -> None:
    args = ("--per-label", "2", "--seed", "5", "--kinds", "stroke-photo", "stroke-canvas")
    run("make_realworld_set.py", "--out", str(tmp_path / "a"), *args)
    run("make_realworld_set.py", "--out", str(tmp_path / "b"), *args)

    def digest(root: Path) -> dict[str, str]:
        return {
            str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))
            if p.is_file()
        }

    first = digest(tmp_path / "a")
    assert len(first) == 21  # 20 images and the index
    assert first == digest(tmp_path / "b")
