"""The production-data store: data/prod_data.csv, one row per feedback.

Columns: PCA_1..PCA_n, target, prediction, then metadata (timestamp, model_version,
prediction_id) that reporting leaves out of drift.

Appends hold a file lock, so rows from several threads, workers or processes never
interleave; each row is one write() of a whole line, flushed to disk. The row count
lives in a small sidecar file next to the CSV with the CSV's size at that count, so
an append never re-reads the CSV; if the sizes disagree (a crash between the two
writes) the count is rebuilt once.

One rule for a last line without its newline (a crash in the middle of a write, or
a write still under way): it is not a row. `repair` cuts it off the file; `read`,
the one reader of the file (retraining, reporting, the metrics exporter), leaves it
out and never writes, so it works on a read-only copy.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from filelock import FileLock

from .embedding import feature_columns

# pyarrow parses the retraining's columns three to four times quicker than pandas' own
# parser; the serving image leaves it out (170 MB), so it is used only where installed.
HAS_PYARROW = importlib.util.find_spec("pyarrow") is not None

log = logging.getLogger(__name__)

LABEL_COLUMNS = ("target", "prediction")
METADATA_COLUMNS = ("timestamp", "model_version", "prediction_id")


def prod_columns(n_components: int) -> list[str]:
    return [*feature_columns(n_components), *LABEL_COLUMNS, *METADATA_COLUMNS]


def _whole_lines_end(handle: io.BufferedIOBase, size: int) -> int:
    """The size of the file without a torn last line: just past its last newline."""
    if size == 0:
        return 0
    handle.seek(size - 1)
    if handle.read(1) == b"\n":
        return size
    # Walk back to the last newline; a torn line is at most a few KB.
    chunk = min(size, 1 << 16)
    handle.seek(size - chunk)
    tail = handle.read(chunk)
    return size - chunk + tail.rfind(b"\n") + 1


def format_row(values: Sequence) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue()


def companion_files(path: Path) -> tuple[Path, Path]:
    """The files kept beside prod_data.csv: its row count and its lock."""
    return path.with_name(path.name + ".count"), path.with_name(path.name + ".lock")


class ProdDataStore:
    def __init__(self, path: Path, n_components: int) -> None:
        self.path = Path(path)
        self.columns = prod_columns(n_components)
        self.header = format_row(self.columns)
        self.count_path, lock_path = companion_files(self.path)
        self.lock = FileLock(str(lock_path))

    # -- repair and counting -------------------------------------------------------
    def repair(self) -> int:
        """Cut a torn last line (no trailing newline) left by a crash; returns the
        number of bytes removed."""
        with self.lock:
            return self._repair_unlocked()

    def _repair_unlocked(self) -> int:
        if not self.path.exists():
            return 0
        size = self.path.stat().st_size
        with open(self.path, "rb+") as handle:
            keep = _whole_lines_end(handle, size)
            if keep == size:
                return 0
            handle.truncate(keep)
            handle.flush()
            os.fsync(handle.fileno())
        removed = size - keep
        log.warning("repaired %s: cut a torn last line of %d bytes", self.path, removed)
        return removed

    def _count_lines(self) -> int:
        with open(self.path, "rb") as handle:
            lines = sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))
        return max(0, lines - 1)  # minus the header

    def _read_count(self) -> int | None:
        try:
            saved = json.loads(self.count_path.read_text())
            if saved["size"] == self.path.stat().st_size:
                return int(saved["rows"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
        return None

    def _write_count(self, rows: int) -> None:
        tmp = self.count_path.with_name(self.count_path.name + ".tmp")
        tmp.write_text(json.dumps({"rows": rows, "size": self.path.stat().st_size}))
        os.replace(tmp, self.count_path)

    def _rows_unlocked(self) -> int:
        if not self.path.exists():
            return 0
        rows = self._read_count()
        if rows is None:
            self._repair_unlocked()
            rows = self._count_lines()
            self._write_count(rows)
        return rows

    def rows(self) -> int:
        with self.lock:
            return self._rows_unlocked()

    # -- reading -------------------------------------------------------------------
    def read(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The rows of the file's whole lines, in file order (`columns` only, if given);
        an empty frame when the file is absent, empty or holds its header only.

        Values read back are exactly those written (round trip), so a fingerprint of
        the rows stays the same from one read to the next; a malformed line (too many
        fields) is skipped."""
        wanted = list(columns) if columns is not None else None
        empty = pd.DataFrame(columns=wanted or self.columns)
        try:
            with open(self.path, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                end = _whole_lines_end(handle, size)
                handle.seek(0)
                data = handle.read(end)  # not past `end`: appends may land meanwhile
        except FileNotFoundError:
            return empty
        if not data:
            return empty
        # pyarrow's parser is as exact on floats as pandas' round trip, but it turns ISO
        # timestamps into datetimes: the timestamp column, when asked for, keeps pandas'
        # own parser and its text.
        fast = HAS_PYARROW and wanted is not None and "timestamp" not in wanted
        try:
            return pd.read_csv(
                io.BytesIO(data),
                usecols=wanted,
                on_bad_lines="skip",
                **({"engine": "pyarrow"} if fast else {"float_precision": "round_trip"}),
            )
        except pd.errors.EmptyDataError:
            return empty

    # -- appending -----------------------------------------------------------------
    def _check_header(self) -> None:
        with open(self.path, encoding="utf-8") as handle:
            first = handle.readline()
        if first and first != self.header:
            raise ValueError(
                f"{self.path} has other columns than this model writes "
                f"(its header starts {first[:60]!r}); move it aside to start a new one"
            )

    def append(
        self,
        vector: np.ndarray,
        target: int | str,
        prediction: int | str,
        *,
        timestamp: str,
        model_version: int,
        prediction_id: str,
    ) -> int:
        """Append one row; returns the number of rows after it."""
        values = [
            *(repr(float(v)) for v in vector),
            target,
            prediction,
            timestamp,
            model_version,
            prediction_id,
        ]
        if len(values) != len(self.columns):
            raise ValueError(f"expected {len(self.columns) - 5} vector values, got {len(vector)}")
        line = format_row(values).encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.lock:
            rows = self._rows_unlocked()
            if self.path.exists() and self.path.stat().st_size > 0:
                self._check_header()
                data = line
            else:
                data = self.header.encode("utf-8") + line
                rows = 0
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                view = memoryview(data)
                while view:  # a regular file takes it in one write; loop all the same
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            rows += 1
            self._write_count(rows)
            return rows
