"""One label parser for the whole web app: the API's JSON, sample file names, the page."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlstack_webapp.labels import parse_label
from mlstack_webapp.samples import list_samples


@pytest.mark.parametrize(
    ("value", "label"),
    [(7, 7), (7.0, 7), ("7", 7), (" 7 ", 7), ("-1", -1), ("cat", "cat"), ("7b", "7b")],
    ids=repr,
)
def test_integers_stay_integers_and_other_text_is_text(value: object, label: object) -> None:
    assert parse_label(value) == label
    assert type(parse_label(value)) is type(label)


@pytest.mark.parametrize("value", [True, 7.5, None, [7], {"7": 1}], ids=repr)
def test_what_is_no_label_is_refused(value: object) -> None:
    with pytest.raises(TypeError, match="not a label"):
        parse_label(value)


def test_sample_names_give_their_label_by_the_same_rule(tmp_path: Path) -> None:
    for name in ("3_0101.png", "10_0002.jpg", "cat_0001.jpeg", "dog.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "7_0001.png").mkdir()  # a folder is no sample
    samples = list_samples(tmp_path)
    assert [(s.label, s.path.name) for s in samples] == [
        (3, "3_0101.png"),
        (10, "10_0002.jpg"),
        ("cat", "cat_0001.jpeg"),
        ("dog", "dog.png"),
    ]
    assert samples[0].title == "3  (3_0101.png)"
    assert list_samples(tmp_path / "missing") == []
