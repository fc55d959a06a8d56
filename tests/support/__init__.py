"""Helpers shared by the test folders: free loopback ports, a real browser, child
processes (servers) that are always stopped with everything they started
(servers.py), Chromium pages that fetch a dropped script again (browser.py), and the
serving API's own fixtures and helpers (serving.py)."""

from __future__ import annotations

from pathlib import Path

from tests.support.servers import (
    Process,
    UvicornServer,
    free_port,
    uvicorn_args,
    uvicorn_server,
    wait_until,
)

REPO_ROOT = Path(__file__).resolve().parents[2]

# Debian's chromium on a machine with no display and a closed network: without the
# background-networking flags it keeps trying (and failing) to reach outside hosts.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

__all__ = [
    "CHROMIUM_ARGS",
    "REPO_ROOT",
    "Process",
    "UvicornServer",
    "free_port",
    "uvicorn_args",
    "uvicorn_server",
    "wait_until",
]
