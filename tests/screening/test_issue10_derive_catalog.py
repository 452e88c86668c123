"""Issue 10 (faster derive): the line catalog's memos change no line, for any product of the knowledge base.

:class:`screening.lines.LineCatalog` resolves a line key once for a line and its chronic twin, and
runs the engine's ACB and QT checks once per exposure but its duration. Every line it builds, for
every BDPM product of the real KB (chronic or not), every ATC code and some unknown or malformed
codes, in shuffled order, is compared with the line built without any memo: the contract input
resolved by the engine's resolver, its exposures, and the checks run on each exposure alone.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from iatro.analysis import Engine
from iatro.checks.context import CheckContext
from iatro.checks.exposures import build_exposures
from iatro.checks.qt import DrugAtcFactor
from iatro.model.prescription import LineInput, Patient
from screening.lines import CodeKind, Line, LineCatalog


def _fields(line: Line) -> tuple[object, ...]:
    return (
        line.key,
        line.chronic,
        line.input,
        line.resolved,
        line.exposures,
        line.acb,
        line.qt_sure,
        line.qt_maybe,
        line.qt_atc_factors,
        line.molecules,
        line.criteria_relevant,
    )


def _unmemoised(
    catalog: LineCatalog, key: str, line_input: LineInput | None, chronic: bool
) -> tuple[object, ...]:
    """The line as the engine would read it alone, nothing shared with any other line."""
    if line_input is None:
        return (key, chronic, None, False, (), (), frozenset(), frozenset(), frozenset(), (), False)
    engine = catalog.engine
    if chronic:
        line_input = line_input.model_copy(update={"duration_days": catalog.chronic_days})
    report = engine.resolver.resolve(line_input, 0)
    resolved = report.status == "resolved"
    exposures = build_exposures(engine.kb, (report,), (line_input,)) if resolved else ()
    acb: list[tuple[str, int]] = []
    qt_sure: set[int] = set()
    qt_maybe: set[int] = set()
    factors: set[str] = set()
    drug_factors = [f.id for f in catalog.qt.table.factors if isinstance(f, DrugAtcFactor)]
    for exposure in exposures:
        alone = CheckContext(exposures=(exposure,), patient=Patient())
        scores: dict[str, Any] = catalog.anticholinergic.run(alone).scores["anticholinergic"]  # type: ignore[assignment]
        acb.extend(scores["by_substance"].items())
        qt: dict[str, Any] = catalog.qt.run(alone).scores["qt"]  # type: ignore[assignment]
        if qt["drugs"]:
            qt_sure.add(exposure.substance_id)
        if qt["possible_drugs"]:
            qt_maybe.add(exposure.substance_id)
        factors.update(f for f in drug_factors if qt["points"].get(f))
    return (
        key,
        chronic,
        line_input,
        resolved,
        exposures,
        tuple(acb),
        frozenset(qt_sure),
        frozenset(qt_maybe),
        frozenset(factors),
        tuple((e.substance_id, e.name, e.duration_days) for e in exposures),
        any(catalog._relevant(e) for e in exposures),
    )


@pytest.mark.slow
def test_every_line_equals_the_line_built_alone(engine: Engine) -> None:
    catalog = LineCatalog(engine, chronic_days=180)
    kb = engine.kb
    codes: list[tuple[CodeKind, str]] = [("cis", p.cis) for p in kb.products]
    codes += [("cip13", c) for c in sorted(kb.by_cip13)[::50]]  # boxes: read as their product
    codes += [("atc", a) for a in sorted({a for s in kb.substances for a in s.atc})]
    codes += [("cis", "60000000"), ("cis", "bad"), ("cip13", "3400999999990"), ("atc", "Z99ZZ99")]
    wanted = [(*catalog.base(kind, code), chronic) for kind, code in codes for chronic in (False, True)]
    random.Random(10).shuffle(wanted)  # a line and its chronic twin built far apart, in any order
    ids = catalog.line_ids(wanted)
    assert len(set(ids)) == len({(key, chronic) for key, _, chronic in wanted}) > 30_000
    shared = sum(1 for line in catalog.lines if line.exposures) - len(catalog._alone)
    assert shared > 10_000  # the memo is what the test is about: most exposures were read once
    for lid, (key, line_input, chronic) in zip(ids, wanted, strict=True):
        line = catalog.lines[lid]
        assert line.id == lid
        assert _fields(line) == _unmemoised(catalog, key, line_input, chronic), (key, chronic)
