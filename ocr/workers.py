"""Pages read side by side: a pool of processes (the command line, the corpus) or of threads (a server).

Processes are forked from a parent that has the knowledge base loaded, so a worker starts in
milliseconds and shares the KB's memory with its parent instead of loading its own (~200 MB).
Forking is only safe from a process with no other thread running: a server (whose event loop and
thread pool are threads) uses the thread pool instead. Threads still read pages side by side there,
because the costly part, Tesseract, runs as a child process of each thread.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from functools import partial
from typing import Literal, TypeVar

PoolKind = Literal["process", "thread"]
T = TypeVar("T")
R = TypeVar("R")

# The function a forked worker process runs on its tasks: set by the pool's initializer, in the worker
# only (inherited at the fork with everything it holds, the KB included; never pickled).
_WORKER_FUNCTION: list[Callable[[object], object]] = []


def cores() -> int:
    """The cores this process may run on (a container's CPU set, not the host's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def _adopt(function: Callable[[object], object]) -> None:
    _WORKER_FUNCTION[:] = [function]


def _call(task: object) -> object:
    return _WORKER_FUNCTION[0](task)


def pool_map(
    function: Callable[[T], R], tasks: Sequence[T], workers: int, kind: PoolKind = "process"
) -> list[R]:
    """``[function(task) for task in tasks]``, in order, on up to ``workers`` processes or threads.

    ``function`` may be a bound method of an object holding the KB: a forked worker inherits it, and
    only the tasks and their results cross between the processes.
    """
    workers = max(1, min(workers, len(tasks)))
    if workers == 1:
        return [function(task) for task in tasks]
    if kind == "process" and _can_fork():
        with ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("fork"),
            initializer=partial(_adopt, function),  # type: ignore[arg-type]
        ) as processes:
            return list(processes.map(_call, tasks))  # type: ignore[arg-type]
    with ThreadPoolExecutor(max_workers=workers) as threads:
        return list(threads.map(function, tasks))
