"""Garbage collection in a server process: freeze what survives a full collection, thaw it now and then.

Why. Python's cyclic collector walks every tracked object of the oldest generation at each full
(generation 2) collection. After mixed traffic the engine's caches (resolved lines, qualified
interaction levels, STOPP/START and qualification results) hold ~300 000 tracked objects besides
the ~400 000 of the KB (frozen once in :func:`api.state.load`): each full collection then took 200
to 460 ms, every 3 to 5 s under load, in the middle of a request (p99 of a 15-line analysis 146 ms
at one client, 439 ms at ten; issue 6).

What. After each full collection, every tracked object is a survivor of it: the caches, long
lived by construction. :class:`FreezeAfterFullCollection` moves them to the permanent generation
(``gc.freeze()``), which later collections skip; only what was allocated since is walked.

The bound. An object frozen while alive that later becomes *cyclic* garbage is not reclaimed
while frozen (freezing does not affect reference counting: acyclic garbage, a cache entry evicted
or cleared, is freed at once as always). So the frozen set is handed back to the collector
(``gc.unfreeze()``) when ``thaw_interval_s`` has passed since the last thaw, or when the objects
frozen since then reach ``thaw_growth - 1`` times what the startup (or the last thaw) left: the
next full collection then walks everything once (one pause of the old kind: 444 ms measured under
load), reclaims that garbage, and freezes its survivors again. The growth bound is a backstop,
and geometric: the caches may grow large (the resolver alone keeps up to 100 000 lines), and each
doubling costs one pause, not one per collection; the frozen garbage stays below the live set.
Measured (15-line analyses, 90 s in process): the frozen set grew by 27 objects over 34 000
analyses, and a server's memory stayed flat (259 MB over 4 x 20 s of wrk): in practice the time
bound reclaims what little there is.

Measured in the server under wrk (1 worker, about 11 000 analyses): after the startup, 16 full
collections of 51 to 188 ms without the policy (2.3 s in all); with it, 87 of 0.3 to 9 ms (0.13 s
in all). In process: 114 full collections in 152 ms against 30 in 1 977 ms.

A collection cannot be run from the callback (the collector is busy: ``gc.collect()`` returns 0
there), hence "the next full collection" rather than an immediate one: the interpreter's own
schedule decides when, as it does without this policy.

Written for CPython's generational collector (3.11, the project's Python), where a callback with
``info["generation"] == 2`` follows a full collection.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("iatro.api")

FULL = 2  # the oldest generation: a collection of it is a full collection


@dataclass
class FreezeAfterFullCollection:
    """A ``gc.callbacks`` hook; :meth:`install` it once the KB is loaded, :meth:`remove` it at shutdown."""

    thaw_interval_s: float
    thaw_growth: float
    clock: Callable[[], float] = time.monotonic
    freezes: int = 0  # full collections whose survivors were frozen
    thaws: int = 0  # times the frozen set was handed back to the collector
    _baseline: int = field(default=0, init=False)  # frozen count at the startup or the last thaw
    _added: int = field(default=0, init=False)  # objects frozen since (some of them freed since)
    _since: float = field(default=0.0, init=False)
    _thawed: bool = field(default=False, init=False)
    _installed: bool = field(default=False, init=False)

    def install(self) -> None:
        """Start with one full collection (at startup rather than under the first requests: 60 ms
        with the workflow database open) whose survivors, all of the startup, are the baseline."""
        if self._installed:
            return
        gc.collect()
        gc.freeze()
        self._baseline, self._added, self._since = gc.get_freeze_count(), 0, self.clock()
        gc.callbacks.append(self._on_collection)
        self._installed = True

    def remove(self) -> None:
        """Stop, and hand every frozen object back to the collector: after a shutdown (the tests, an
        embedding process) nothing stays out of its reach."""
        if not self._installed:
            return
        gc.callbacks.remove(self._on_collection)
        self._installed = False
        gc.unfreeze()

    @property
    def installed(self) -> bool:
        return self._installed

    def _on_collection(self, phase: str, info: dict[str, Any]) -> None:
        if phase != "stop" or info.get("generation") != FULL:
            return
        now = self.clock()
        if self._thawed:
            # This collection walked everything: its survivors are the live set, the new baseline.
            gc.freeze()
            self._thawed = False
            self._baseline, self._added, self._since = gc.get_freeze_count(), 0, now
            self.freezes += 1
            log.debug("gc: %d objects frozen after a full collection over all", self._baseline)
            return
        limit = (self.thaw_growth - 1) * max(self._baseline, 1)
        if now - self._since >= self.thaw_interval_s or self._added > limit:
            gc.unfreeze()
            self._thawed = True
            self.thaws += 1
            log.info(
                "gc: frozen set handed back to the collector after %.0f s (%d objects frozen since the last)",
                now - self._since,
                self._added,
            )
            return
        # The growth is counted as what each freeze adds, not with gc.get_freeze_count(), which walks
        # the frozen set (13 ms for 330 000 objects, at every full collection: more CPU than the
        # policy saves). An upper bound, since some of them die later: a thaw may come early, never late.
        self._added += len(gc.get_objects(generation=FULL))
        gc.freeze()
        self.freezes += 1
