"""A child process that dies with its parent.

A process started by a ProcessPoolExecutor outlives a parent killed with SIGKILL: it
finishes its task, then waits for ever on its task queue, a pipe whose write end it
holds itself, so it never reads an end of file. Use `die_with_parent` as the pool's
initializer: the kernel kills the child when the parent goes (Linux's
PR_SET_PDEATHSIG), and a watchdog thread checks the parent where that is missing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import sys
import threading
import time

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
WATCH_EVERY_SECONDS = 0.5


def _set_death_signal(sig: int) -> bool:
    """Ask the kernel for `sig` when the parent ends; False where it cannot be asked.
    Linux sends it when the *thread* that started this process ends: start it from a
    thread that lives as long as the child should (the pool's caller waits for it)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _orphaned(parent_pid: int) -> bool:
    return os.getppid() != parent_pid


def _watch(parent_pid: int) -> None:
    while not _orphaned(parent_pid):
        time.sleep(WATCH_EVERY_SECONDS)
    log.warning("parent %d is gone: this process (%d) ends with it", parent_pid, os.getpid())
    os._exit(1)


def die_with_parent(parent_pid: int) -> None:
    """In the child: end when process `parent_pid` ends (pass the parent's os.getpid())."""
    _set_death_signal(signal.SIGKILL)
    if _orphaned(parent_pid):  # the parent died before the signal was asked for
        os._exit(1)
    threading.Thread(target=_watch, args=(parent_pid,), name="orphan-watch", daemon=True).start()
