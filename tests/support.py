"""Small helpers shared by the test folders: free loopback ports, a real browser."""

from __future__ import annotations

import socket

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


def free_port() -> int:
    """A TCP port nothing listens on right now, on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
