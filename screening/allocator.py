"""Memory management for the length of a screening run: what a batch job wants, not a server.

Two costs that are not the screening's own work, each about a tenth of a run, are set aside:

- The garbage collector's full collections would traverse the knowledge base, the engine and the
  screener (hundreds of thousands of long-lived objects) again and again: they are frozen for the
  run (``gc.freeze``), which changes only collection work, never what is kept.
- glibc's malloc serves each array of a few megabytes (a chunk's columns) with a fresh ``mmap`` and
  gives it back to the system when freed, so every chunk pays page faults again for the same sizes:
  a third of the CPU time of a 1M-patient run was system time. For the run, arrays up to 32 MiB
  (glibc's own maximum for this threshold) come from the heap, and the heap keeps up to 1 GiB of
  freed memory for the next chunk instead of trimming it. The peak memory does not grow: the same
  chunk-sized arrays are reused rather than mapped anew.

Both are restored when the run ends. On a C library without ``mallopt`` (musl, macOS) only the
collector part applies.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import platform
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# glibc's mallopt parameters (malloc.h) and their documented defaults.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_DEFAULT_THRESHOLD = 128 * 1024
_RUN_MMAP_THRESHOLD = 32 * 1024 * 1024
_RUN_TRIM_THRESHOLD = 1024 * 1024 * 1024


def _mallopt() -> Any | None:
    if platform.libc_ver()[0] != "glibc":
        return None
    try:
        return getattr(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6"), "mallopt", None)
    except OSError:
        return None


@contextmanager
def batch_memory() -> Iterator[None]:
    """Frozen collector and a heap that keeps chunk-sized arrays, for the duration of the block."""
    mallopt = _mallopt()
    tuned = mallopt is not None and bool(
        mallopt(_M_MMAP_THRESHOLD, _RUN_MMAP_THRESHOLD) and mallopt(_M_TRIM_THRESHOLD, _RUN_TRIM_THRESHOLD)
    )
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
        if tuned and mallopt is not None:
            mallopt(_M_MMAP_THRESHOLD, _DEFAULT_THRESHOLD)
            mallopt(_M_TRIM_THRESHOLD, _DEFAULT_THRESHOLD)
