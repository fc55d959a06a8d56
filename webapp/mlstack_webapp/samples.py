"""The sample images the page offers: files named <label>_<row>.<ext> in one folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlstack_webapp.labels import Label, parse_label

SAMPLE_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass(frozen=True)
class Sample:
    path: Path
    label: Label

    @property
    def title(self) -> str:
        return f"{self.label}  ({self.path.name})"


def list_samples(folder: Path) -> list[Sample]:
    """The images in `folder` named <label>_<row>.<ext>, ordered by label then row.
    A missing folder gives no samples (the page says so)."""
    if not folder.is_dir():
        return []
    samples = []
    for path in folder.iterdir():
        if not path.is_file() or path.suffix.lower() not in SAMPLE_SUFFIXES:
            continue
        label, sep, _row = path.stem.rpartition("_")
        samples.append(Sample(path, parse_label(label if sep else path.stem)))
    return sorted(samples, key=lambda s: (isinstance(s.label, str), s.label, s.path.name))
