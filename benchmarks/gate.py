"""What the promotion gate protects, and what it lets through: figures, not a test.

    python benchmarks/gate.py [--k 100] [--steps 100,300,1000]

Two kinds of feedback go through the real retraining code (mlstack.retraining.retrain,
every k rows, on a fresh copy of a trained project), once with the gate on and once
with it off:

- mislabelled: fifty images of the data set's training split (five a label), sent
  over and over with a wrong label on purpose (the label shifted by one); the served
  model is scored on the reference hold-out and on the attacked images with their
  true labels;
- new style, correctly labelled: canvas drawings tilted by 35 degrees, far beyond the
  few degrees the synthetic training digits turn by (about half read right before any
  feedback); the served model is scored on other images of the same kind, never sent.

Each row is the served version's accuracy after that many feedback rows.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from mlstack.artifacts import ArtifactStore
from mlstack.dataset import load_folder_dataset
from mlstack.pipeline import bootstrap, read_reference
from mlstack.prod_store import ProdDataStore
from mlstack.retraining import retrain
from mlstack.settings import PipelineSettings
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def served_accuracy(settings: PipelineSettings, vectors: np.ndarray, labels: np.ndarray) -> float:
    current = ArtifactStore(settings.artifacts_dir).load()
    return float((current.classifier.predict(vectors) == labels).mean())


def served_version(settings: PipelineSettings) -> str:
    """The version served, how many feedback rows it was trained on, and how many
    candidates the gate has rejected so far."""
    store = ArtifactStore(settings.artifacts_dir)
    served = store.manifest()
    rejected = sum(store.manifest(version).rejected for version in store.versions())
    return f"v{served.version}, {served.rows.get('prod', 0)} rows; {rejected} rejected"


def served_figures(settings: PipelineSettings, judges: dict[str, tuple]) -> dict:
    """The served version's accuracy on each judge set, and `served_version`."""
    figures: dict = {name: served_accuracy(settings, *data) for name, data in judges.items()}
    return figures | {"served": served_version(settings)}


def feed(
    base: Path,
    gate: bool,
    vectors: np.ndarray,
    sent_labels: np.ndarray,
    steps: list[int],
    k: int,
    judges: dict[str, tuple[np.ndarray, np.ndarray]],
) -> list[dict[str, float]]:
    """Append the rows k at a time to a fresh copy of `base`, retraining after each k;
    the served accuracy on each judge set at every step."""
    root = Path(tempfile.mkdtemp(prefix="gate-bench-"))
    shutil.copytree(base, root, symlinks=True, dirs_exist_ok=True)
    settings = PipelineSettings(project_root=root, gate=gate)
    n = vectors.shape[1]
    store = ProdDataStore(settings.prod_data_path, n)
    rows, out = 0, []
    for step in steps:
        while rows < step:
            # As the API stores it: the prediction the served version showed, and its number.
            served = ArtifactStore(settings.artifacts_dir).load()
            batch = [i % len(vectors) for i in range(rows, min(rows + k, step))]
            shown = served.classifier.predict(vectors[batch])
            for i, row, prediction in zip(
                range(rows, rows + len(batch)), batch, shown, strict=True
            ):
                store.append(
                    vectors[row],
                    sent_labels[row].item(),
                    prediction.item(),
                    timestamp="t",
                    model_version=served.version,
                    prediction_id=f"bench-{i}",
                )
            rows = min(rows + k, step)
            retrain(settings, reason="benchmark")
        out.append(served_figures(settings, judges))
    shutil.rmtree(root, ignore_errors=True)
    return out


# The new style: canvas drawings tilted by this many degrees (a tablet held at an
# angle). The preprocessing does not straighten digits, and the synthetic training
# digits turn by 5 to 6 degrees (one standard deviation): the model reads about half of these
# right before any feedback.
TILT_DEGREES = 35


