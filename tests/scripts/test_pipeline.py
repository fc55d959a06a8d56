import numpy as np
import pandas as pd
import pytest
from mlstack.artifacts import ArtifactStore
from mlstack.dataset import DatasetError, load_folder_dataset
from mlstack.embedding import feature_columns
from mlstack.fake_feedback import write_fake_feedback
from mlstack.gate import in_feedback_holdout
from mlstack.pipeline import bootstrap, read_reference
from mlstack.preprocessing import grid_to_png
from mlstack.prod_store import ProdDataStore
from mlstack.retraining import retrain
from mlstack.settings import PipelineSettings

LIMITS = {"max_bytes": 10_000_000, "max_pixels": 10_000_000}


def test_ref_data_layout(project: PipelineSettings) -> None:
    frame = pd.read_csv(project.ref_data_path)
    n = ArtifactStore(project.artifacts_dir).manifest().n_components
    assert list(frame.columns) == [*feature_columns(n), "target"]
    assert len(frame) == 1797
    assert sorted(frame["target"].unique()) == list(range(10))


def test_exported_samples_embed_to_their_reference_rows(project: PipelineSettings) -> None:
    """Train/serve parity: a sample file goes through the serving code path
    (bytes -> decode -> format -> PCA) and lands on its ref_data.csv vector."""
    artifacts = ArtifactStore(project.artifacts_dir).load()
    ref = read_reference(project, artifacts.embedding.n_components)
    samples = sorted(project.samples_dir.glob("*.png"))
    assert len(samples) >= 10
    for path in samples:
        label, row = (int(part) for part in path.stem.split("_"))
        vector = artifacts.embedding.embed_bytes(path.read_bytes(), **LIMITS)
        np.testing.assert_allclose(vector, ref.vectors[row], rtol=0, atol=1e-12)
        assert ref.targets[row] == label
        assert row in set(ref.holdout)  # never used for training


def test_retrain_uses_prod_rows_and_keeps_the_embedding(project: PipelineSettings) -> None:
    store = ArtifactStore(project.artifacts_dir)
    before = store.load()
    ref = read_reference(project, before.embedding.n_components)
    prod = ProdDataStore(project.prod_data_path, before.embedding.n_components)
    for row in ref.train[:20]:
        prod.append(
            ref.vectors[row],
            int(ref.targets[row]),
            int(ref.targets[row]),
            timestamp="t",
            model_version=1,
            prediction_id=str(row),
        )
    with open(project.prod_data_path, "a") as handle:
        handle.write("0.5,0.25,")  # a row still being written: ProdDataStore.read leaves it out
    manifest = retrain(project)
    assert manifest.version == 2
    assert manifest.rows["prod_seen"] == 20
    held = int(in_feedback_holdout([str(r) for r in ref.train[:20]], 0.2).sum())
    assert 0 < held < 20
    assert (manifest.rows["prod"], manifest.rows["prod_holdout"]) == (20 - held, held)
    assert manifest.gate["accepted"], manifest.gate
    assert manifest.metrics["feedback"]["rows"] == held
    assert manifest.metrics["holdout"]["accuracy"] >= 0.98
    after = store.load()
    assert after.manifest.files["embedding.pkl"] == before.manifest.files["embedding.pkl"]
    assert after.manifest.files["model.pkl"] != before.manifest.files["model.pkl"]


def test_max_training_rows_keeps_the_newest_feedback_rows(
    project: PipelineSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = read_reference(project, ArtifactStore(project.artifacts_dir).manifest().n_components)
    write_fake_feedback(project, 300, drift=0.3, predicted=False, pool=ref.train)
    ids = pd.read_csv(project.prod_data_path)["prediction_id"].tolist()
    base = len(ref.train) + (project.synthetic_per_label + project.printed_per_label) * 10
    monkeypatch.setenv("MAX_TRAINING_ROWS", str(base + 100))
    manifest = retrain(PipelineSettings(project_root=project.project_root))
    assert manifest.rows["prod_seen"] == 300
    assert manifest.rows["total"] <= base + 100
    assert manifest.rows["prod"] + manifest.rows["prod_holdout"] == 100
    # the newest 100 rows, not the oldest: their share in the hash-held-out differs
    newest, oldest = (int(in_feedback_holdout(part, 0.2).sum()) for part in (ids[-100:], ids[:100]))
    assert newest != oldest
    assert manifest.rows["prod_holdout"] == newest


def test_reference_holdout_images_sent_as_feedback_are_never_trained_on(
    project: PipelineSettings,
) -> None:
    store = ArtifactStore(project.artifacts_dir)
    ref = read_reference(project, store.manifest().n_components)
    prod = ProdDataStore(project.prod_data_path, ref.vectors.shape[1])
    for row in ref.holdout[:30]:
        target = int(ref.targets[row])
        prod.append(
            ref.vectors[row], target, target, timestamp="t", model_version=1, prediction_id=str(row)
        )
    manifest = retrain(project)
    assert (manifest.rows["prod"], manifest.rows["prod_holdout"]) == (0, 30)


def test_bootstrap_does_not_retrain_when_artifacts_exist(project: PipelineSettings) -> None:
    assert bootstrap(project).version == 1


def test_folder_dataset_skips_corrupt_files_and_needs_two_labels(tmp_path, caplog) -> None:
    rng = np.random.default_rng(0)
    for label in ("cat", "dog"):
        (tmp_path / label).mkdir()
        for i in range(3):
            grid = np.zeros((16, 16))
            grid[4:12, 3 + i : 6 + i] = 1.0 if label == "cat" else rng.uniform(0.5, 1)
            (tmp_path / label / f"{i}.png").write_bytes(grid_to_png(grid))
    (tmp_path / "dog" / "broken.png").write_bytes(b"not an image")
    dataset = load_folder_dataset(tmp_path)
    assert len(dataset) == 6
    assert dataset.classes == ["cat", "dog"]
    assert len(dataset.skipped) == 1
    assert "broken.png" in caplog.text
    with pytest.raises(DatasetError, match="is not a folder"):
        load_folder_dataset(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no images"):
        load_folder_dataset(tmp_path / "empty")
    one_label = tmp_path / "one"
    (one_label / "cat").mkdir(parents=True)
    (one_label / "cat" / "0.png").write_bytes((tmp_path / "cat" / "0.png").read_bytes())
    with pytest.raises(DatasetError, match="fewer than two labels"):
        load_folder_dataset(one_label)


def test_a_user_folder_trains_end_to_end(tmp_path) -> None:
    from PIL import Image, ImageDraw

    for label, shape in ((0, "ellipse"), (1, "rectangle")):
        (tmp_path / "images" / str(label)).mkdir(parents=True)
        for i in range(12):
            image = Image.new("RGB", (60 + i, 50), "white")
            draw = ImageDraw.Draw(image)
            getattr(draw, shape)((10 + i, 8, 40 + i, 40), outline="black", width=3)
            image.save(tmp_path / "images" / str(label) / f"{i}.jpg")
    settings = PipelineSettings(project_root=tmp_path, dataset_dir=tmp_path / "images")
    artifacts = bootstrap(settings)
    assert artifacts.classifier.classes == [0, 1]
    assert len(pd.read_csv(settings.ref_data_path)) == 24
