"""The PostgreSQL stores against a real server: the file stores' interfaces, the
migrations, the reference files, export and import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from mlstack.artifacts import ArtifactError, ArtifactStore, SupersededError, save_copy
from mlstack.db import migrate, migrations
from mlstack.feedback import read_feedback
from mlstack.prod_store import ProdDataStore, prod_columns
from mlstack.settings import PipelineSettings
from mlstack.stores import engine, fetch_reference_files, open_artifact_store, open_prod_store

ROOT = Path(__file__).resolve().parents[2]


def settings_for(url: str, root: Path) -> PipelineSettings:
    return PipelineSettings(project_root=root, database_url=url)


def copy_versions(source: ArtifactStore, target, count: int = 1) -> None:
    """Versions of a file store saved into `target` (each from the previous one)."""
    artifacts = source.load()
    for _ in range(count):
        save_copy(target, artifacts)


def test_feedback_rows_have_the_files_columns_and_are_stored_once(database_url, tmp_path):
    store = open_prod_store(settings_for(database_url, tmp_path), 4)
    assert store.rows() == 0
    assert store.read().empty
    assert list(store.read().columns) == prod_columns(4)
    vectors = np.random.default_rng(0).normal(size=(5, 4))
    counts = [
        store.append(v, i % 3, 2, timestamp=f"t{i}", model_version=1, prediction_id=f"id{i}")
        for i, v in enumerate(vectors)
    ]
    assert counts == [1, 2, 3, 4, 5]
    # A retried request (same prediction_id) is stored once and gets its first count.
    assert store.append(vectors[1], 1, 2, timestamp="x", model_version=1, prediction_id="id1") == 2
    assert store.rows() == 5
    frame = store.read()
    assert list(frame.columns) == prod_columns(4)
    assert frame["prediction_id"].tolist() == [f"id{i}" for i in range(5)]
    np.testing.assert_array_equal(frame[[f"PCA_{i}" for i in range(1, 5)]].to_numpy(), vectors)
    assert frame["target"].tolist() == [0, 1, 2, 0, 1]  # numbers, as read_csv gives them
    assert store.read(["target", "prediction_id"]).shape == (5, 2)
    assert store.repair() == 0
    # retraining reads it through the same function as the file
    rows = read_feedback(store, 4, 3)
    assert rows.seen == 5
    assert len(rows) == 3


def test_a_table_of_other_columns_is_refused(database_url, tmp_path):
    open_prod_store(settings_for(database_url, tmp_path), 4)
    with pytest.raises(ValueError, match="other columns"):
        open_prod_store(settings_for(database_url, tmp_path), 5)


def test_migrations_are_numbered_files_applied_once(database_url, tmp_path):
    eng = engine(settings_for(database_url, tmp_path))
    assert migrate(eng) == []  # applied when the engine was made
    with eng.connect() as conn:
        applied = conn.execute(sa.text("SELECT version, name FROM schema_version")).fetchall()
    assert [(n, name) for n, name, _ in migrations()] == [tuple(r) for r in applied]
    assert applied[0][1].startswith("001_")


def test_versions_current_pointer_gate_and_pruning(database_url, tmp_path, trained):
    store = open_artifact_store(settings_for(database_url, tmp_path))
    assert store.current_version() is None
    assert not store.exists()
    files = ArtifactStore(trained.artifacts_dir)
    copy_versions(files, store, 3)
    assert store.versions() == [1, 2, 3]
    assert store.current_version() == 3
    loaded = store.load()
    assert loaded.version == 3
    assert loaded.manifest.parent_version == 2
    assert loaded.classifier.classes == files.load().classifier.classes
    # A rejected candidate is kept, never current, and cannot be activated.
    source = files.load()
    rejected = store.save(
        source.embedding,
        source.classifier,
        rows={},
        metrics={},
        reason="retraining",
        gate={"accepted": False, "reason": "worse"},
        base_version=3,
    )
    assert rejected.rejected
    assert store.current_version() == 3
    with pytest.raises(ArtifactError, match="rejected"):
        store.activate(rejected.version)
    with pytest.raises(SupersededError):
        store.save(
            source.embedding, source.classifier, rows={}, metrics={}, reason="x", base_version=2
        )
    assert store.activate(1).version == 1
    assert store.current_version() == 1
    assert [h["version"] for h in store.history()] == [1, 2, 3, 4]
    assert store.history()[3]["gate"]["accepted"] is False
    store.pin(2)
    assert store.pinned() == [2]
    # keep 1: never the current (1), its parent (none), a pinned one (2)
    assert store.prune(1) == [3]
    assert store.versions() == [1, 2, 4]
    with pytest.raises(ArtifactError):
        store.pin(99)


def test_a_tampered_pickle_is_refused(database_url, tmp_path, trained):
    settings = settings_for(database_url, tmp_path)
    store = open_artifact_store(settings)
    copy_versions(ArtifactStore(trained.artifacts_dir), store)
    with engine(settings).begin() as conn:
        conn.execute(sa.text("UPDATE model_versions SET model = :b"), {"b": b"\x80\x04N."})
    with pytest.raises(ArtifactError, match="sha256"):
        store.load()


def run_script(name: str, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / name), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_export_import_round_trip(postgres, trained, tmp_path):
    """prod_data.csv -> table -> prod_data.csv gives the same rows; a second import of the
    same file stores nothing more."""
    n = ArtifactStore(trained.artifacts_dir).manifest().n_components
    source = tmp_path / "source.csv"
    files = ProdDataStore(source, n)
    rng = np.random.default_rng(1)
    for i in range(25):
        files.append(
            rng.normal(size=n),
            i % 10,
            (i * 3) % 10,
            timestamp=f"2026-01-01T00:{i:02d}",
            model_version=1 + i // 10,
            prediction_id=f"p{i:03d}",
        )
    url = postgres.create_database()
    store = open_artifact_store(settings_for(url, tmp_path))
    copy_versions(ArtifactStore(trained.artifacts_dir), store)
    env = {"DATABASE_URL": url, "DATA_DIR": str(tmp_path / "data")}
    assert "25 new, the table holds 25" in run_script("import_prod.py", env, "--file", str(source))
    assert "0 new, the table holds 25" in run_script("import_prod.py", env, "--file", str(source))
    out = tmp_path / "data" / "prod_data.csv"
    assert "wrote 25 rows" in run_script("export_prod.py", env)
    assert out.read_text().splitlines()[0] == ",".join(prod_columns(n))
    pd.testing.assert_frame_equal(ProdDataStore(out, n).read(), files.read())


def test_import_moves_a_file_deployments_model_and_rows(postgres, trained, tmp_path):
    """Into an empty database, import_prod.py copies the version in use (the same
    pickles) and the reference files before the rows; a second run copies no model."""
    source = ArtifactStore(trained.artifacts_dir)
    n = source.manifest().n_components
    rows = tmp_path / "rows.csv"
    ProdDataStore(rows, n).append(
        np.zeros(n), 3, 5, timestamp="2026-01-01T00:00", model_version=1, prediction_id="a1"
    )
    url = postgres.create_database()
    env = {
        "DATABASE_URL": url,
        "DATA_DIR": str(trained.data_dir),
        "ARTIFACTS_DIR": str(trained.artifacts_dir),
    }
    out = run_script("import_prod.py", env, "--file", str(rows))
    assert "copied the model in use" in out
    assert "1 new, the table holds 1" in out
    database = open_artifact_store(settings_for(url, tmp_path))
    assert database.versions() == [1]
    # The same model: its figures, and its answers on the reference rows.
    assert database.manifest().metrics == source.manifest().metrics
    ref = pd.read_csv(trained.ref_data_path)
    vectors = ref[[c for c in ref.columns if c.startswith("PCA_")]].to_numpy()
    copied, original = database.load().classifier, source.load().classifier
    np.testing.assert_array_equal(copied.predict(vectors), original.predict(vectors))
    elsewhere = settings_for(url, tmp_path / "node")  # a node with an empty DATA_DIR
    assert fetch_reference_files(elsewhere)
    assert (elsewhere.data_dir / "ref_data.csv").read_bytes() == (
        trained.data_dir / "ref_data.csv"
    ).read_bytes()
    again = run_script("import_prod.py", env, "--file", str(rows))
    assert "copied" not in again
    assert "0 new, the table holds 1" in again
    assert database.versions() == [1]
