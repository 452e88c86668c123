"""Issue 6: the server's garbage-collection policy (api/gc_policy.py) pauses less and does not leak.

Survivors of a full collection are frozen; cyclic garbage frozen while alive is reclaimed after a
thaw (by time or by growth); under many requests the tracked objects (walked and frozen) stay
bounded; the hook is installed by the app's lifespan and removed at its shutdown.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.examples import FHIR_BUNDLE
from api.gc_policy import FreezeAfterFullCollection
from benchmarks.generator import prescriptions
from iatro.analysis import CHECKS
from iatro.settings import Settings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Node:
    """A reference cycle: only the cyclic collector can free it (one tracked object: no __dict__)."""

    __slots__ = ("__weakref__", "me")

    def __init__(self) -> None:
        self.me = self


def _is_policy(callback: Any) -> bool:
    return isinstance(getattr(callback, "__self__", None), FreezeAfterFullCollection)


@pytest.fixture
def alone() -> Iterator[None]:
    """The policy under test alone (without the session app's own: both would freeze and thaw), and
    no automatic collection: only the test's own ``gc.collect()`` calls run the hook."""
    saved = list(gc.callbacks)
    gc.callbacks[:] = [c for c in saved if not _is_policy(c)]
    gc.disable()
    try:
        gc.collect()
        gc.freeze()  # a known start: everything so far frozen, and that count the policy's baseline
        yield
    finally:
        gc.enable()
        gc.callbacks[:] = saved + [c for c in gc.callbacks if c not in saved]


def _policy(clock: Clock, growth: float = 100.0) -> FreezeAfterFullCollection:
    policy = FreezeAfterFullCollection(thaw_interval_s=60.0, thaw_growth=growth, clock=clock)
    policy.install()
    return policy


def test_survivors_of_a_full_collection_are_frozen(alone: None) -> None:
    policy = _policy(Clock())
    try:
        kept = [Node() for _ in range(1000)]
        before = gc.get_freeze_count()
        gc.collect(1)  # not a full collection: nothing frozen
        assert gc.get_freeze_count() == before and policy.freezes == 0
        gc.collect()
        assert policy.freezes == 1
        assert gc.get_freeze_count() >= before + len(kept)
        assert len(gc.get_objects()) < len(kept)  # what is left to walk is not the survivors
    finally:
        policy.remove()


def test_cyclic_garbage_frozen_while_alive_is_reclaimed_after_a_thaw(alone: None) -> None:
    clock = Clock()
    policy = _policy(clock)
    try:
        nodes = [Node() for _ in range(100)]
        gc.collect()  # frozen while alive
        alive = [weakref.ref(n) for n in nodes]
        del nodes
        gc.collect()
        assert all(r() is not None for r in alive)  # frozen garbage: out of the collector's reach
        clock.now += 61  # past thaw_interval_s
        gc.collect()
        assert policy.thaws == 1
        gc.collect()  # the next full collection walks everything and reclaims it
        assert all(r() is None for r in alive)
        assert policy.freezes == 3  # and freezes again what survived it
        clock.now += 30
        gc.collect()
        assert policy.thaws == 1  # the interval counts from the last thaw
    finally:
        policy.remove()


def test_growth_of_the_frozen_set_forces_a_thaw(alone: None) -> None:
    start = gc.get_freeze_count()
    policy = _policy(Clock(), growth=1.2)
    try:
        kept = [Node() for _ in range(start // 10)]
        gc.collect()  # 1.0 times the baseline when checked: frozen, now 1.1 times
        kept += [Node() for _ in range(start // 5)]
        gc.collect()  # 1.1 when checked: frozen, now 1.3 times
        assert (policy.freezes, policy.thaws) == (2, 0)
        gc.collect()  # 1.3 > 1.2: thawed
        assert policy.thaws == 1
        gc.collect()  # the full walk; its survivors frozen: the new baseline
        assert policy.freezes == 3
        gc.collect()
        assert policy.thaws == 1  # no growth since
        assert len(kept) == start // 10 + start // 5
    finally:
        policy.remove()


def test_remove_takes_the_hook_out_and_unfreezes(alone: None) -> None:
    policy = _policy(Clock())
    gc.collect()
    assert gc.get_freeze_count() > 0
    policy.remove()
    assert policy._on_collection not in gc.callbacks and not policy.installed
    assert gc.get_freeze_count() == 0
    policy.remove()  # twice is harmless


SLACK = 300  # tracked objects a round may add without a leak (the test client's own, say)


def _tracked() -> int:
    """Every object the collector tracks: walked (generations 0-2) or frozen."""
    return len(gc.get_objects()) + gc.get_freeze_count()


def test_many_requests_keep_the_tracked_objects_bounded(client: TestClient) -> None:
    policy = client.app.state.iatro.gc_policy  # type: ignore[attr-defined]
    assert policy is not None and policy.installed and policy._on_collection in gc.callbacks
    bodies: list[dict[str, Any]] = [
        {**item, "date": "2026-11-24"} for item in prescriptions(60, seed=66, lines=(15, 15))
    ]
    no_alternatives = {"checks": ",".join(c for c in CHECKS if c != "alternatives")}

    def one_round() -> int:
        for i, body in enumerate(bodies):
            params = {} if i % 10 == 0 else no_alternatives
            assert client.post("/v1/analyses", json=body, params=params).status_code == 200
            names = [line["substance"] for line in body["lines"]]
            texts = [{"text": f"{name} 1 cp le soir"} for name in names[:5]]
            assert client.post("/v1/lines/resolve", json={"lines": texts}).status_code == 200
            assert client.get("/v1/drugs", params={"q": names[i % len(names)][:5]}).status_code == 200
        assert client.post("/fhir/$analyze", json=FHIR_BUNDLE).status_code == 200
        gc.collect()  # a full collection: the policy freezes (or thaws) here
        return _tracked()

    freezes = policy.freezes
    rounds = [one_round() for _ in range(4)]
    assert policy.freezes > freezes
    # Round 1 fills the engine's caches; the same 181 requests again must not add tracked objects
    # (measured: not one; a leak of one object per request would add 543).
    assert max(rounds[1:]) <= rounds[1] + SLACK, rounds
    # Cyclic garbage frozen while alive (as a request's might be) is reclaimed after a thaw: time it.
    nodes = [Node() for _ in range(5000)]
    alive = [weakref.ref(n) for n in nodes]
    gc.collect()
    del nodes
    frozen = gc.get_freeze_count()
    clock = policy.clock
    policy.clock = lambda: clock() + 10 * policy.thaw_interval_s
    try:
        gc.collect()
    finally:
        policy.clock = clock
    gc.collect()
    assert policy.thaws >= 1
    assert all(r() is None for r in alive)
    assert gc.get_freeze_count() <= frozen - len(alive) + SLACK
    del alive
    assert one_round() <= rounds[1] + SLACK


def test_the_lifespan_installs_the_policy_and_removes_it_at_shutdown(
    settings: Settings, tmp_path: Path
) -> None:
    # No KB (a missing directory): the lifespan is quick, and the policy does not depend on the KB.
    quick = settings.model_copy(
        update={"kb_dir": tmp_path / "no-kb", "database_url": f"sqlite:///{tmp_path / 'w.sqlite'}"}
    )
    app = create_app(quick)
    with TestClient(app):
        policy = app.state.iatro.gc_policy
        assert policy is not None and policy.installed and policy._on_collection in gc.callbacks
    assert not policy.installed and policy._on_collection not in gc.callbacks

    app = create_app(quick.model_copy(update={"gc_freeze_after_full": False}))
    with TestClient(app):
        assert app.state.iatro.gc_policy is None
