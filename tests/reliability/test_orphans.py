"""A server killed with SIGKILL takes its retraining process with it, and a retraining
that started from an older version can never make its model current over a newer one.

Before: the retraining process (a ProcessPoolExecutor worker) outlived a SIGKILLed
server, finished its training, activated its version, then waited for ever on a pipe
it held itself; a restarted server trained alongside it."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest
from mlstack.artifacts import ArtifactStore, SupersededError
from mlstack.fake_feedback import write_fake_feedback
from mlstack.settings import PipelineSettings

from tests.support.servers import wait_until
from tests.support.serving import b64, sample_images

K = 20_000  # the k-th row triggers a retraining on ~20k rows: long enough to kill it


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for its parent to read its status."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def retraining_process(server_pid: int) -> int | None:
    for child in children(server_pid):
        cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        if b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
            return child
    return None


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_retraining_process_dies_with_a_killed_server(project: PipelineSettings, serve) -> None:
    write_fake_feedback(project, K - 1, drift=0.3, predicted=False)
    server = serve(project, workers=1, k=K, RETRAIN_WAIT_SECONDS="0")
    label, data = sample_images(project)[0]
    body = {"image": b64(data), "prediction": label, "target": label}
    answer = httpx.post(f"{server.url}/feedback", json=body, timeout=60).json()
    assert answer["retraining"] == "running"
    child = wait_until(lambda: retraining_process(server.pid), 60, "the retraining process")

    os.kill(server.pid, signal.SIGKILL)  # the server alone, as the OOM killer would
    store = ArtifactStore(project.artifacts_dir)
    deadline = time.monotonic() + 10
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    orphan = alive(child)
    if orphan:  # do not leave it running
        os.kill(child, signal.SIGKILL)
    assert not orphan, f"the retraining process {child} outlived its server"
    assert store.current_version() == 1, "the retraining finished before the kill: test is void"


def test_a_version_trained_on_an_older_base_is_never_saved(project: PipelineSettings) -> None:
    """What a retraining left running by a dead server meets when it ends after a newer
    retraining: its version is refused, whatever the order of their saves."""
    store = ArtifactStore(project.artifacts_dir)
    current = store.load()
    newer = store.save(
        current.embedding, current.classifier, rows={}, metrics={}, reason="newer", base_version=1
    )
    assert store.current_version() == newer.version == 2
    with pytest.raises(SupersededError, match="version 2"):
        store.save(
            current.embedding, current.classifier, rows={}, metrics={}, reason="old", base_version=1
        )
    assert store.current_version() == 2
    assert store.versions() == [1, 2]  # nothing written for it
    # A retraining on the version in use (or with no base given) is saved as before.
    set_ = (current.embedding, current.classifier)
    store.save(*set_, rows={}, metrics={}, reason="on the version in use", base_version=2)
    store.save(*set_, rows={}, metrics={}, reason="no base given")
    assert store.current_version() == 4
