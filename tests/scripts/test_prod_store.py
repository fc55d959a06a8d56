import csv
import multiprocessing

import numpy as np
import pytest
from mlstack import prod_store
from mlstack.embedding import feature_columns
from mlstack.prod_store import ProdDataStore, prod_columns

N = 4


def _append(store: ProdDataStore, i: int, target: int = 1) -> int:
    return store.append(
        np.arange(N) + i / 10,
        target,
        7,
        timestamp="2026-01-01T00:00:00+00:00",
        model_version=1,
        prediction_id=f"id-{i}",
    )


def _rows(path) -> list[list[str]]:
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def test_header_once_then_one_line_per_append(tmp_path) -> None:
    store = ProdDataStore(tmp_path / "prod_data.csv", N)
    assert store.rows() == 0
    assert [_append(store, i) for i in range(3)] == [1, 2, 3]
    lines = _rows(store.path)
    assert lines[0] == prod_columns(N)
    assert lines[0][: N + 2] == ["PCA_1", "PCA_2", "PCA_3", "PCA_4", "target", "prediction"]
    assert len(lines) == 4
    assert float(lines[2][1]) == pytest.approx(1.1)
    assert lines[3][-1] == "id-2"


def test_count_survives_a_new_store_object_and_an_outside_edit(tmp_path) -> None:
    path = tmp_path / "prod_data.csv"
    store = ProdDataStore(path, N)
    for i in range(5):
        _append(store, i)
    assert ProdDataStore(path, N).rows() == 5
    # A row appended behind the store's back: the size no longer matches the sidecar.
    with open(path, "a") as handle:
        handle.write("9,9,9,9,1,1,t,1,x\n")
    assert ProdDataStore(path, N).rows() == 6
    assert _append(ProdDataStore(path, N), 9) == 7


def test_a_torn_last_line_is_cut_on_repair(tmp_path) -> None:
    path = tmp_path / "prod_data.csv"
    store = ProdDataStore(path, N)
    _append(store, 0)
    _append(store, 1)
    with open(path, "a") as handle:
        handle.write("0.5,0.25,")  # a crash in the middle of a line
    assert store.repair() == len("0.5,0.25,")
    assert store.rows() == 2
    assert _append(store, 2) == 3
    assert all(len(row) == len(prod_columns(N)) for row in _rows(path))


def test_other_columns_are_refused_not_mixed(tmp_path) -> None:
    path = tmp_path / "prod_data.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="other columns"):
        _append(ProdDataStore(path, N), 0)
    assert path.read_text() == "a,b\n1,2\n"


def _worker(path: str, worker: int, count: int) -> None:
    store = ProdDataStore(path, N)
    for i in range(count):
        _append(store, worker * 1000 + i, target=worker)


def test_concurrent_appends_from_processes_lose_no_row(tmp_path) -> None:
    path = tmp_path / "prod_data.csv"
    workers, per_worker = 4, 50
    ctx = multiprocessing.get_context("spawn")
    processes = [
        ctx.Process(target=_worker, args=(str(path), w, per_worker)) for w in range(workers)
    ]
    for p in processes:
        p.start()
    for p in processes:
        p.join(120)
        assert p.exitcode == 0
    lines = _rows(path)
    assert lines[0] == prod_columns(N)
    body = lines[1:]
    assert len(body) == workers * per_worker
    assert all(len(row) == len(prod_columns(N)) for row in body)
    assert len({row[-1] for row in body}) == workers * per_worker  # every id once
    assert ProdDataStore(path, N).rows() == workers * per_worker


def test_read_leaves_out_a_torn_last_line_and_never_writes(tmp_path) -> None:
    path = tmp_path / "prod_data.csv"
    store = ProdDataStore(path, N)
    assert list(store.read().columns) == prod_columns(N)  # absent: no rows, the columns
    assert store.read().empty
    path.write_text("")
    assert store.read(["PCA_1", "target"]).columns.tolist() == ["PCA_1", "target"]
    _append(store, 0)
    _append(store, 1, target=3)
    with open(path, "a") as handle:
        handle.write("0.5,0.25,")  # a write still under way
    before = path.read_bytes()
    frame = store.read()
    assert frame["prediction_id"].tolist() == ["id-0", "id-1"]
    assert frame["PCA_2"].tolist() == [1.0, 1.1]  # exactly the values written
    assert store.read(["target"])["target"].tolist() == [1, 3]
    assert path.read_bytes() == before  # reading repairs nothing on disk


def test_the_columns_read_the_same_with_or_without_pyarrow(tmp_path, monkeypatch) -> None:
    # The serving image has no pyarrow: retraining there reads with pandas' own parser.
    store = ProdDataStore(tmp_path / "prod_data.csv", N)
    rng = np.random.default_rng(0)
    for i in range(50):
        store.append(
            rng.normal(size=N) / 3,
            i % 10,
            (i + 1) % 10,
            timestamp="2026-01-01T00:00:00+00:00",
            model_version=1,
            prediction_id=f"{i}",
        )
    columns = [*feature_columns(N), "target", "prediction", "model_version", "prediction_id"]
    assert prod_store.HAS_PYARROW  # the test environment has it (Evidently's dependency)
    fast = store.read(columns)
    monkeypatch.setattr(prod_store, "HAS_PYARROW", False)
    plain = store.read(columns)
    assert len(fast) == 50
    for column in columns:
        assert fast[column].astype(str).tolist() == plain[column].astype(str).tolist(), column
