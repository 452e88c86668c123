"""`iatro serve` serves the API: started on a free loopback port, probed, and stopped."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.serving import free_port, stop, wait_ready

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 60


@contextmanager
def serving(tmp_path: Path, *options: str) -> Iterator[tuple[str, Path]]:
    """`iatro serve` on a free port with a throwaway workflow database (never ./iatro.sqlite); yields
    the base URL and the server's log, stopped (SIGINT, uvicorn's graceful shutdown) on exit."""
    port = free_port()
    log_path = tmp_path / "serve.log"
    log = log_path.open("w")
    env = {**os.environ, "IATRO_DATABASE_URL": f"sqlite:///{tmp_path / 'iatro.sqlite'}"}
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--host", "127.0.0.1", "--port", str(port), *options],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(process, base, STARTUP_TIMEOUT_S)
        yield base, log_path
    except AssertionError:
        print(log_path.read_text())
        raise
    finally:
        stop(process)
        log.close()


def test_iatro_serve_serves_docs_and_health(tmp_path: Path) -> None:
    with serving(tmp_path) as (base, log_path):
        docs = httpx.get(f"{base}/docs", timeout=5)
        assert docs.status_code == 200
        assert "swagger" in docs.text.lower()
        assert httpx.get(f"{base}/openapi.json", timeout=5).json()["info"]["title"] == "Iatro"
        assert httpx.get(f"{base}/health", timeout=5).json() == {"status": "ok"}
        assert httpx.get(f"{base}/v1/drugs", params={"q": "warfarine"}, timeout=5).status_code == 200
        # On a loopback address the README's run command seeds the demo users (issue 8).
        login = httpx.post(
            f"{base}/v1/auth/login",
            json={"email": "geriatre@demo.iatro.local", "password": "demo-iatro"},
            timeout=5,
        )
        assert login.status_code == 200 and login.json()["token"]
        assert httpx.get(f"{base}/", timeout=5, follow_redirects=False).status_code in (302, 303, 307)
    log_text = log_path.read_text()
    assert "GET /health 200" in log_text  # the app's own access log: method, path, status
    assert "GET /v1/drugs 200" in log_text
    assert "warfarine" not in log_text  # query strings are not logged


def test_issue6_two_workers_start_and_share_the_connections(tmp_path: Path) -> None:
    """Two workers used to migrate a fresh database at the same time: one died on "table already
    exists". And with one shared listening socket, a burst of connections went mostly to one worker.
    Now `serve` prepares the database first, and each worker accepts on its own socket."""
    with serving(tmp_path, "--workers", "2") as (base, log_path):
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while log_path.read_text().count("Application startup complete") < 2:
            assert "Traceback" not in log_path.read_text()
            assert time.monotonic() < deadline, "the second worker did not start"
            time.sleep(0.2)
        # The demo users were seeded once, and every new connection is answered.
        for _ in range(20):
            with httpx.Client(base_url=base, timeout=10) as client:  # a new connection each time
                login = client.post(
                    "/v1/auth/login", json={"email": "geriatre@demo.iatro.local", "password": "demo-iatro"}
                )
                assert login.status_code == 200
    log_text = log_path.read_text()
    assert "Traceback" not in log_text
    # The access log names the process: the kernel gave connections to both (all 20 to one worker:
    # a chance of 2 in a million).
    serving_pids = re.findall(r"\[(\d+)\] iatro\.api: POST /v1/auth/login 200", log_text)
    assert len(serving_pids) == 20
    assert len(set(serving_pids)) == 2
