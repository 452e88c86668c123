"""Issue 6 load benchmark: POST /v1/analyses over real HTTP, at 1, 10 and 50 concurrent clients.

The server is `iatro serve` in a subprocess on a free 127.0.0.1 port (one worker, then two); the
client is httpx (async), in this process. Each level is bounded in requests and in time. The same run
measures the analysis in process (JSON bytes in, report bytes out, as the route does it), so the
overhead ratio server/in-process compares like with like.

Two variants of the same 15-line prescription: all checks (the default), where the search for proven
alternatives dominates (it re-runs the checks for each candidate substitute), and all checks but
``alternatives`` (``?checks=...``), where the engine is fast enough for the HTTP cost to show.

Caveat: client and server share the machine's two cores; at 10 and 50 clients the client's own CPU
is part of what is measured (a client on another host would see more throughput).

Run: `.venv/bin/pytest benchmarks/test_bench_api.py --benchmark-only -s`
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import orjson
import pytest

from api.routes.analyses import report_document
from benchmarks.generator import prescriptions
from iatro.analysis import CHECKS, Engine, parse_prescription
from tests.serving import free_port, wait_ready

ROOT = Path(__file__).resolve().parents[1]
CONCURRENCY = (1, 10, 50)
WORKERS = (1, 2)
MAX_REQUESTS = 400  # per level
MAX_SECONDS = 8.0  # per level
WARMUP_REQUESTS = 30
STARTUP_TIMEOUT_S = 90


def _prescription_body() -> bytes:
    item = next(prescriptions(1, seed=15, lines=(15, 15)))
    item["date"] = "2026-11-24"
    item["patient"] = {
        "age": 86,
        "sex": "F",
        "weight_kg": 55,
        "creatinine_umol_l": 120,
        "conditions": ["I48", "I10", "E11", "F03"],
        "labs": {"potassium_mmol_l": 3.6, "qtc_ms": 460, "heart_rate_bpm": 64},
    }
    return json.dumps(item).encode()


BODY = _prescription_body()
WITHOUT_ALTERNATIVES = frozenset(CHECKS) - {"alternatives"}
VARIANTS = {
    "all checks": "/v1/analyses",
    "no alternatives": "/v1/analyses?checks=" + ",".join(sorted(WITHOUT_ALTERNATIVES)),
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module", params=WORKERS, ids=lambda w: f"{w}worker")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, int]]:
    workers: int = request.param
    port = free_port()
    log = (tmp_path_factory.mktemp("serve") / "serve.log").open("w")
    command = [sys.executable, "-m", "cli.main", "serve", "--host", "127.0.0.1", "--port", str(port)]
    database = tmp_path_factory.mktemp("workflow-db") / "iatro.sqlite"
    env = {**os.environ, "IATRO_DATABASE_URL": f"sqlite:///{database}"}
    process = subprocess.Popen(
        [*command, "--workers", str(workers)], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(process, base, STARTUP_TIMEOUT_S, interval_s=0.25)
        # With several workers /ready may answer from one while another still loads: warm them all.
        for _ in range(WARMUP_REQUESTS * workers):
            httpx.post(
                f"{base}/v1/analyses", content=BODY, headers={"content-type": "application/json"}, timeout=60
            )
        yield base, workers
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@dataclass
class Level:
    clients: int
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")


async def _load(base: str, path: str, clients: int) -> Level:
    latencies: list[float] = []
    errors = 0
    sent = 0
    deadline = time.perf_counter() + MAX_SECONDS
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal errors, sent
            while sent < MAX_REQUESTS and time.perf_counter() < deadline:
                sent += 1
                start = time.perf_counter()
                try:
                    response = await client.post(
                        path, content=BODY, headers={"content-type": "application/json"}
                    )
                    ok = response.status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    latencies.append((time.perf_counter() - start) * 1000)
                else:
                    errors += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        seconds = time.perf_counter() - start
    return Level(clients, len(latencies) + errors, errors, seconds, latencies)


def test_api_load(
    benchmark, engine: Engine, server: tuple[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    base, workers = server
    benchmark.group = f"API load, 15 lines, {workers} worker(s)"
    prescription = parse_prescription(BODY)

    def in_process(checks: frozenset[str] | None = None) -> bytes:
        return orjson.dumps(report_document(engine.analyze(parse_prescription(BODY), checks)))

    in_process()  # warm the resolver's line cache, as the server's warm-up did
    gc.collect()
    gc.freeze()  # as the server does after loading the KB (api/state.py): no full GC over the KB
    # The benchmark fixture times the default variant; the other is timed alongside, same method.
    benchmark.pedantic(in_process, rounds=60, iterations=1, warmup_rounds=5)
    reference_ms = {
        "all checks": benchmark.stats.stats.median * 1000,
        "no alternatives": statistics.median(
            _timed(lambda: in_process(WITHOUT_ALTERNATIVES)) for _ in range(200)
        ),
    }
    engine_ms = {
        "all checks": statistics.median(_timed(lambda: engine.analyze(prescription)) for _ in range(30)),
        "no alternatives": statistics.median(
            _timed(lambda: engine.analyze(prescription, WITHOUT_ALTERNATIVES)) for _ in range(200)
        ),
    }
    header = (
        f"{'variant':<16} {'clients':>7} {'requests':>8} {'errors':>6} {'req/s':>8} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'in-proc ms':>10} {'p50/in-proc':>11}"
    )
    lines = [
        f"\nPOST /v1/analyses, 15-line prescription, {workers} server worker(s), httpx client on this host",
        "in-proc = parse the JSON body + analyse + render the report (median); engine alone: "
        + ", ".join(f"{v} {ms:.2f} ms" for v, ms in engine_ms.items()),
        header,
    ]
    failed = 0
    for variant, path in VARIANTS.items():
        for clients in CONCURRENCY:
            lv = asyncio.run(_load(base, path, clients))
            failed += lv.errors
            ref = reference_ms[variant]
            lines.append(
                f"{variant:<16} {lv.clients:>7} {lv.requests:>8} {lv.errors:>6} {lv.throughput:>8.1f} "
                f"{lv.percentile(50):>8.2f} {lv.percentile(99):>8.2f} {ref:>10.2f} "
                f"{lv.percentile(50) / ref:>11.2f}"
            )
            benchmark.extra_info[f"{variant}, c={clients}"] = {
                "requests": lv.requests,
                "errors": lv.errors,
                "throughput_rps": round(lv.throughput, 1),
                "p50_ms": round(lv.percentile(50), 3),
                "p99_ms": round(lv.percentile(99), 3),
                "in_process_ms": round(ref, 3),
            }
    with capsys.disabled():
        print("\n".join(lines))
    assert failed == 0, "requests failed under load"


def _timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return (time.perf_counter() - start) * 1000
