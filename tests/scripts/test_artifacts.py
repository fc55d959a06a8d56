import json
import multiprocessing
import os
import pickle

import pytest
from mlstack import artifacts as artifacts_module
from mlstack.artifacts import ArtifactError, ArtifactStore
from mlstack.settings import PipelineSettings


def test_flat_names_point_at_the_current_version(project: PipelineSettings) -> None:
    store = ArtifactStore(project.artifacts_dir)
    assert store.current_version() == 1
    for name in ("embedding.pkl", "scaler.pkl", "model.pkl", "manifest.json"):
        assert (project.artifacts_dir / name).resolve().parent == store.version_dir(1).resolve()
    manifest = json.loads((project.artifacts_dir / "manifest.json").read_text())
    assert manifest["version"] == 1
    assert set(manifest["files"]) == {"embedding.pkl", "scaler.pkl", "model.pkl"}
    assert manifest["metrics"]["holdout"]["accuracy"] >= 0.98


def test_save_adds_a_version_and_keeps_the_old_one(project: PipelineSettings) -> None:
    store = ArtifactStore(project.artifacts_dir)
    current = store.load()
    manifest = store.save(
        current.embedding, current.classifier, rows={"total": 1}, metrics={}, reason="test"
    )
    assert manifest.version == 2
    assert manifest.parent_version == 1
    assert store.versions() == [1, 2]
    assert store.load().version == 2
    assert store.activate(1).version == 1  # rollback
    assert store.load().version == 1


def test_tampered_pickle_is_refused(project: PipelineSettings) -> None:
    store = ArtifactStore(project.artifacts_dir)
    path = store.version_dir(1) / "model.pkl"
    # A valid pickle, but not the one the manifest vouches for.
    path.write_bytes(pickle.dumps({"not": "the model"}))
    with pytest.raises(ArtifactError, match="sha256"):
        store.load()


def test_missing_artifacts_give_a_clear_error(tmp_path) -> None:
    with pytest.raises(ArtifactError, match="no artifacts"):
        ArtifactStore(tmp_path / "empty").load()


def _crash_while_saving(artifacts_dir: str, crash_point: str) -> None:
    """Start a save and kill this process hard at `crash_point`."""
    store = ArtifactStore(artifacts_dir)
    current = store.load()
    real = {"write": artifacts_module._write_durably, "rename": os.rename}
    calls = {"write": 0}

    def write(path, data):
        calls["write"] += 1
        if crash_point == "mid-write" and calls["write"] == 2:
            with open(path, "wb") as handle:
                handle.write(data[: len(data) // 2])
            os._exit(9)
        real["write"](path, data)

    def rename(src, dst):
        if crash_point == "before-activate":
            real["rename"](src, dst)
            os._exit(9)
        real["rename"](src, dst)

    artifacts_module._write_durably = write
    artifacts_module.os.rename = rename
    store.save(current.embedding, current.classifier, rows={}, metrics={}, reason="crash")


@pytest.mark.parametrize("crash_point", ["mid-write", "before-activate"])
def test_a_crash_while_saving_leaves_the_previous_set_loadable(
    project: PipelineSettings, crash_point: str
) -> None:
    ctx = multiprocessing.get_context("spawn")
    process = ctx.Process(
        target=_crash_while_saving, args=(str(project.artifacts_dir), crash_point)
    )
    process.start()
    process.join(60)
    assert process.exitcode == 9
    store = ArtifactStore(project.artifacts_dir)
    loaded = store.load()
    assert loaded.version == 1
    assert store.clean_staging() == (1 if crash_point == "mid-write" else 0)
    # The next save still works and gets a fresh number.
    manifest = store.save(loaded.embedding, loaded.classifier, rows={}, metrics={}, reason="after")
    assert store.load().version == manifest.version


def test_prune_keeps_the_newest_the_active_its_parent_and_pinned(project) -> None:
    store = ArtifactStore(project.artifacts_dir)
    first = store.load()
    for _ in range(7):  # versions 2..8
        store.save(first.embedding, first.classifier, rows={}, metrics={}, reason="test", extra={})
    store.pin(2)
    store.activate(4)  # a rollback: 4 in use, its parent is 3
    removed = store.prune(keep=2)
    assert removed == [1, 5, 6]
    assert store.versions() == [2, 3, 4, 7, 8]
    assert store.current_version() == 4
    assert store.load().version == 4
    assert not list(store.versions_dir.glob(".tmp-*"))
    store.pin(2, pinned=False)
    assert store.prune(keep=2) == [2]
