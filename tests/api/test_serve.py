"""`iatro serve` serves the API: started on a free loopback port, probed, and stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.serving import free_port, wait_ready

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 60


def test_iatro_serve_serves_docs_and_health(tmp_path: Path) -> None:
    port = free_port()
    log = (tmp_path / "serve.log").open("w+")
    # The workflow database of the served app: a throwaway SQLite file, never ./iatro.sqlite.
    env = {**os.environ, "IATRO_DATABASE_URL": f"sqlite:///{tmp_path / 'iatro.sqlite'}"}
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(process, base, STARTUP_TIMEOUT_S)
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
    except AssertionError:
        log.seek(0)
        print(log.read())
        raise
    finally:
        process.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
    log_text = (tmp_path / "serve.log").read_text()
    assert "GET /health 200" in log_text  # the app's own access log: method, path, status
    assert "GET /v1/drugs 200" in log_text
    assert "warfarine" not in log_text  # query strings are not logged
