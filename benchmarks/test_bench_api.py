"""Issue 6 load benchmark: POST /v1/analyses over real HTTP, at 1, 10 and 50 concurrent clients.

The server is `iatro serve` in a subprocess on a free 127.0.0.1 port (one worker, then two). The
load client is `wrk` (C, one thread, a closed loop per connection: N connections are N clients),
driven by a Lua script that rotates among distinct 15-line prescriptions: identical bodies would
flatter every cache on the way. Each level is bounded in time (``LEVEL_SECONDS``).

The same run measures the analysis in process on the same bodies (JSON bytes in, report bytes out,
as the route does it): the baseline of the ratios. Two ratios, because they answer two questions:
``p50/in-proc`` at one client is the latency the HTTP service adds; ``cpu/in-proc`` (server CPU time
per request, all worker processes, over the in-process CPU time) is the service's overhead in CPU,
which with Little's law bounds what two cores can do at 50 clients whatever the queueing:
``throughput <= cores / CPU per request`` and ``mean latency = clients / throughput``.

Two variants: all checks (the default), where the search for proven alternatives dominates (it
re-runs the checks for each candidate substitute), and all checks but ``alternatives``
(``?checks=...``), where the engine is fast enough for the HTTP cost to show.

Reading the percentiles: wrk corrects them for coordinated omission. A pause of P ms, at a mean
interval of I ms between one connection's requests, adds about P/I samples (P, P - I, ...): what
clients arriving at the measured rate would have waited. So a single 300 ms garbage collection in
a 6-second level at one client is enough to set p99; the requests themselves were not that slow.

Caveats: client and server share the machine's two cores (wrk's own CPU is reported: small), and on
a shared machine other processes take CPU too: compare ratios within one run, not across runs.

Run: `.venv/bin/pytest benchmarks/test_bench_api.py --benchmark-only -s` (needs `wrk`: Debian package)
"""

from __future__ import annotations

import gc
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest

from api.report_json import ReportJson
from benchmarks.generator import prescriptions
from iatro.analysis import CHECKS, Engine, parse_prescription
from tests.serving import free_port, stop, wait_ready

ROOT = Path(__file__).resolve().parents[1]
WRK = shutil.which("wrk")
pytestmark = pytest.mark.skipif(
    WRK is None, reason="wrk is not installed (Debian package `wrk`): the load client of this benchmark"
)

CONCURRENCY = (1, 10, 50)
WORKERS = (1, 2)
DISTINCT_BODIES = 300
LINES = 15
ALL_CHECKS = 100  # bodies timed in process with every check (one takes ~10-15 ms)
LEVEL_SECONDS = 6
WARMUP_SECONDS = 3  # per variant and worker count: every worker sees the bodies once or more
REQUEST_TIMEOUT_S = 10  # wrk counts a slower answer as an error
STARTUP_TIMEOUT_S = 90
WITHOUT_ALTERNATIVES = frozenset(CHECKS) - {"alternatives"}
VARIANTS = {
    "all checks": "/v1/analyses",
    "no alternatives": "/v1/analyses?checks=" + ",".join(sorted(WITHOUT_ALTERNATIVES)),
}

# Per wrk thread: its own Lua state, its own starting point in the bodies. `done` runs once, after
# the threads, and writes the summary (latencies in microseconds) where the benchmark reads it.
ROTATE_LUA = """
local bodies_path = os.getenv("IATRO_BENCH_BODIES")
local summary_path = os.getenv("IATRO_BENCH_SUMMARY")
local api_path = os.getenv("IATRO_BENCH_PATH")
local started = 0

function setup(thread)
  thread:set("first", started * 97)
  started = started + 1
end

function init(args)
  bodies = {}
  for line in io.lines(bodies_path) do
    bodies[#bodies + 1] = line
  end
  index = first or 0
  headers = {["Content-Type"] = "application/json"}
end

function request()
  index = index + 1
  return wrk.format("POST", api_path, headers, bodies[(index % #bodies) + 1])
end

function done(summary, latency, requests)
  local e = summary.errors
  local out = io.open(summary_path, "w")
  out:write(string.format(
    '{"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, "status": %d, ' ..
    '"timeout": %d, "p50_us": %d, "p99_us": %d, "mean_us": %f}',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean))
  out:close()
end
"""


def _bodies(seed: int = 15) -> list[bytes]:
    """Distinct 15-line prescriptions of an older patient with the inputs every check reads."""
    bodies = []
    for item in prescriptions(DISTINCT_BODIES, seed=seed, lines=(LINES, LINES)):
        patient = dict(item["patient"])  # type: ignore[call-overload]
        patient.update(
            weight_kg=55,
            creatinine_umol_l=120,
            conditions=["I48", "I10", "E11", "F03"],
            labs={"potassium_mmol_l": 3.6, "qtc_ms": 460, "heart_rate_bpm": 64},
        )
        bodies.append(orjson.dumps({**item, "date": "2026-11-24", "patient": patient}))
    return bodies


