"""Accuracy of the trained model on a folder of real-world-like images.

Every file goes through the serving path: file bytes -> embedding (decode,
preprocessing, PCA) -> scaler -> classifier, with the artifacts as saved.

python scripts/evaluate_realworld.py /tmp/rw                    # current artifacts
python scripts/evaluate_realworld.py /tmp/rw --artifacts DIR --json
The folder holds one sub-folder per label; an index.csv (file,label,kind,font),
as scripts/make_realworld_set.py writes, adds accuracy per kind and per font.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from mlstack.artifacts import ArtifactStore
from mlstack.dataset import IMAGE_SUFFIXES
from mlstack.labels import parse_label
from mlstack.preprocessing import ImageError
from mlstack.settings import PipelineSettings


def _files(folder: Path) -> list[dict[str, str]]:
    index = folder / "index.csv"
    if index.exists():
        with open(index, newline="") as handle:
            return list(csv.DictReader(handle))
    return [
        {"file": str(path.relative_to(folder)), "label": label_dir.name, "kind": "", "font": ""}
        for label_dir in sorted(p for p in folder.iterdir() if p.is_dir())
        for path in sorted(label_dir.iterdir())
        if path.suffix.lower() in IMAGE_SUFFIXES
    ]


def evaluate_folder(folder: Path, artifacts_dir: Path, settings: PipelineSettings) -> dict:
    artifacts = ArtifactStore(artifacts_dir).load()
    classes = artifacts.classifier.classes
    rows = _files(folder)
    if not rows:
        raise SystemExit(f"no images in {folder}")
    vectors, labels, unreadable = [], [], []
    kept, refused = [], []
    spent = 0.0
    for row in rows:
        data = (folder / row["file"]).read_bytes()
        started = time.perf_counter()
        try:
            vectors.append(
                artifacts.embedding.embed_bytes(
                    data,
                    max_bytes=settings.max_upload_bytes,
                    max_pixels=settings.max_image_pixels,
                )
            )
        except ImageError as exc:  # counted as wrong: serving would refuse it
            unreadable.append(f"{row['file']}: {exc}")
            refused.append(row)
            continue
        finally:
            spent += time.perf_counter() - started
        labels.append(parse_label(row["label"]))
        kept.append(row)
    predicted = artifacts.classifier.predict(np.array(vectors)).tolist() if vectors else []
    right = [p == t for p, t in zip(predicted, labels, strict=True)]
    groups: dict[str, dict[str, list[bool]]] = {
        "kind": defaultdict(list),
        "font": defaultdict(list),
        "class": defaultdict(list),
    }
    for row, ok in zip(kept, right, strict=True):
        groups["kind"][row["kind"]].append(ok)
        groups["font"][row["font"]].append(ok)
        groups["class"][row["label"]].append(ok)
    for row in refused:
        for key, column in (("kind", "kind"), ("font", "font"), ("class", "label")):
            groups[key][row[column]].append(False)
    confusion = np.zeros((len(classes), len(classes)), dtype=int)
    position = {label: i for i, label in enumerate(classes)}
    for truth, guess in zip(labels, predicted, strict=True):
        if truth in position:
            confusion[position[truth], position[guess]] += 1
    return {
        "model_version": artifacts.version,
        "images": len(rows),
        "accuracy": round(sum(right) / len(rows), 4),
        "unreadable": unreadable,
        # decode + preprocessing + PCA of one file, as /predict does it
        "embed_ms_per_image": round(1000 * spent / len(rows), 2),
        "by_kind": {k: _summary(v) for k, v in sorted(groups["kind"].items()) if k},
        "by_font": {k: _summary(v) for k, v in sorted(groups["font"].items()) if k},
        "by_class": {k: _summary(v) for k, v in sorted(groups["class"].items())},
        "classes": classes,
        "confusion": confusion.tolist(),
    }


def _summary(oks: list[bool]) -> dict:
    return {"accuracy": round(sum(oks) / len(oks), 4), "images": len(oks)}


def print_report(result: dict) -> None:
    print(
        f"model version {result['model_version']}: accuracy {result['accuracy']:.1%} "
        f"on {result['images']} images "
        f"({result['embed_ms_per_image']} ms per image to decode, preprocess and embed)"
    )
    for title in ("by_kind", "by_font", "by_class"):
        if result[title]:
            print(f"\n{title.replace('_', ' ')}:")
            for name, summary in result[title].items():
                print(f"  {name:<32} {summary['accuracy']:7.1%}  ({summary['images']} images)")
    classes = [str(c) for c in result["classes"]]
    print("\nconfusion (rows: true label, columns: predicted):")
    print("      " + "".join(f"{c:>5}" for c in classes))
    for name, line in zip(classes, result["confusion"], strict=True):
        print(f"{name:>5} " + "".join(f"{v:>5}" for v in line))
    if result["unreadable"]:
        print(f"\n{len(result['unreadable'])} unreadable file(s):")
        for item in result["unreadable"]:
            print("  " + item)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a folder per label (make_realworld_set.py)")
    parser.add_argument("--artifacts", type=Path, help="artifacts folder (default: ARTIFACTS_DIR)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    settings = PipelineSettings()
    result = evaluate_folder(args.folder, args.artifacts or settings.artifacts_dir, settings)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_report(result)


if __name__ == "__main__":
    main()
