"""The folder every worker's metric files go to (prometheus-client's multiprocess mode).

It is PROMETHEUS_MULTIPROC_DIR when set (then whoever starts the server empties it
first); otherwise one is made per server run under the temporary folder, keyed on the
process that owns the workers (uvicorn's supervisor, or this process when it runs
alone), so that a restart starts from zero; the folders of runs that are over are
removed. Nothing is chosen at import: the first call chooses, once per process, and
sets PROMETHEUS_MULTIPROC_DIR in this process's environment (the library reads it there).
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import shutil
import tempfile
from functools import cache
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Set where the folder was chosen here; a child process that inherits both variables
# (a server started by a process that chose a folder for itself) chooses its own.
AUTO_ENV = "MLSTACK_METRICS_AUTO_DIR"


def start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), to tell a live
    process from a new one that reuses its pid; '0' where /proc is absent."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "0"
    # Field 22; the command name (field 2) may hold spaces, so split after its ')'.
    return stat.rsplit(")", 1)[1].split()[19]


def _remove_stale_runs(base: Path, keep: Path) -> None:
    for run in base.iterdir():
        if run == keep or not run.is_dir():
            continue
        pid, _, started = run.name.partition("-")
        if pid.isdigit() and start_time(int(pid)) == started:
            continue  # another server that is still running
        shutil.rmtree(run, ignore_errors=True)


def _choose() -> Path:
    explicit = os.environ.get(MULTIPROC_ENV)
    if explicit and explicit != os.environ.get(AUTO_ENV):
        path = Path(explicit)
        path.mkdir(parents=True, exist_ok=True)
        return path
    # uvicorn --workers starts its workers with multiprocessing's spawn: they share a parent.
    parent = multiprocessing.parent_process()
    owner = parent.pid if parent is not None and parent.pid else os.getpid()
    base = Path(tempfile.gettempdir()) / "mlstack-metrics"
    path = base / f"{owner}-{start_time(owner)}"
    path.mkdir(parents=True, exist_ok=True)
    _remove_stale_runs(base, keep=path)
    os.environ[MULTIPROC_ENV] = os.environ[AUTO_ENV] = str(path)
    return path


@cache
def multiproc_dir() -> Path:
    """This process's metrics folder, chosen on the first call."""
    path = _choose()
    atexit.register(forget_this_worker)
    return path


def forget_this_worker() -> None:
    """Remove this process's live gauges (in-progress requests, model version), so that
    they stop counting once it ends. Called when the app's lifespan ends (uvicorn ends a
    worker on SIGTERM by raising the signal again, which skips atexit) and at exit."""
    if multiproc_dir.cache_info().currsize == 0:
        return  # no folder chosen: this process wrote no metric
    # gauge_live<mode>_<pid>.db, and <pid>-<n> for the files of this process's other
    # threads (values.py): prometheus_client's mark_process_dead knows only the first.
    pid = os.getpid()
    for path in multiproc_dir().glob(f"gauge_live*_{pid}*.db"):
        if path.stem.rsplit("_", 1)[1].split("-")[0] == str(pid):
            path.unlink(missing_ok=True)
