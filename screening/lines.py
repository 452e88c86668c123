"""Dispensed codes to the lines the engine would read, each resolved once with the engine's own resolver.

A *line* is one drug of a patient's current list: a BDPM product (a CIP13 is read as its product's
CIS, so that a 30-tablet and a 90-tablet box of one product are one drug), or one ATC code, or a code
the knowledge base does not know (an unresolved line: kept and counted, never dropped). Whether the
drug is chronic is part of the line, since it sets the duration the engine sees.

Everything a per-patient check needs from a line and that does not depend on the patient is
computed here once per distinct line, by running the engine's own checks on that line alone: the ACB
points of each substance, whether it is a QT drug for the Tisdale count, and whether any explicit
criterion can select it. The per-patient aggregation (:mod:`screening.checks`) then only combines
these, with the same rules as the engine.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, TypeVar

from pydantic import BaseModel

from iatro.analysis import Engine
from iatro.checks.anticholinergic import AnticholinergicCheck
from iatro.checks.context import CheckContext, Exposure
from iatro.checks.exposures import ExposureKey, build_exposures
from iatro.checks.qt import DrugAtcFactor, QtCheck
from iatro.errors import KnowledgeBaseCorrupt
from iatro.kb.criteria import CriteriaList, DrugSelector
from iatro.model.prescription import LineInput, Patient
from iatro.model.report import LineReport
from iatro.text import fold_words

CheckT = TypeVar("CheckT")
CodeKind = Literal["cip13", "cis", "atc"]
_EMPTY = Patient()


# Every field of an exposure but its duration (and the name and aliases, read from the KB by substance).
_AloneKey = tuple[int, int, tuple[str, ...], str | None, float | None, float | None, float | None, bool]


def _alone_key(e: Exposure) -> _AloneKey:
    return (
        e.line,
        e.substance_id,
        e.atc,
        e.route,
        e.mg_per_intake,
        e.mg_per_day,
        e.intakes_per_day,
        e.as_needed,
    )


@dataclass(frozen=True, slots=True)
class _Alone:
    """The per-line features one exposure brings, read by the engine's checks on that exposure alone."""

    acb: tuple[tuple[str, int], ...]
    qt_sure: bool
    qt_maybe: bool
    qt_factors: tuple[str, ...]
    criteria_relevant: bool


@dataclass(frozen=True, slots=True)
class Line:
    id: int
    key: str  # "cis:60002283", "atc:N06AX11", "cip13:3400999999990" (unknown), ...
    chronic: bool
    input: LineInput | None  # the contract line the engine reads; None for a malformed code
    resolved: bool
    exposures: tuple[Exposure, ...]  # numbered line 0
    acb: tuple[tuple[str, int], ...]  # (substance name, ACB points) of the rated substances
    qt_sure: frozenset[int]  # substance ids that count as QT drugs whatever the patient
    qt_maybe: frozenset[int]  # QT drugs only if their unknown route is the restricted one
    qt_atc_factors: frozenset[str]  # Tisdale drug-class factors (loop diuretic) this line meets
    molecules: tuple[tuple[int, str, int | None], ...]  # (substance id, name, duration_days)
    criteria_relevant: bool  # some explicit criterion may select one of its exposures

    @property
    def counts_as_line(self) -> bool:
        """Counted by the town door: a line with exposures, or an unresolved one."""
        return bool(self.exposures) or not self.resolved


def engine_check(engine: Engine, name: str, kind: type[CheckT]) -> CheckT:
    """One of the engine's own geriatric check objects (the very instance ``Engine.analyze`` runs)."""
    found = dict(engine.geriatric).get(name)
    if not isinstance(found, kind):
        raise KnowledgeBaseCorrupt(f"the engine has no {name} check of type {kind.__name__}")
    return found


def _selectors(node: object) -> list[DrugSelector]:
    """Every drug selector of a criteria list, wherever the model nests it."""
    if isinstance(node, DrugSelector):
        return [node]
    if isinstance(node, tuple | list):
        return [s for item in node for s in _selectors(item)]
    if isinstance(node, BaseModel):
        return [s for name in type(node).model_fields for s in _selectors(getattr(node, name))]
    return []