def new_style_images(out: Path, per_label: int) -> Path:
    """Canvas drawings (scripts/make_realworld_set.py's stroke-canvas kind), each turned by
    TILT_DEGREES on a white page."""
    drawn = out.with_name(out.name + "-upright")
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "make_realworld_set.py"),
            "--out",
            str(drawn),
            "--per-label",
            str(per_label),
            "--seed",
            "7",
            "--kinds",
            "stroke-canvas",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for path in drawn.glob("*/*.png"):
        with Image.open(path) as image:
            tilted = image.convert("L").rotate(
                TILT_DEGREES, resample=Image.Resampling.BILINEAR, expand=True, fillcolor=255
            )
        (out / path.parent.name).mkdir(parents=True, exist_ok=True)
        tilted.save(out / path.parent.name / path.name)
    return out


def print_table(title: str, steps: list[int], on: list[dict], off: list[dict]) -> None:
    print(f"\n{title}")
    names = [n for n in on[0] if n != "served"]
    head = " | ".join(f"{n}: gate on / off" for n in names)
    # With the gate on, a burst of mislabelled rows is held back: the version served
    # still moves on, trained without them (its rows say so).
    print(f"| feedback rows | {head} | served: gate on / off |")
    print("|---" * (len(names) + 2) + "|")
    for step, a, b in zip([0, *steps], on, off, strict=True):
        cells = " | ".join(f"{a[n]:.3f} / {b[n]:.3f}" for n in names)
        print(f"| {step} | {cells} | {a['served']} / {b['served']} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=100, help="retrain every k rows (100)")
    parser.add_argument("--steps", default="100,300,1000", help="feedback rows to report at")
    parser.add_argument("--per-label", type=int, default=40, help="new-style images per label")
    args = parser.parse_args()
    steps = [int(s) for s in args.steps.split(",")]
    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()

    base = Path(tempfile.mkdtemp(prefix="gate-base-"))
    bootstrap(PipelineSettings(project_root=base))
    settings = PipelineSettings(project_root=base)
    current = ArtifactStore(settings.artifacts_dir).load()
    ref = read_reference(settings, current.embedding.n_components)
    holdout = (ref.vectors[ref.holdout], ref.targets[ref.holdout])

    # Mislabelled: five images of each label from the training split, sent over and
    # over with the label shifted by one.
    labels = ref.targets[ref.train]
    attacked = np.concatenate([ref.train[labels == c][:5] for c in np.unique(labels)])
    vectors, truth = ref.vectors[attacked], ref.targets[attacked]
    wrong = (truth + 1) % 10
    judges = {"reference hold-out": holdout, "attacked images": (vectors, truth)}
    zero = served_figures(settings, judges)
    on = [zero, *feed(base, True, vectors, wrong, steps, args.k, judges)]
    off = [zero, *feed(base, False, vectors, wrong, steps, args.k, judges)]
    print_table("Mislabelled feedback (every label wrong on purpose)", steps, on, off)

    # New style, correctly labelled: half the images sent, the other half judges.
    folder = new_style_images(base / "new-style", args.per_label)
    images = load_folder_dataset(folder, current.embedding.format, progress=False)
    style = current.embedding.transform(images.inputs)
    order = np.random.default_rng(1).permutation(len(style))
    sent, kept = order[: len(order) // 2], order[len(order) // 2 :]
    judges = {
        "reference hold-out": holdout,
        "new-style images never sent": (style[kept], images.labels[kept]),
    }
    zero = served_figures(settings, judges)
    labels = images.labels[sent]
    on = [zero, *feed(base, True, style[sent], labels, steps, args.k, judges)]
    off = [zero, *feed(base, False, style[sent], labels, steps, args.k, judges)]
    print_table(
        f"Correct feedback of a new style (canvas drawings tilted by {TILT_DEGREES} degrees; "
        f"{len(sent)} images sent, repeated past that count)",
        steps,
        on,
        off,
    )
    shutil.rmtree(base, ignore_errors=True)
    print(f"\n{time.perf_counter() - started:.0f} s in all")


if __name__ == "__main__":
    main()
