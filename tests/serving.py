"""Starting `iatro serve` for tests and benchmarks: a free loopback port, and waiting for /ready."""

from __future__ import annotations

import signal
import socket
import subprocess
import time

import httpx


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_ready(
    process: subprocess.Popen[bytes], base: str, timeout_s: float, interval_s: float = 0.2
) -> None:
    """Poll /ready until it answers 200; fail if the server exits or the deadline passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        assert process.poll() is None, "the server exited"
        try:
            if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the server did not become ready"
        time.sleep(interval_s)


def stop(process: subprocess.Popen[bytes], timeout_s: float = 15) -> None:
    """Ctrl-C (a graceful shutdown), then kill if the server is still up after ``timeout_s``."""
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