class LineCatalog:
    """Grows as codes are met; ids are dense ints (index into :attr:`lines`)."""

    def __init__(self, engine: Engine, chronic_days: int) -> None:
        self.engine = engine
        self.chronic_days = chronic_days
        self.anticholinergic = engine_check(engine, "anticholinergic", AnticholinergicCheck)
        self.qt = engine_check(engine, "qt", QtCheck)
        self.lines: list[Line] = []
        self._numbered: dict[tuple[int, int], tuple[Exposure, ...]] = {}
        self._by_key: dict[tuple[str, bool], int] = {}
        self._code_key: dict[tuple[CodeKind, str], tuple[str, LineInput | None]] = {}
        # A line and its chronic twin differ only in duration, which neither the resolver nor the
        # ACB and QT checks read: each key is resolved once, and the exposures of all lines (many
        # products share a substance) are read by the checks once per exposure but its duration.
        self._reports: dict[str, LineReport] = {}
        self._exposures: dict[ExposureKey, Exposure] = {}  # build_exposures' memo
        self._alone: dict[_AloneKey, _Alone] = {}
        prefixes: set[str] = set()
        names: set[str] = set()
        lists: tuple[CriteriaList, ...] = engine.criteria.lists
        for selector in _selectors(lists):
            prefixes.update(selector.atc)
            names.update(fold_words(n) for n in selector.names)
        self._criteria_prefixes = tuple(sorted(prefixes))
        self._criteria_names = frozenset(names)
        self._qt_factor_ids = tuple(f.id for f in self.qt.table.factors if isinstance(f, DrugAtcFactor))

    # -- codes ------------------------------------------------------------------------------------

    @cached_property
    def _atc_tables(self) -> tuple[dict[str, list[int]], dict[tuple[str, int], int]]:
        """The substances of each ATC code, and how many single-substance products have each (ATC code,
        substance): read from the whole KB, once an ATC code is met (most extracts have none)."""
        kb = self.engine.kb
        substances: dict[str, list[int]] = {}
        for s in kb.substances:
            for code in s.atc:
                substances.setdefault(code, []).append(s.id)
        use: dict[tuple[str, int], int] = {}
        for product in kb.products:
            if product.atc and len(product.components) == 1:
                pair = (product.atc, product.components[0].substance_id)
                use[pair] = use.get(pair, 0) + 1
        return substances, use

    def base(self, kind: CodeKind, code: str) -> tuple[str, LineInput | None]:
        """The line key and contract input of one dispensed code (memoised)."""
        found = self._code_key.get((kind, code))
        if found is None:
            found = self._base(kind, code)
            self._code_key[(kind, code)] = found
        return found

    def _base(self, kind: CodeKind, code: str) -> tuple[str, LineInput | None]:
        kb = self.engine.kb
        if kind == "cip13":
            pres = kb.by_cip13.get(code)
            if pres is not None:
                cis = kb.products[pres.product_id].cis
                return f"cis:{cis}", LineInput(cis=cis)
            return f"cip13:{code}", _input(cip13=code)
        if kind == "cis":
            return f"cis:{code}", _input(cis=code)
        substances, use = self._atc_tables
        ids = substances.get(code, [])
        if not ids:
            return f"atc:{code}", None  # no KB substance carries this code: an unresolved line
        # Salt or spelling variants share a code (bisoprolol, "bisoprolol (fumarate acide de)"): read
        # the code as the substance that most single-substance products with this ATC code contain.
        best = max(ids, key=lambda sid: (use.get((code, sid), 0), -sid))
        # A few KB names are longer than the contract's substance field takes (cell therapies): such a
        # line has no contract form and stays unresolved, as a malformed code does.
        return f"atc:{code}", _input(substance=kb.substances[best].name)

    def numbered(self, line: Line, index: int) -> tuple[Exposure, ...]:
        """The line's exposures numbered as line ``index`` of a prescription (cached: a hot path)."""
        if index == 0:
            return line.exposures
        found = self._numbered.get((line.id, index))
        if found is None:
            found = self._numbered[(line.id, index)] = tuple(
                dataclasses.replace(e, line=index) for e in line.exposures
            )
        return found

    def line_id(self, key: str, line_input: LineInput | None, chronic: bool) -> int:
        return self.line_ids([(key, line_input, chronic)])[0]

    def line_ids(self, wanted: Sequence[tuple[str, LineInput | None, bool]]) -> list[int]:
        """The id of each (key, contract input, chronic) line; lines not met yet are built, numbered in
        the order given."""
        out: list[int] = []
        for key, line_input, chronic in wanted:
            found = self._by_key.get((key, chronic))
            if found is None:
                found = self._by_key[(key, chronic)] = len(self.lines)
                self.lines.append(self._build(found, key, line_input, chronic))
            out.append(found)
        return out

    # -- per-line features ---------------------------------------------------------------------------

    def _build(self, lid: int, key: str, line_input: LineInput | None, chronic: bool) -> Line:
        engine = self.engine
        if line_input is None:
            return Line(
                lid, key, chronic, None, False, (), (), frozenset(), frozenset(), frozenset(), (), False
            )
        report = self._reports.get(key)
        if report is None:
            report = self._reports[key] = engine.resolver.resolve(line_input, 0)
        if chronic:
            line_input = line_input.model_copy(update={"duration_days": self.chronic_days})
        resolved = report.status == "resolved"
        exposures = build_exposures(engine.kb, (report,), (line_input,), self._exposures) if resolved else ()
        acb: list[tuple[str, int]] = []
        qt_sure: set[int] = set()
        qt_maybe: set[int] = set()
        qt_factors: set[str] = set()
        relevant = False
        for exposure in exposures:
            alone_key = _alone_key(exposure)
            alone = self._alone.get(alone_key)
            if alone is None:
                alone = self._alone[alone_key] = self._read_alone(exposure)
            acb.extend(alone.acb)
            if alone.qt_sure:
                qt_sure.add(exposure.substance_id)
            if alone.qt_maybe:
                qt_maybe.add(exposure.substance_id)
            qt_factors.update(alone.qt_factors)
            relevant = relevant or alone.criteria_relevant
        return Line(
            id=lid,
            key=key,
            chronic=chronic,
            input=line_input,
            resolved=resolved,
            exposures=exposures,
            acb=tuple(acb),
            qt_sure=frozenset(qt_sure),
            qt_maybe=frozenset(qt_maybe),
            qt_atc_factors=frozenset(qt_factors),
            molecules=tuple((e.substance_id, e.name, e.duration_days) for e in exposures),
            criteria_relevant=relevant,
        )

    def _read_alone(self, exposure: Exposure) -> _Alone:
        """What the engine's ACB and QT checks say of one exposure given alone, and whether an explicit
        criterion may select it."""
        alone = CheckContext(exposures=(exposure,), patient=_EMPTY)
        scores: dict[str, Any] = self.anticholinergic.run(alone).scores["anticholinergic"]  # type: ignore[assignment]
        found: dict[str, Any] = self.qt.run(alone).scores["qt"]  # type: ignore[assignment]
        points = found["points"]
        return _Alone(
            acb=tuple(scores["by_substance"].items()),
            qt_sure=bool(found["drugs"]),
            qt_maybe=bool(found["possible_drugs"]),
            qt_factors=tuple(f for f in self._qt_factor_ids if points.get(f)),
            criteria_relevant=self._relevant(exposure),
        )

    def _relevant(self, e: Exposure) -> bool:
        codes = (*e.atc, *self.engine.kb.substances[e.substance_id].atc)
        if any(code.startswith(self._criteria_prefixes) for code in codes):
            return True
        return fold_words(e.name) in self._criteria_names or any(
            fold_words(a) in self._criteria_names for a in e.aliases
        )


def _input(**fields: str) -> LineInput | None:
    """A contract line for a code, or None when the code is malformed (the line stays unresolved)."""
    try:
        return LineInput.model_validate(fields)
    except ValueError:
        return None
