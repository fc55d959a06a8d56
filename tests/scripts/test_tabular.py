"""A table as the data set: the embedding (preprocessing + PCA), its schema and the
example tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlstack.artifacts import ArtifactStore
from mlstack.examples import TABLES, main, write_table
from mlstack.pipeline import bootstrap
from mlstack.settings import PipelineSettings
from mlstack.tabular import RowError, TableEmbedding, TableError, load_table


@pytest.mark.parametrize("name", sorted(TABLES))
def test_each_example_table_trains_with_one_setting(name: str, tmp_path: Path) -> None:
    csv = write_table(name, tmp_path / "examples")
    settings = PipelineSettings(project_root=tmp_path / "project", dataset_csv=csv)
    artifacts = bootstrap(settings)
    manifest = artifacts.manifest
    frame = pd.read_csv(csv)
    features = frame.shape[1] - 1
    # n_components capped at the number of encoded features (wine: 13 < 30)
    assert manifest.n_components == min(30, features)
    assert manifest.extra["kind"] == "table"
    assert [c["name"] for c in manifest.extra["schema"]["columns"]] == list(frame.columns[:-1])
    assert all(isinstance(c, str) for c in manifest.classes)  # text labels
    assert manifest.metrics["holdout"]["f1_macro"] > 0.9
    ref = pd.read_csv(settings.ref_data_path)
    assert list(ref.columns) == [
        *(f"PCA_{i}" for i in range(1, manifest.n_components + 1)),
        "target",
    ]
    assert len(ref) == len(frame)
    assert not settings.synthetic_data_path.exists()  # no synthetic digits for a table
    # The embedding is frozen in embedding.pkl: it re-embeds the table to ref_data.csv.
    loaded = ArtifactStore(settings.artifacts_dir).load()
    again = loaded.embedding.transform_frame(frame.drop(columns=["target"]))
    np.testing.assert_allclose(again, ref.iloc[:, :-1].to_numpy(), rtol=1e-9, atol=1e-9)


def test_the_module_writes_the_tables(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    main(["wine", "--out", str(tmp_path)])
    assert (tmp_path / "wine.csv").is_file()
    assert "DATASET_CSV=" in capsys.readouterr().out


def test_schema_categories_ranges_and_row_checks(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    pd.DataFrame(
        {
            "size": [1.0, 2.5, None, 4.0, 5.0, 6.0],
            "count": [1, 2, 3, 4, 5, 6],
            "colour": ["red", "blue", "red", None, "blue", "red"],
            "label": [7, 7, 7, 9, 9, 9],
        }
    ).to_csv(path, index=False)
    table = load_table(path, "label")
    schema = table.schema.to_dict()
    by_name = {c["name"]: c for c in schema["columns"]}
    assert by_name["size"] == {
        "name": "size",
        "type": "number",
        "nullable": True,
        "min": 1.0,
        "max": 6.0,
        "integer": False,
    }
    assert by_name["count"]["nullable"] is False
    assert by_name["count"]["integer"] is True
    assert by_name["colour"]["categories"] == ["blue", "red"]
    assert table.labels.tolist() == [7, 7, 7, 9, 9, 9]  # integer labels stay integers
    check = table.schema.check_row
    assert check({"size": None, "count": 3, "colour": "green"})[1] == {"colour": "green"}
    for row, column in [
        ({"size": 1.0, "count": 3}, "colour"),
        ({"size": 1.0, "count": 3, "colour": "red", "x": 1}, "x"),
        ({"size": "1", "count": 3, "colour": "red"}, "size"),
        ({"size": 1.0, "count": None, "colour": "red"}, "count"),
        ({"size": float("nan"), "count": 1, "colour": "red"}, "size"),
    ]:
        with pytest.raises(RowError) as caught:
            check(row)
        assert caught.value.column == column
        assert column in caught.value.message


def test_a_table_without_its_target_or_with_one_label_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    pd.DataFrame({"a": [1, 2, 3], "label": ["x", "x", "x"]}).to_csv(path, index=False)
    with pytest.raises(TableError, match="'target'"):
        load_table(path, "target")
    with pytest.raises(TableError, match="fewer than two labels"):
        load_table(path, "label")
    with pytest.raises(ValueError, match="not both"):
        PipelineSettings(dataset_dir=tmp_path, dataset_csv=path)


def test_the_numpy_encoding_equals_scikit_learns_transform(tmp_path: Path) -> None:
    """ref_data.csv and every request go through TableEmbedding._encode (plain arrays);
    it gives the fitted ColumnTransformer's own numbers, nulls and unknown categories
    included, and survives a pickle round trip."""
    import pickle

    from tests.support.tables import write_table

    path = write_table(tmp_path / "t.csv")
    table = load_table(path, "target")
    embedding = TableEmbedding.fit(table.features, table.schema, 30)
    frame = table.features.copy()
    frame.loc[frame.index[:5], "colour"] = "teal"  # never seen in training
    expected = (embedding.preprocess_reference(frame) - embedding.pca.mean_) @ (
        embedding.pca.components_.T
    )
    np.testing.assert_allclose(embedding.transform_frame(frame), expected, atol=1e-12)
    again = pickle.loads(pickle.dumps(embedding))
    row = {k: (None if pd.isna(v) else v) for k, v in frame.iloc[0].items()}
    vector, unknown = again.embed_row(row)
    assert unknown == {"colour": "teal"}
    np.testing.assert_allclose(vector, expected[0], atol=1e-12)
    # 13 numbers + 3 colours: the PCA is capped at 16 encoded features.
    assert embedding.n_features == 16
    assert embedding.n_components == 16


def test_the_vectors_give_the_tables_own_columns_back(tmp_path: Path) -> None:
    """The report's raw-column drift reads prod_data.csv's vectors as table columns: with
    every encoded feature kept, numbers come back exactly (imputed where null) and each
    category as itself, an unseen one as unknown; with fewer components, close."""
    from mlstack.tabular import UNKNOWN_CATEGORY

    from tests.support.tables import write_table

    table = load_table(write_table(tmp_path / "t.csv"), "target")
    frame = table.features.copy()
    frame.loc[frame.index[:3], "colour"] = "teal"  # never seen in training
    embedding = TableEmbedding.fit(table.features, table.schema, 30)
    back = embedding.columns_back(embedding.transform_frame(frame))
    assert list(back.columns) == table.schema.names
    for name in table.schema.numeric:
        medians = table.features[name].median()
        np.testing.assert_allclose(back[name], frame[name].fillna(medians), atol=1e-9)
    for name in table.schema.categorical:
        seen = frame[name].fillna(table.features[name].mode()[0])
        expected = seen.where(seen != "teal", UNKNOWN_CATEGORY)
        assert back[name].tolist() == expected.tolist()
    # Fewer components than encoded features: an approximation, on the same scale.
    small = TableEmbedding.fit(table.features, table.schema, 8)
    approx = small.columns_back(small.transform_frame(table.features))
    first = table.schema.numeric[0]
    assert np.corrcoef(approx[first], table.features[first].fillna(0))[0, 1] > 0.5
