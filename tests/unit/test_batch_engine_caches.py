"""Issue 4/5 (performance): the engine's memoised alerts do not depend on which prescription built them.

The checks remember alerts and per-substance results across prescriptions (interaction pairs, CYP
combinations, explicit-criteria findings, ACB ratings, NTI matches). Two engines on the same KB
analyse the same prescriptions in opposite orders, so that every cached entry one of them reuses was
built by a different prescription in the other; every report must be identical, and identical to a
second pass (everything from the caches).
"""

from __future__ import annotations

import random

from benchmarks.generator import prescriptions
from iatro.analysis import CHECKS, Engine
from iatro.kb.store import KnowledgeBase
from iatro.model.prescription import Prescription

ALL_BUT_ALTERNATIVES = frozenset(CHECKS) - {"alternatives"}
POSOLOGIES = (None, "1 cp le matin", "1 cp matin et soir", "2 cp 3 fois par jour", "1 cp si besoin")


def _batch(count: int) -> list[Prescription]:
    rng = random.Random(11)
    out = []
    for item in prescriptions(count, seed=515, lines=(5, 20)):
        lines = item["lines"]
        assert isinstance(lines, list)
        for line in lines:
            posology = rng.choice(POSOLOGIES)
            if posology:
                line["posology"] = posology
        item["date"] = "2026-11-24"
        item["patient"] = {
            "age": rng.randint(66, 97),
            "sex": rng.choice("FM"),
            "weight_kg": rng.choice((48, 62, 80)),
            "creatinine_umol_l": rng.choice((70, 110, 190)),
            "conditions": rng.choice((["I48", "I10"], ["I50"], ["K25", "F03"], [], ["N18", "E11"])),
            "labs": {"potassium_mmol_l": rng.choice((3.2, 4.2, 5.6)), "qtc_ms": rng.choice((420, 480))},
        }
        out.append(Prescription.model_validate(item))
    return out


def test_reports_do_not_depend_on_what_the_caches_saw(engine: Engine, kb: KnowledgeBase) -> None:
    batch = _batch(300)
    other = Engine(kb)
    forward = [engine.analyze(p, ALL_BUT_ALTERNATIVES).model_dump_json() for p in batch]
    backward = [other.analyze(p, ALL_BUT_ALTERNATIVES).model_dump_json() for p in reversed(batch)]
    assert forward == backward[::-1]
    again = [engine.analyze(p, ALL_BUT_ALTERNATIVES).model_dump_json() for p in batch]
    assert again == forward


def test_alternatives_rechecks_agree_across_engines(engine: Engine, kb: KnowledgeBase) -> None:
    """The proven alternatives re-run the checks on modified prescriptions: the heaviest cache user."""
    batch = _batch(20)
    other = Engine(kb)
    forward = [engine.analyze(p).model_dump_json() for p in batch]
    backward = [other.analyze(p).model_dump_json() for p in reversed(batch)]
    assert forward == backward[::-1]
