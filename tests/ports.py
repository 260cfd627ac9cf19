"""Local ports and subprocesses for tests that start real servers."""

from __future__ import annotations

import socket
import subprocess


def free_port() -> int:
    """A port of 127.0.0.1 that nothing listens on right now (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop(process: subprocess.Popen, timeout: float = 15) -> bool:
    """Terminate a server process and wait for it; kill it if it does not stop in time.
    True if it stopped on its own after SIGTERM."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return False
    return True
