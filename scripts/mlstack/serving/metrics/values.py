"""The store behind every metric: prometheus-client's multiprocess files, written
without a lock in the common case.

prometheus-client's own multiprocess value takes one process-wide lock and asks the
kernel for the pid on every write: about 5 µs a write here, six writes a request. Here
each thread that writes a summed metric (a counter, a histogram, a gauge summed over the
workers) writes its own copy of it, in files of its own: `counter_<pid>.db` for the
first thread, `counter_<pid>-<n>.db` for the others. A copy has one writer, so a write
is a float added and eight bytes stored; the lock is taken only to give a thread its
files or a metric its copy in them, once each. /metrics sums the copies as it sums the
workers' files (the collector reads every file of the folder; counters and histograms
are summed there, gauges by their multiprocess mode: `livesum` and `sum` sum).

A thread that ends hands its files to the next new thread, so that threads that come and
go (a thread pool's) add no file each. The other gauges (`mostrecent`, `max`, `all`...)
keep one value per process, written under the lock as the library writes them: they
are set a few times a run, never per request.
"""

from __future__ import annotations

import os
import threading
import weakref
from pathlib import Path
from typing import Any

from prometheus_client.mmap_dict import MmapedDict, mmap_key

from .folder import MULTIPROC_ENV

# The kinds of file whose values the collector adds up across files.
SUMMED = frozenset({"counter", "histogram", "summary", "gauge_livesum", "gauge_sum"})


class _Shards:
    """This process's files and which thread writes to which of them."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.local = threading.local()  # .index: the shard of the thread
        self.free: list[int] = []  # shards of threads that ended, reused first
        self.count = 0
        self.files: dict[tuple[str, int], MmapedDict] = {}
        self.values: weakref.WeakSet[ShardedValue] = weakref.WeakSet()

    def index(self) -> int:
        """The calling thread's shard, taken on its first write."""
        try:
            return self.local.index
        except AttributeError:
            pass
        with self.lock:
            if self.free:
                index = min(self.free)
                self.free.remove(index)
            else:
                index = self.count
                self.count += 1
        self.local.index = index
        # The thread-local's content is dropped when the thread ends: the shard is free.
        self.local.release = _Release(self, index)
        return index

    def file(self, prefix: str, index: int) -> MmapedDict:
        """The file of one kind for one shard (called under the lock)."""
        found = self.files.get((prefix, index))
        if found is None:
            suffix = "" if index == 0 else f"-{index}"
            # The library's name for the first shard: its tools (mark_process_dead) apply.
            path = Path(os.environ[MULTIPROC_ENV]) / f"{prefix}_{self.pid}{suffix}.db"
            found = self.files[prefix, index] = MmapedDict(str(path))
        return found


class _Release:
    def __init__(self, shards: _Shards, index: int) -> None:
        self.shards, self.index = shards, index

    def __del__(self) -> None:
        # No lock: it may run in a forked child whose copy of the lock stays held, and
        # one append is atomic; `index` takes from the list under the lock.
        self.shards.free.append(self.index)


_shards = _Shards()


def _after_fork() -> None:
    """A forked child writes files of its own pid, from zero, as the library's values do."""
    global _shards
    values = list(_shards.values)
    _shards = _Shards()
    for value in values:
        value._reset()


os.register_at_fork(after_in_child=_after_fork)


class _Cell:
    """One shard's copy of a summed value, read and written in place in its file."""

    __slots__ = ("slot", "view")

    def __init__(self, file: MmapedDict, key: str) -> None:
        file.read_value(key)  # makes the entry, at its end, if the file lacks it
        # The file's entries are 8-byte aligned: the value is one double of this view,
        # stored by one aligned 8-byte copy, so a reader never sees half of it. When the
        # file grows the library maps it anew; this view keeps the old mapping, which
        # still shows the file's first bytes, where this value stays.
        self.view = memoryview(file._m).cast("d")
        self.slot = file._positions[key] // 8

    @property
    def value(self) -> float:
        return self.view[self.slot]


class ShardedValue:
    """A value of a metric, as prometheus_client's `values.ValueClass` (the interface
    of its MultiProcessValue: inc, set, get, set_exemplar, get_exemplar)."""

    _multiprocess = True  # what series.py checks to know the values are file-backed

    def __init__(
        self,
        typ: str,
        metric_name: str,
        name: str,
        labelnames: Any,
        labelvalues: Any,
        help_text: str,
        multiprocess_mode: str = "",
        **_: Any,
    ) -> None:
        self._prefix = f"gauge_{multiprocess_mode}" if typ == "gauge" else typ
        self._key = mmap_key(metric_name, name, labelnames, labelvalues, help_text)
        self._summed = self._prefix in SUMMED
        self._reset()
        _shards.values.add(self)

    def _reset(self) -> None:
        self._cells: dict[int, _Cell] = {}  # summed: a copy per shard
        self._file: MmapedDict | None = None  # not summed: the one file, the one value
        self._value = 0.0
        # In a file from the start, as the library's values are: a histogram's buckets
        # that no request reached yet (+Inf among them) are still on /metrics.
        if self._summed:
            self._cell(_shards.index())
        else:
            with _shards.lock:
                self._read()

    def _cell(self, index: int) -> _Cell:
        """This shard's copy, made on its first write (by the shard's own thread)."""
        shards = _shards
        with shards.lock:
            cell = self._cells.get(index)
            if cell is None:
                cell = self._cells[index] = _Cell(shards.file(self._prefix, index), self._key)
        return cell

    def inc(self, amount: float) -> None:
        if not self._summed:
            with _shards.lock:
                self._write(self._read() + amount, 0.0)
            return
        try:  # the common case, inlined: this thread's copy exists
            cell = self._cells[_shards.local.index]
        except (AttributeError, KeyError):
            cell = self._cell(_shards.index())
        # Only this thread writes this copy: nothing can come between read and write.
        cell.view[cell.slot] += amount

    def set(self, value: float, timestamp: float | None = None) -> None:
        if not self._summed:
            with _shards.lock:
                self._write(value, timestamp or 0.0)
            return
        # The other threads' copies stay theirs: this one makes up the difference.
        index = _shards.index()
        cell = self._cells.get(index) or self._cell(index)
        others = sum(c.value for i, c in list(self._cells.items()) if i != index)
        cell.view[cell.slot] = value - others

    def _read(self) -> float:
        """The value of a metric that is not summed (the lock is held)."""
        if self._file is None:
            self._file = _shards.file(self._prefix, 0)
            self._value = self._file.read_value(self._key)[0]
        return self._value

    def _write(self, value: float, timestamp: float) -> None:
        self._read()
        self._value = value
        self._file.write_value(self._key, value, timestamp)

    def get(self) -> float:
        if not self._summed:
            with _shards.lock:
                return self._read()
        return sum(cell.value for cell in list(self._cells.values()))

    def set_exemplar(self, exemplar: Any) -> None:
        return None  # the multiprocess mode keeps no exemplars

    def get_exemplar(self) -> None:
        return None