BODIES = _bodies()


@dataclass(frozen=True)
class Server:
    base: str
    workers: int
    process: subprocess.Popen[bytes]
    bodies_file: Path
    lua_file: Path
    summary_file: Path


@pytest.fixture(scope="module", params=WORKERS, ids=lambda w: f"{w}worker")
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workers: int = request.param
    work = tmp_path_factory.mktemp("api-load")
    bodies_file = work / "bodies.jsonl"
    bodies_file.write_bytes(b"\n".join(BODIES) + b"\n")
    lua_file = work / "rotate.lua"
    lua_file.write_text(ROTATE_LUA)
    port = free_port()
    log = (work / "serve.log").open("w")
    env = {**os.environ, "IATRO_DATABASE_URL": f"sqlite:///{work / 'iatro.sqlite'}"}
    command = [sys.executable, "-m", "cli.main", "serve", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--workers", str(workers), "--no-demo"], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(process, base, STARTUP_TIMEOUT_S, interval_s=0.25)
        # /ready answers from the first worker up; a worker still loading its KB accepts no connection
        # yet, and would start cold in the middle of a level: wait for every one.
        _wait_for_workers(work / "serve.log", workers, STARTUP_TIMEOUT_S)
        response = httpx.post(
            f"{base}/v1/analyses", content=BODIES[0], headers={"content-type": "application/json"}, timeout=60
        )
        assert response.status_code == 200 and len(response.json()["lines"]) == LINES
        yield Server(base, workers, process, bodies_file, lua_file, work / "summary.json")
    finally:
        stop(process, timeout_s=20)
        log.close()


def _wait_for_workers(log: Path, workers: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while log.read_text().count("Application startup complete") < workers:
        assert time.monotonic() < deadline, "not every worker started"
        time.sleep(0.25)


@dataclass(frozen=True)
class Level:
    clients: int
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    server_cpu_ms: float  # per request, every process of the server
    client_cpu_ms: float  # per request, wrk

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def _wrk(server: Server, path: str, clients: int, seconds: float) -> Level:
    assert WRK is not None
    env = {
        **os.environ,
        "IATRO_BENCH_BODIES": str(server.bodies_file),
        "IATRO_BENCH_SUMMARY": str(server.summary_file),
        "IATRO_BENCH_PATH": path,
    }
    command = [WRK, "-t1", f"-c{clients}", f"-d{seconds}s", f"--timeout={REQUEST_TIMEOUT_S}s"]
    server_cpu = _tree_cpu_s(server.process.pid)
    client_cpu = _children_cpu_s()
    subprocess.run(
        [*command, "-s", str(server.lua_file), server.base], env=env, check=True, capture_output=True
    )
    server_cpu = _tree_cpu_s(server.process.pid) - server_cpu
    client_cpu = _children_cpu_s() - client_cpu
    s = json.loads(server.summary_file.read_text())
    requests = max(s["requests"], 1)
    return Level(
        clients=clients,
        requests=s["requests"],
        # connect/read/write failures, timeouts, and every answer that is not 2xx or 3xx
        errors=s["connect"] + s["read"] + s["write"] + s["timeout"] + s["status"],
        seconds=s["duration_us"] / 1e6,
        p50_ms=s["p50_us"] / 1000,
        p99_ms=s["p99_us"] / 1000,
        mean_ms=s["mean_us"] / 1000,
        server_cpu_ms=server_cpu * 1000 / requests,
        client_cpu_ms=client_cpu * 1000 / requests,
    )


_TICKS = os.sysconf("SC_CLK_TCK")


def _tree_cpu_s(root: int) -> float:
    """User + system CPU seconds of a process and its descendants (the workers), from /proc."""
    stats: dict[int, tuple[int, float]] = {}  # pid -> (parent, cpu seconds)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # Fields after the command name (which may hold spaces): state, ppid, ... utime, stime.
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICKS)
    tree, total = {root}, 0.0
    changed = True
    while changed:
        changed = False
        for pid, (parent, _) in stats.items():
            if parent in tree and pid not in tree:
                tree.add(pid)
                changed = True
    for pid in tree:
        total += stats.get(pid, (0, 0.0))[1]
    return total


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed_ms(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return (time.perf_counter() - start) * 1000


def test_api_load(benchmark, engine: Engine, server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    benchmark.group = f"API load, {LINES} lines, {server.workers} worker(s)"
    cycle = iter(range(10**9))
    render = ReportJson()  # as the server renders (api/analysis_fast_path.py), with its own memo

    def in_process(checks: frozenset[str] | None, count: int = len(BODIES)) -> bytes:
        body = BODIES[next(cycle) % count]
        return render(engine.analyze(parse_prescription(body), checks))

    # Warm the engine's caches on these bodies, as the server's warm-up below does for its workers.
    for _ in BODIES:
        in_process(WITHOUT_ALTERNATIVES)
    for _ in range(ALL_CHECKS):
        in_process(None, ALL_CHECKS)
    gc.collect()
    gc.freeze()  # as the server does after loading the KB (api/state.py): no full GC over the KB
    # The benchmark fixture times the cheaper variant, one round per distinct body; the other is timed
    # alongside, the same way, on fewer bodies (alternatives take ~10x longer). Wall time is the
    # baseline of latencies; CPU time (the same calls) the baseline of the server's CPU per request.
    cpu_start = time.process_time()
    benchmark.pedantic(in_process, args=(WITHOUT_ALTERNATIVES,), rounds=len(BODIES), iterations=1)
    cpu_no_alternatives = (time.process_time() - cpu_start) * 1000 / len(BODIES)
    cpu_start = time.process_time()
    all_checks = [_timed_ms(lambda: in_process(None, ALL_CHECKS)) for _ in range(ALL_CHECKS)]
    cpu_all_checks = (time.process_time() - cpu_start) * 1000 / ALL_CHECKS
    # The same on prescriptions this process has never seen: what the engine's and the renderer's
    # memos give when the rotation above cannot help them (they remember drugs, pairs and alerts,
    # never whole prescriptions, so this should stay close to the figure above).
    unseen = _bodies(seed=16)
    cpu_start = time.process_time()
    for body in unseen:
        render(engine.analyze(parse_prescription(body), WITHOUT_ALTERNATIVES))
    cpu_unseen = (time.process_time() - cpu_start) * 1000 / len(unseen)
    reference_ms = {
        "all checks": (statistics.median(all_checks), cpu_all_checks),
        "no alternatives": (benchmark.stats.stats.median * 1000, cpu_no_alternatives),
    }
    header = (
        f"{'variant':<16}{'clients':>8}{'requests':>9}{'errors':>7}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>9}"
        f"{'in-proc':>8}{'p50/in-proc':>12}{'cpu ms':>7}{'in-proc cpu':>12}{'cpu/in-proc':>12}"
        f"{'wrk cpu':>8}{'2-core req/s':>13}"
    )
    lines = [
        f"\nPOST /v1/analyses, {LINES}-line prescriptions ({len(BODIES)} distinct), `iatro serve --workers "
        f"{server.workers}`, wrk on this host. in-proc = parse + analyse + render in this process (median "
        "ms; and its CPU ms); cpu = server CPU ms per request (all processes); 2-core req/s = 2 / (server "
        "+ wrk CPU per request), this machine's ceiling; p50/p99 corrected for coordinated omission (wrk). "
        f"In-proc CPU, no alternatives, on {len(unseen)} prescriptions never seen before: "
        f"{cpu_unseen:.2f} ms (rotated bodies: {cpu_no_alternatives:.2f} ms)",
        header,
    ]
    failed = 0
    for variant, path in VARIANTS.items():
        _wrk(server, path, 4, WARMUP_SECONDS)
        for clients in CONCURRENCY:
            lv = _wrk(server, path, clients, LEVEL_SECONDS)
            failed += lv.errors
            ref, ref_cpu = reference_ms[variant]
            ceiling = 2000 / (lv.server_cpu_ms + lv.client_cpu_ms)
            lines.append(
                f"{variant:<16}{lv.clients:>8}{lv.requests:>9}{lv.errors:>7}{lv.throughput:>8.0f}"
                f"{lv.p50_ms:>8.2f}{lv.p99_ms:>9.2f}{ref:>8.2f}{lv.p50_ms / ref:>12.2f}"
                f"{lv.server_cpu_ms:>7.2f}{ref_cpu:>12.2f}{lv.server_cpu_ms / ref_cpu:>12.2f}"
                f"{lv.client_cpu_ms:>8.3f}{ceiling:>13.0f}"
            )
            benchmark.extra_info[f"{variant}, c={clients}"] = {
                "requests": lv.requests,
                "errors": lv.errors,
                "throughput_rps": round(lv.throughput, 1),
                "p50_ms": round(lv.p50_ms, 3),
                "p99_ms": round(lv.p99_ms, 3),
                "mean_ms": round(lv.mean_ms, 3),
                "in_process_ms": round(ref, 3),
                "in_process_cpu_ms": round(ref_cpu, 3),
                "server_cpu_ms_per_request": round(lv.server_cpu_ms, 3),
                "wrk_cpu_ms_per_request": round(lv.client_cpu_ms, 4),
            }
    benchmark.extra_info["in_process_cpu_ms_unseen_bodies"] = round(cpu_unseen, 3)
    with capsys.disabled():
        print("\n".join(lines))
    assert failed == 0, "requests failed under load"
