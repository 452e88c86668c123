"""How the API is served (``iatro serve``): uvicorn's protocol class, event loop, and worker processes.

Measured on this project's 2-core machine with ``wrk`` (issue 6; ``benchmarks/test_bench_api.py``
is the kept benchmark, the comparisons below were one-off runs, each pair interleaved in one run).

HTTP parser: httptools (C) rather than h11 (pure Python): the HTTP layer's CPU is CPU the analysis
could have used. Server CPU per request, h11 against httptools: ``GET /health`` 0.31 against
0.23 ms, a 15-line analysis 1.82 against 1.68 ms.

Event loop: asyncio's, not uvloop. The analysis runs on the event loop (see
``api/routes/analyses.py``), so under load one loop iteration is a whole batch of analyses, and
uvloop (libuv) accepts one new connection per iteration: 50 clients connecting to a busy server
waited up to 2 s for their first answer, against 0.09 s with asyncio's loop, which accepts them all
at once. The CPU per request was the same (1.63 and 1.61 ms).

TCP_NODELAY on every connection: asyncio sets it only on sockets whose ``proto`` is TCP, and a
socket made elsewhere (uvicorn's shared one for its own workers) has ``proto`` 0. Without it a
response written as headers then body waited for the client's delayed ACK: about 40 ms on every
keep-alive request.

Workers: each process accepts on its own listening socket (``SO_REUSEPORT``), and the kernel spreads
new connections among them (50 keep-alive clients: 25/25, 23/27, 24/26). With one shared socket
(uvicorn's ``--workers``), whichever process woke first took most of a burst of connections (50/0,
42/8, 47/3, 49/1): the other worker idled while its share of the clients queued on the first.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import socket
import time
from contextlib import suppress
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from iatro.errors import IatroError

log = logging.getLogger("iatro.api")

# What uvicorn is given: an import string, so that spawned workers import it too.
HTTP_PROTOCOL = "api.server:NoDelayHttpToolsProtocol"
EVENT_LOOP = "asyncio"
LOG_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"
STOP_TIMEOUT_S = 30  # a worker still running this long after SIGTERM is killed


def set_nodelay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with suppress(OSError):  # a transport that refuses the option is served as before
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class NoDelayHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        set_nodelay(transport)
        super().connection_made(transport)


class ServeError(IatroError):
    """The server could not start or a worker stopped it (the CLI's exit 1)."""


def serve(app: str, *, host: str, port: int, workers: int, **options: Any) -> None:
    """Serve the ASGI application factory ``app`` until SIGINT or SIGTERM (graceful shutdown)."""
    config = uvicorn.Config(app, host=host, port=port, http=HTTP_PROTOCOL, loop=EVENT_LOOP, **options)
    if workers == 1:
        server = uvicorn.Server(config)
        server.run()
        if not server.started:
            raise ServeError("the server did not start (the log above says why)")
    elif hasattr(socket, "SO_REUSEPORT"):
        _serve_workers(config, workers)
    else:  # Windows: one socket shared by uvicorn's worker processes
        uvicorn.run(
            app, host=host, port=port, workers=workers, http=HTTP_PROTOCOL, loop=EVENT_LOOP, **options
        )


def listening_socket(host: str, port: int, backlog: int, listen: bool = True) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    if listen:
        sock.listen(backlog)
    return sock


def _serve_workers(config: uvicorn.Config, workers: int) -> None:
    # The address is checked here, where the error can be reported; a socket that is bound but does
    # not listen receives no connection, and is closed before the workers bind theirs.
    listening_socket(config.host, config.port, config.backlog, listen=False).close()
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_worker, args=(config,), name=f"iatro-worker-{n}") for n in range(workers)
    ]
    stopping = False

    def stop(signum: int = signal.SIGTERM, frame: FrameType | None = None) -> None:
        nonlocal stopping
        stopping = True
        for process in processes:
            if process.pid is not None and process.is_alive():
                with suppress(ProcessLookupError):
                    # SIGTERM, not SIGINT: after a Ctrl-C the workers already have one SIGINT, and a
                    # second one makes uvicorn skip the graceful shutdown.
                    os.kill(process.pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for process in processes:
            process.start()
        log.info("serving on http://%s:%d with %d workers", config.host, config.port, workers)
        failed: multiprocessing.process.BaseProcess | None = None
        while any(process.is_alive() for process in processes):
            for process in processes:
                process.join(timeout=0.2)
                if not stopping and not process.is_alive():
                    failed = process
                    stop()
        if failed is not None:
            raise ServeError(f"{failed.name} exited with code {failed.exitcode}; the server stopped")
    finally:
        stop()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process in processes:
            if process.pid is not None:
                process.join(timeout=max(0.0, deadline - time.monotonic()))
                if process.is_alive():
                    process.kill()
                    process.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _worker(config: uvicorn.Config) -> None:  # runs in a spawned process
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    config.configure_logging()
    sock = listening_socket(config.host, config.port, config.backlog)
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    if not server.started:
        raise SystemExit(3)  # uvicorn's code for a failed startup; the parent reports it
