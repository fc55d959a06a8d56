"""The metrics' values written without a lock per write (mlstack.serving.metrics.values):
whatever the threads do, the files that /metrics reads add up to every write.

Each test gets a fresh process-wide state and its own folder; the figures are read back
by prometheus_client's own multiprocess collector, as /metrics reads them."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from mlstack.serving.metrics import values
from mlstack.serving.metrics.folder import MULTIPROC_ENV
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import values as library_values
from prometheus_client.multiprocess import MultiProcessCollector


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    monkeypatch.setattr(values, "_shards", values._Shards())
    monkeypatch.setattr(library_values, "ValueClass", values.ShardedValue)
    return tmp_path


def collected(folder: Path) -> dict[str, float]:
    """{'name{a="x"}': value} as the multiprocess collector reads the folder."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(folder))
    samples = {}
    for family in registry.collect():
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


def run_threads(count: int, work: Callable[[], object]) -> None:
    """`work` in `count` threads alive at the same time, all started at once so that
    their writes interleave."""
    start, end = threading.Barrier(count), threading.Barrier(count)

    def body() -> None:
        start.wait()
        work()
        end.wait()  # none ends (and hands its files on) before all have written

    threads = [threading.Thread(target=body) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_threads_incrementing_at_once_lose_no_count(folder: Path) -> None:
    counter = Counter("hits", "", ["route"], registry=None).labels(route="/predict")
    latency = Histogram("took", "", buckets=(0.1, 1), registry=None)
    # Threads switch every few bytecodes, so that their writes interleave closely.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:

        def work() -> None:
            for _ in range(2000):
                counter.inc()
                latency.observe(0.5)

        run_threads(8, work)
    finally:
        sys.setswitchinterval(interval)
    samples = collected(folder)
    assert samples['hits_total{route="/predict"}'] == 16_000
    assert samples["took_count{}"] == 16_000
    assert samples['took_bucket{le="1.0"}'] == 16_000
    assert samples["took_sum{}"] == pytest.approx(8_000)
    assert counter._value.get() == 16_000  # this process's own reading agrees


def test_each_thread_writes_files_of_its_own_and_they_add_up(folder: Path) -> None:
    counter = Counter("hits", "", registry=None)
    counter.inc(2)  # this thread: the library's own file name
    run_threads(3, lambda: counter.inc(5))
    pid = os.getpid()
    names = {p.name for p in folder.glob("counter_*.db")}
    assert names == {f"counter_{pid}.db"} | {f"counter_{pid}-{n}.db" for n in (1, 2, 3)}
    assert collected(folder)["hits_total{}"] == 17


def test_threads_that_end_hand_their_files_on(folder: Path) -> None:
    """A thread pool's threads come and go: the files stay as many as the threads that
    wrote at the same time, and the counts of the threads gone stay counted."""
    counter = Counter("hits", "", registry=None)
    for _ in range(20):
        thread = threading.Thread(target=counter.inc)
        thread.start()
        thread.join()
    # This thread's file (made with the counter) and one for the twenty threads.
    assert len(list(folder.glob("counter_*.db"))) == 2
    assert collected(folder)["hits_total{}"] == 20


def test_setting_a_summed_gauge_counts_the_other_threads(folder: Path) -> None:
    gauge = Gauge("busy", "", multiprocess_mode="livesum", registry=None)
    run_threads(2, lambda: gauge.inc(3))
    gauge.set(4)  # the process's value becomes 4, whatever the other threads hold
    assert collected(folder)["busy{}"] == 4
    assert gauge._value.get() == 4


def test_gauges_that_are_not_summed_keep_one_value_per_process(folder: Path) -> None:
    version = Gauge("version", "", multiprocess_mode="livemostrecent", registry=None)
    run_threads(4, lambda: version.set(7))
    version.set(9)
    assert [p.name for p in folder.glob("gauge_*")] == [f"gauge_livemostrecent_{os.getpid()}.db"]
    assert collected(folder)["version{}"] == 9


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_counts_from_zero_in_files_of_its_own(folder: Path) -> None:
    counter = Counter("hits", "", registry=None)
    counter.inc(3)
    child = os.fork()
    if child == 0:  # the child: count once and leave without running pytest's exit
        try:
            counter.inc()
            os._exit(0 if counter._value.get() == 1 else 1)
        finally:
            os._exit(2)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert (folder / f"counter_{child}.db").exists()
    assert collected(folder)["hits_total{}"] == 4


def test_every_bucket_is_read_before_any_observation_reaches_it(folder: Path) -> None:
    Histogram("took", "", buckets=(0.1, 1), registry=None).observe(0.05)
    samples = collected(folder)
    assert samples['took_bucket{le="+Inf"}'] == samples['took_bucket{le="1.0"}'] == 1
