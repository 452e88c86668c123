"""Evaluate explicit criteria lists (STOPP/START, Laroche, …) against one prescription.

Logic. Alternatives (``any_of``) are OR, the elements of an alternative are AND, excluded conditions and
absent drugs are NOT. Each element is true, false or *unknown* (three-valued, Kleene): unknown when it
needs an input the caller did not give (no eGFR, no age, no duration on the line, an unresolved line
that could be the missing drug). A criterion is a **hit** when one alternative is true; it is **not
assessed** when none is true but one is unknown: it is then reported with the inputs that would settle
it, never as a finding.

What counts as known. Diagnoses are closed-world: a code the prescriber did not give is absent (there
is no other way to read a list of conditions). Labs, age, sex and the dose/duration/route of a line are
open-world: ``None`` is unknown. A patient code matches a criterion code when one extends the other
("K250" matches K25; "I48" matches I48.2, since a prescriber writing the category did not say which
subdivision) — the hit's ``why`` says when the match came from a less specific code. Codes shorter
than a category (``I4``) match nothing.

Two drug conditions of one alternative must be met by two distinct substances: "two NSAIDs" or
"beta-blocker with verapamil" mean two drugs, not one product counted twice.

Speed. A list is compiled once (cached by identity): identical drug selectors are shared, ATC prefixes
and CIM-10 codes are indexed, and every alternative is filed under one of its required drugs or
conditions (its trigger). An evaluation looks up each exposure's ATC prefixes and each patient code
once, then visits only the alternatives whose trigger occurred. For many prescriptions at once
(population screening), :class:`ByAlternative` tells what each alternative reads, so that a caller
evaluates one only where all it requires is present and memoises it on what it reads.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal, NamedTuple

from iatro.checks.context import CheckContext, Exposure
from iatro.kb.criteria import (
    LAB_FIELDS,
    SEVERITY_RANK,
    ConditionGroup,
    CriteriaList,
    Criterion,
    DrugCondition,
    DrugSelector,
    Match,
)
from iatro.model.prescription import Patient
from iatro.text import fold_words

Truth = int
F: Truth = 0
U: Truth = 1
T: Truth = 2

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "=": operator.eq,
    "!=": operator.ne,
}
_ATC_LEVELS = (1, 3, 4, 5, 7)
_CATEGORY_LEN = 3  # letter + two digits: the least specific code that names one condition
_MEMO_SIZE = 20_000  # distinct ATC or CIM-10 codes remembered per list; beyond, codes are looked up afresh


# ---------------------------------------------------------------------------------------------------
# Results. Hits are NamedTuples, immutable like frozen dataclasses but about four times cheaper to
# build, which matters when a polymedicated patient meets twenty criteria per evaluation.


class MatchedDrug(NamedTuple):
    line: int
    substance_id: int
    name: str
    atc: tuple[str, ...]
    target: bool  # the drug the finding is about (to stop/review); False: context (the other drug)


class CriterionHit(NamedTuple):
    """One criterion of one list, met (in ``hits``) or undecidable for want of inputs (``not_assessed``).

    ``lines``/``substances`` are the drugs the finding is about: the targets of a PIM, or for an
    omission the drugs that triggered it (the corticosteroid of "start a bisphosphonate"), often none.
    ``drugs`` gives every matched exposure with its role. ``conditions`` are the patient's codes that
    counted. ``absent_drugs`` (omissions, "without a PPI") lists what was looked for and not found.
    ``missing_inputs`` is empty for a hit; for a not-assessed criterion it names what would settle it.
    """

    criterion_id: str
    list_id: str
    edition: str
    kind: Literal["pim", "omission"]
    severity: str
    severity_from_source: bool
    description: str
    lines: tuple[int, ...]
    substances: tuple[str, ...]
    drugs: tuple[MatchedDrug, ...]
    conditions: tuple[str, ...]
    absent_drugs: tuple[str, ...]
    why: tuple[str, ...]
    missing_inputs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class EvaluationResult:
    hits: tuple[CriterionHit, ...]
    not_assessed: tuple[CriterionHit, ...]


@dataclass(frozen=True, slots=True)
class Citation:
    list_id: str
    edition: str
    criterion_id: str
    description: str


@dataclass(frozen=True, slots=True)
class MergedFinding:
    """Hits of one or several lists about the same drug(s) (PIM) or the same missing class (omission)."""

    kind: Literal["pim", "omission"]
    lines: tuple[int, ...]
    substances: tuple[str, ...]
    severity: str
    citations: tuple[Citation, ...]
    hits: tuple[CriterionHit, ...]


# ---------------------------------------------------------------------------------------------------
# Compiled form


@dataclass(slots=True)
class _Selector:
    include: frozenset[str]
    exclude: tuple[str, ...]
    names: frozenset[str]

    def which(self, exp: Exposure) -> str:
        """The prefix or name through which the exposure was selected (for explanations)."""
        for code in exp.atc:
            if self.exclude and code.startswith(self.exclude):
                continue
            for length in _ATC_LEVELS:
                if code[:length] in self.include:
                    return code[:length]
        return exp.name


@dataclass(slots=True)
class _Drug:
    sid: int
    target: bool
    checks: tuple[tuple[str, Callable[[float, float], bool], float, str], ...]  # attr, op, value, text
    routes: frozenset[str]
    as_needed: bool | None
    plain: bool  # no dose/duration/route/PRN part: every selected exposure holds
    label: str | None


@dataclass(slots=True)
class _Group:
    gid: int
    codes: tuple[str, ...]
    timed: str | None  # text of the onset delay; such a group is never known to be present
    label: str


@dataclass(slots=True)
class _Lab:
    field: str
    get: Callable[[Patient], float | None]
    op: Callable[[float, float], bool]
    op_text: str
    value: float


@dataclass(slots=True)
class _Match:
    drugs: tuple[_Drug, ...]
    absent: tuple[int, ...]
    absent_text: tuple[str, ...]  # the codes and names, for merging and reports
    absent_label: str  # the same for a reader: labels where the list gives them
    groups: tuple[_Group, ...]
    excluded: tuple[_Group, ...]
    labs: tuple[_Lab, ...]
    age_min: int | None
    age_max: int | None
    sex: str | None
    patient_parts: bool  # has excluded conditions, absent drugs, labs, age or sex to check
    trivial: bool  # one plain drug and nothing else: true exactly when the drug is on the input


@dataclass(slots=True)
class _Criterion:
    source: Criterion
    severity: str
    from_source: bool
    matches: tuple[_Match, ...]


@dataclass(slots=True)
class _Compiled:
    list_id: str
    edition: str
    criteria: tuple[_Criterion, ...]
    selectors: list[_Selector]
    atc_index: dict[str, tuple[int, ...]]  # ATC prefix -> selectors including it
    name_index: dict[str, tuple[int, ...]]  # folded DCI name -> selectors naming it
    code_index: dict[str, tuple[int, ...]]  # criterion CIM-10 code -> groups holding it
    extends_index: dict[str, tuple[int, ...]]  # category-or-longer prefix -> groups with a longer code
    by_selector: dict[int, tuple[tuple[int, int], ...]]  # trigger selector -> (criterion, match) indices
    by_group: dict[int, tuple[tuple[int, int], ...]]  # trigger group -> (criterion, match) indices
    always: tuple[tuple[int, int], ...]  # alternatives with no required drug or condition
    # Filled as codes are met (ATC and CIM-10 codes recur from one prescription to the next).
    atc_memo: dict[str, tuple[int, ...]] = field(default_factory=dict)  # ATC code -> selectors
    cim_memo: dict[str, tuple[tuple[int, bool], ...]] = field(default_factory=dict)  # code -> (group, exact)
    # (ATC codes, name) of an exposure -> the selectors it meets, each once, in first-met order.
    exposure_memo: dict[tuple[tuple[str, ...], str], tuple[int, ...]] = field(default_factory=dict)


class _Builder:
    def __init__(self) -> None:
        self.selectors: list[_Selector] = []
        self.selector_ids: dict[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]], int] = {}
        self.atc_index: dict[str, list[int]] = {}
        self.name_index: dict[str, list[int]] = {}
        self.group_count = 0
        self.code_index: dict[str, list[int]] = {}
        self.extends_index: dict[str, list[int]] = {}

    def selector(self, sel: DrugSelector) -> int:
        key = (sel.atc, sel.exclude_atc, sel.names)
        sid = self.selector_ids.get(key)
        if sid is None:
            sid = len(self.selectors)
            self.selector_ids[key] = sid
            self.selectors.append(_Selector(frozenset(sel.atc), sel.exclude_atc, frozenset(sel.names)))
            for prefix in sel.atc:
                self.atc_index.setdefault(prefix, []).append(sid)
            for name in sel.names:
                self.name_index.setdefault(name, []).append(sid)
        return sid

    def drug(self, cond: DrugCondition) -> _Drug:
        checks = []
        for attr in ("mg_per_day", "mg_per_intake", "intakes_per_day", "duration_days"):
            threshold = getattr(cond, attr)
            if threshold is not None:
                checks.append((attr, _OPS[threshold.op], threshold.value, threshold.text()))
        plain = not checks and not cond.routes and cond.as_needed is None
        return _Drug(
            self.selector(cond),
            cond.target,
            tuple(checks),
            frozenset(cond.routes),
            cond.as_needed,
            plain,
            cond.label,
        )

    def group(self, group: ConditionGroup) -> _Group:
        gid = self.group_count
        self.group_count += 1
        for code in group.cim10:
            self.code_index.setdefault(code, []).append(gid)
            # A patient code that is a strict prefix (at least a category) of this code also matches.
            for length in range(_CATEGORY_LEN, len(code)):
                self.extends_index.setdefault(code[:length], []).append(gid)
        timed = group.since_onset_days.text() if group.since_onset_days is not None else None
        return _Group(gid, group.cim10, timed, group.describe())

    def match(self, match: Match) -> _Match:
        labs = []
        for lab in match.labs:
            if lab.field is None:  # only in non-computable alternatives, which are not compiled
                continue
            path = LAB_FIELDS[lab.field][0]
            labs.append(_Lab(lab.field, operator.attrgetter(path), _OPS[lab.op], lab.op, lab.value))
        return _Match(
            drugs=tuple(self.drug(d) for d in match.drugs),
            absent=tuple(self.selector(s) for s in match.absent_drugs),
            absent_text=tuple(dict.fromkeys(x for s in match.absent_drugs for x in (*s.atc, *s.names))),
            absent_label=", ".join(s.describe() for s in match.absent_drugs),
            groups=tuple(self.group(g) for g in match.conditions),
            excluded=tuple(self.group(g) for g in match.excluded_conditions),
            labs=tuple(labs),
            age_min=match.age_min,
            age_max=match.age_max,
            sex=match.sex,
            patient_parts=bool(
                match.excluded_conditions
                or match.absent_drugs
                or labs
                or match.age_min is not None
                or match.age_max is not None
                or match.sex
            ),
            trivial=False,
        )


def _compile(criteria: CriteriaList) -> _Compiled:
    builder = _Builder()
    compiled: list[_Criterion] = []
    by_selector: dict[int, list[tuple[int, int]]] = {}
    by_group: dict[int, list[tuple[int, int]]] = {}
    always: list[tuple[int, int]] = []
    for crit in criteria.criteria:
        if not crit.computable:
            continue
        matches = tuple(builder.match(m) for m in crit.any_of if m.computable)
        for m in matches:
            m.trivial = len(m.drugs) == 1 and m.drugs[0].plain and not m.groups and not m.patient_parts
        ci = len(compiled)
        compiled.append(_Criterion(crit, criteria.severity_of(crit), crit.severity is not None, matches))
        for mi, match in enumerate(matches):
            # A required condition is rarer on a prescription than a required drug: trigger on it first.
            if match.groups:
                by_group.setdefault(match.groups[0].gid, []).append((ci, mi))
            elif match.drugs:
                by_selector.setdefault(match.drugs[0].sid, []).append((ci, mi))
            else:
                always.append((ci, mi))

    def freeze(index: dict[str, list[int]]) -> dict[str, tuple[int, ...]]:
        return {k: tuple(dict.fromkeys(v)) for k, v in index.items()}

    return _Compiled(
        criteria.list_id,
        criteria.edition,
        tuple(compiled),
        builder.selectors,
        freeze(builder.atc_index),
        freeze(builder.name_index),
        freeze(builder.code_index),
        freeze(builder.extends_index),
        {k: tuple(v) for k, v in by_selector.items()},
        {k: tuple(v) for k, v in by_group.items()},
        tuple(always),
    )


# Keyed by identity with the list held alive, so an id is never reused while cached; bounded because
# tests and reloads create new lists.
_CACHE: dict[int, tuple[CriteriaList, _Compiled]] = {}
_CACHE_SIZE = 32


def precompile(criteria: CriteriaList) -> None:
    """Compile a list now (at load) rather than at its first evaluation."""
    _compiled_for(criteria)


def _compiled_for(criteria: CriteriaList) -> _Compiled:
    entry = _CACHE.get(id(criteria))
    if entry is not None and entry[0] is criteria:
        return entry[1]
    compiled = _compile(criteria)
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[id(criteria)] = (criteria, compiled)
    return compiled


@lru_cache(maxsize=8192)
def _name_key(name: str) -> str:
    return fold_words(name)


# ---------------------------------------------------------------------------------------------------
# Evaluation


@dataclass(slots=True)
class _Outcome:
    """A true or unknown alternative; the explanation is rendered only if it makes a hit or a report."""

    truth: Truth
    match: _Match
    drugs: list[tuple[_Drug, int]]  # (drug condition, exposure index) pairs that held
    groups: list[tuple[_Group, str, bool]]  # (group, patient code, exact)
    labs: list[tuple[_Lab, float]]
    missing: list[str]


def _selectors_of(compiled: _Compiled, code: str) -> tuple[int, ...]:
    sids: list[int] = []
    for length in _ATC_LEVELS:
        if length > len(code):
            break
        for sid in compiled.atc_index.get(code[:length], ()):
            exclude = compiled.selectors[sid].exclude
            if not (exclude and code.startswith(exclude)):
                sids.append(sid)
    found = tuple(dict.fromkeys(sids))
    if len(compiled.atc_memo) < _MEMO_SIZE:
        compiled.atc_memo[code] = found
    return found


def _selected(compiled: _Compiled, exposures: Sequence[Exposure]) -> dict[int, list[int]]:
    """Selector id -> indices of the exposures it selects."""
    found: dict[int, list[int]] = {}
    memo = compiled.exposure_memo
    for i, exp in enumerate(exposures):
        sids = memo.get((exp.atc, exp.name))
        if sids is None:
            sids = _selectors_of_exposure(compiled, exp)
        for sid in sids:
            hits = found.get(sid)
            if hits is None:
                found[sid] = [i]
            else:
                hits.append(i)
    return found


def _selectors_of_exposure(compiled: _Compiled, exp: Exposure) -> tuple[int, ...]:
    """Selectors through the exposure's ATC codes, then through its name, each once."""
    sids: list[int] = []
    for code in exp.atc:
        found = compiled.atc_memo.get(code)
        sids.extend(found if found is not None else _selectors_of(compiled, code))
    if compiled.name_index:
        sids.extend(compiled.name_index.get(_name_key(exp.name), ()))
    unique = tuple(dict.fromkeys(sids))
    if len(compiled.exposure_memo) < _MEMO_SIZE:
        compiled.exposure_memo[exp.atc, exp.name] = unique
    return unique


def _groups_of(compiled: _Compiled, code: str) -> tuple[tuple[int, bool], ...]:
    pairs: list[tuple[int, bool]] = []
    if len(code) >= _CATEGORY_LEN:
        for length in range(_CATEGORY_LEN, len(code) + 1):
            pairs.extend((gid, True) for gid in compiled.code_index.get(code[:length], ()))
        pairs.extend((gid, False) for gid in compiled.extends_index.get(code, ()))
    found = tuple(pairs)
    if len(compiled.cim_memo) < _MEMO_SIZE:
        compiled.cim_memo[code] = found
    return found


def _present_groups(compiled: _Compiled, codes: Iterable[str]) -> dict[int, list[tuple[str, bool]]]:
    """Group id -> (patient code, exact) pairs; exact is False when the patient code is less specific."""
    found: dict[int, list[tuple[str, bool]]] = {}
    memo = compiled.cim_memo
    for code in codes:
        pairs = memo.get(code)
        if pairs is None:
            pairs = _groups_of(compiled, code)
        for gid, exact in pairs:
            found.setdefault(gid, []).append((code, exact))
    return found


def _drug_truth(drug: _Drug, exp: Exposure, missing: list[str] | None) -> Truth:
    """Does a selected exposure meet the dose/duration/route/PRN parts of the drug condition?

    With ``missing`` given, the inputs that made it unknown are appended to it.
    """
    truth = T
    for attr, op, value, _ in drug.checks:
        actual = getattr(exp, attr)
        if actual is None:
            if missing is not None:
                missing.append(f"line {exp.line} ({exp.name}): {attr}")
            truth = U
        elif not op(actual, value):
            return F
    if drug.routes:
        if exp.route is None:
            if missing is not None:
                missing.append(f"line {exp.line} ({exp.name}): route")
            truth = U
        elif exp.route not in drug.routes:
            return F
    if drug.as_needed is not None and exp.as_needed != drug.as_needed:
        return F
    return truth


def _assign(candidates: list[list[tuple[int, Truth]]], substance: Sequence[int]) -> Truth:
    """Best truth of an assignment of distinct substances to the drug conditions (few, small)."""

    def best(k: int, used: frozenset[int]) -> Truth:
        if k == len(candidates):
            return T
        result = F
        for i, truth in candidates[k]:
            if substance[i] in used:
                continue
            result = max(result, min(truth, best(k + 1, used | {substance[i]})))
            if result == T:
                break
        return result

    return best(0, frozenset())


def _evaluate_match(
    match: _Match,
    ctx: CheckContext,
    selected: dict[int, list[int]],
    groups: dict[int, list[tuple[str, bool]]],
) -> _Outcome | None:
    """None when false; otherwise the outcome (true or unknown). Cheapest rejections come first."""
    for drug in match.drugs:
        if drug.sid not in selected:
            return None
    for group in match.groups:
        if group.gid not in groups:
            return None
    missing: list[str] = []
    truth = T
    held_groups: list[tuple[_Group, str, bool]] = []
    held_labs: list[tuple[_Lab, float]] = []
    for group in match.groups:
        present = groups.get(group.gid)
        if present is None:
            return None
        if group.timed is not None:
            missing.append(f"onset date of {', '.join(sorted({c for c, _ in present}))} ({group.label})")
            truth = U
            continue
        held_groups.extend((group, code, exact) for code, exact in present)
    if match.patient_parts:
        truth = _patient_parts(match, ctx, selected, groups, held_labs, missing, truth)
        if truth == F:
            return None

    held_drugs: list[tuple[_Drug, int]] = []
    if len(match.drugs) == 1:  # the common case, without the assignment search
        drug = match.drugs[0]
        indices = selected[drug.sid]
        if drug.plain:
            held_drugs = [(drug, i) for i in indices]
        else:
            exposures = ctx.exposures
            drug_truth = F
            for i in indices:
                t = _drug_truth(drug, exposures[i], None)
                if t == T:
                    held_drugs.append((drug, i))
                    drug_truth = T
                elif t == U and drug_truth == F:
                    drug_truth = U
            if drug_truth == F:
                return None
            if drug_truth == U:
                for i in indices:
                    _drug_truth(drug, exposures[i], missing)
            truth = min(truth, drug_truth)
    elif match.drugs:
        exposures = ctx.exposures
        candidates: list[list[tuple[int, Truth]]] = []
        for drug in match.drugs:
            if drug.plain:
                row = [(i, T) for i in selected[drug.sid]]
            else:
                row = []
                for i in selected[drug.sid]:
                    t = _drug_truth(drug, exposures[i], None)
                    if t != F:
                        row.append((i, t))
                if not row:
                    return None
            held_drugs.extend((drug, i) for i, t in row if t == T)
            candidates.append(row)
        drug_truth = _assign(candidates, [e.substance_id for e in exposures])
        if drug_truth == F:
            return None
        if drug_truth == U:
            for drug, row in zip(match.drugs, candidates, strict=True):
                for i, t in row:
                    if t == U:
                        _drug_truth(drug, exposures[i], missing)
        truth = min(truth, drug_truth)
    return _Outcome(truth, match, held_drugs, held_groups, held_labs, missing)


def _patient_parts(
    match: _Match,
    ctx: CheckContext,
    selected: dict[int, list[int]],
    groups: dict[int, list[tuple[str, bool]]],
    held_labs: list[tuple[_Lab, float]],
    missing: list[str],
    truth: Truth,
) -> Truth:
    """Excluded conditions, absent drugs, labs, age and sex of an alternative (F, U or ``truth``)."""
    patient = ctx.patient
    for group in match.excluded:
        found = groups.get(group.gid)
        if found is None:
            continue
        if group.timed is None:
            return F
        codes = ", ".join(sorted({c for c, _ in found}))
        missing.append(f"onset date of {codes} (excluded if {group.label})")
        truth = U
    if match.absent:
        for sid in match.absent:
            if sid in selected:
                return F
        if ctx.unresolved_lines:
            lines = ", ".join(str(n) for n in ctx.unresolved_lines)
            missing.append(f"unresolved line(s) {lines}: could be one of {', '.join(match.absent_text)}")
            truth = U
    for lab in match.labs:
        value = lab.get(patient)
        if value is None:
            missing.append(lab.field)
            truth = U
        elif lab.op(value, lab.value):
            held_labs.append((lab, value))
        else:
            return F
    if match.age_min is not None or match.age_max is not None:
        if patient.age is None:
            missing.append("age")
            truth = U
        elif (match.age_min is not None and patient.age < match.age_min) or (
            match.age_max is not None and patient.age > match.age_max
        ):
            return F
    if match.sex is not None:
        if patient.sex is None:
            missing.append("sex")
            truth = U
        elif patient.sex != match.sex:
            return F
    return truth


def _explain(outcome: _Outcome, compiled: _Compiled, ctx: CheckContext) -> list[str]:
    why: list[str] = []
    for group, code, exact in outcome.groups:
        if exact:
            matched = next((c for c in group.codes if code.startswith(c)), code)
            why.append(f"condition {code} ({matched})")
        else:
            wider = ", ".join(c for c in group.codes if c.startswith(code))
            why.append(f"condition {code}, less specific than the criterion's {wider}")
    for drug, i in outcome.drugs:
        exp = ctx.exposures[i]
        prefix = compiled.selectors[drug.sid].which(exp)
        notes = [f"{drug.label}: {prefix}" if drug.label else prefix]
        notes += [f"{attr} {getattr(exp, attr):g} {text}" for attr, _, _, text in drug.checks]
        if drug.routes:
            notes.append(f"route {exp.route}")
        if drug.as_needed is not None:
            notes.append("as needed" if exp.as_needed else "regular")
        why.append(f"line {exp.line} {exp.name} [{'/'.join(exp.atc) or 'no ATC'}] ({'; '.join(notes)})")
    match = outcome.match
    if match.absent and outcome.truth == T:
        why.append(f"none of {match.absent_label} prescribed")
    why += [f"{lab.field} {value:g} {lab.op_text} {lab.value:g}" for lab, value in outcome.labs]
    patient = ctx.patient
    if (match.age_min is not None or match.age_max is not None) and patient.age is not None:
        bounds = [f">= {match.age_min}"] if match.age_min is not None else []
        bounds += [f"<= {match.age_max}"] if match.age_max is not None else []
        why.append(f"age {patient.age} ({' and '.join(bounds)})")
    if match.sex is not None and patient.sex is not None:
        why.append(f"sex {patient.sex}")
    return why


def _hit(compiled: _Compiled, crit: _Criterion, outcomes: list[_Outcome], ctx: CheckContext) -> CriterionHit:
    exposures = ctx.exposures
    roles: dict[int, bool] = {}
    for outcome in outcomes:
        for drug, i in outcome.drugs:
            roles[i] = roles.get(i, False) or drug.target
    drugs = [
        MatchedDrug(exposures[i].line, exposures[i].substance_id, exposures[i].name, exposures[i].atc, t)
        for i, t in roles.items()
    ]
    if len(drugs) > 1:
        drugs.sort(key=lambda d: (not d.target, d.line, d.name))
    focus = [d for d in drugs if d.target] or drugs
    source = crit.source
    if len(outcomes) == 1:
        only = outcomes[0]
        conditions = tuple(dict.fromkeys(code for _, code, _ in only.groups)) if only.groups else ()
        absent = _absent_of(outcomes)
        why = tuple(_explain(only, compiled, ctx))
        missing = tuple(dict.fromkeys(only.missing)) if only.missing else ()
    else:
        conditions = tuple(dict.fromkeys(code for o in outcomes for _, code, _ in o.groups))
        absent = _absent_of(outcomes)
        why = tuple(dict.fromkeys(w for o in outcomes for w in _explain(o, compiled, ctx)))
        missing = tuple(dict.fromkeys(m for o in outcomes for m in o.missing))
    if len(focus) == 1:
        lines: tuple[int, ...] = (focus[0].line,)
        names: tuple[str, ...] = (focus[0].name,)
    else:
        lines = tuple(sorted({d.line for d in focus}))
        names = tuple(dict.fromkeys(d.name for d in focus))
    return CriterionHit(
        source.criterion_id,
        compiled.list_id,
        compiled.edition,
        source.kind,
        crit.severity,
        crit.from_source,
        source.description,
        lines,
        names,
        tuple(drugs),
        conditions,
        absent,
        why,
        missing,
    )


def _absent_of(outcomes: list[_Outcome]) -> tuple[str, ...]:
    """The drugs a hit found missing: those of its alternatives, in order, each once."""
    if len(outcomes) == 1:
        return outcomes[0].match.absent_text
    return tuple(dict.fromkeys(a for o in outcomes for a in o.match.absent_text))


def _todo(
    compiled: _Compiled, selected: dict[int, list[int]], groups: dict[int, list[tuple[str, bool]]]
) -> dict[int, list[int]]:
    """Criterion index -> its alternatives whose trigger (a required drug or condition) occurred."""
    todo: dict[int, list[int]] = {}
    for sid in selected:
        for ci, mi in compiled.by_selector.get(sid, ()):
            todo.setdefault(ci, []).append(mi)
    for gid in groups:
        for ci, mi in compiled.by_group.get(gid, ()):
            todo.setdefault(ci, []).append(mi)
    for ci, mi in compiled.always:
        todo.setdefault(ci, []).append(mi)
    return todo


def _outcomes(
    crit: _Criterion,
    alternatives: list[int],
    ctx: CheckContext,
    selected: dict[int, list[int]],
    groups: dict[int, list[tuple[str, bool]]],
) -> tuple[list[_Outcome], list[_Outcome]]:
    """The true and the unknown outcomes of a criterion's triggered alternatives."""
    sure: list[_Outcome] = []
    maybe: list[_Outcome] = []
    for mi in alternatives:
        match = crit.matches[mi]
        if match.trivial:  # the trigger was its drug: it holds for every selected exposure
            drug = match.drugs[0]
            sure.append(_Outcome(T, match, [(drug, i) for i in selected[drug.sid]], [], [], []))
            continue
        outcome = _evaluate_match(match, ctx, selected, groups)
        if outcome is not None:
            (sure if outcome.truth == T else maybe).append(outcome)
    return sure, maybe


def evaluate(criteria: CriteriaList, ctx: CheckContext, *, explain_unknown: bool = True) -> EvaluationResult:
    """Hits and not-assessed criteria of one list, in the list's order.

    ``explain_unknown=False``: a not-assessed criterion carries its ids, kind, severity, description
    and ``missing_inputs`` only (no drugs, conditions nor ``why``), for a caller that reads no more
    of it (the engine's check: they are only named in ``missing_inputs``).
    """
    compiled = _compiled_for(criteria)
    selected = _selected(compiled, ctx.exposures)
    groups = _present_groups(compiled, ctx.patient.conditions)
    todo = _todo(compiled, selected, groups)
    hits: list[CriterionHit] = []
    unknown: list[CriterionHit] = []
    matches_of = compiled.criteria
    for ci in sorted(todo):
        crit = matches_of[ci]
        sure, maybe = _outcomes(crit, todo[ci], ctx, selected, groups)
        if sure:
            hits.append(_hit(compiled, crit, sure, ctx))  # what other alternatives lacked is moot
        elif maybe:
            unknown.append(
                _hit(compiled, crit, maybe, ctx) if explain_unknown else _unknown(compiled, crit, maybe)
            )
    return EvaluationResult(tuple(hits), tuple(unknown))


def _unknown(compiled: _Compiled, crit: _Criterion, outcomes: list[_Outcome]) -> CriterionHit:
    """A not-assessed criterion reduced to what settles it (see ``evaluate``)."""
    source = crit.source
    missing = tuple(dict.fromkeys(m for o in outcomes for m in o.missing))
    return CriterionHit(
        source.criterion_id,
        compiled.list_id,
        compiled.edition,
        source.kind,
        crit.severity,
        crit.from_source,
        source.description,
        (),
        (),
        (),
        (),
        (),
        (),
        missing,
    )


def evaluate_all(
    lists: Iterable[CriteriaList], ctx: CheckContext, *, explain_unknown: bool = True
) -> EvaluationResult:
    """Several lists at once; results keep the order of the lists, then of their criteria."""
    hits: list[CriterionHit] = []
    unknown: list[CriterionHit] = []
    for crit_list in lists:
        result = evaluate(crit_list, ctx, explain_unknown=explain_unknown)
        hits.extend(result.hits)
        unknown.extend(result.not_assessed)
    return EvaluationResult(tuple(hits), tuple(unknown))


# ---------------------------------------------------------------------------------------------------
# Merging the hits of several lists


def _overlap(a: str, b: str) -> bool:
    return a.startswith(b) or b.startswith(a)


def pim_key(hit: CriterionHit) -> frozenset[tuple[int, int]]:
    """What PIM hits are grouped by: their target drugs, as (line, substance id)."""
    return frozenset((d.line, d.substance_id) for d in hit.drugs if d.target)


def join_omissions(absent: Sequence[Sequence[str]]) -> list[list[int]]:
    """Omission hits (given by the drugs each found missing) grouped as :func:`merge_hits` does.

    Each group lists the hits' positions; hits join when any of their missing drugs overlap (one
    ATC prefix or name extends the other), transitively. A hit that names no drug joins nothing.
    """
    groups: list[list[int]] = []
    for k, mine in enumerate(absent):
        joined = [g for g in groups if any(_overlap(a, b) for h in g for a in absent[h] for b in mine)]
        merged = [h for g in joined for h in g] + [k]
        groups = [g for g in groups if not any(g is j for j in joined)] + [merged]
    return groups


def merge_hits(hits: Iterable[CriterionHit]) -> list[MergedFinding]:
    """Group hits that speak of the same thing, citing every list and criterion.

    PIM hits are grouped by their exact set of target drugs (line and substance): STOPP D5 and a
    French list's benzodiazepine criterion on the same oxazepam line make one finding, while "two
    anticholinergics" (lines 3 and 7) stays apart from a criterion on line 3 alone. Omission hits are
    grouped when the drugs they found missing overlap by ATC prefix or name (B01A and B01AF), since two
    lists rarely spell a class the same way; that grouping is transitive. A finding's severity is the
    highest of its hits.
    """
    items = list(hits)
    pim: dict[frozenset[tuple[int, int]], list[CriterionHit]] = {}
    missing: list[CriterionHit] = []
    for hit in items:
        if hit.kind == "pim":
            pim.setdefault(pim_key(hit), []).append(hit)
        else:
            missing.append(hit)
    omissions = [[missing[k] for k in g] for g in join_omissions([h.absent_drugs for h in missing])]

    findings = []
    # Each hit's place in the input (by identity: comparing hits field by field is what was slow).
    place = {id(hit): i for i, hit in enumerate(items)}
    for members in [*pim.values(), *omissions]:
        if len(members) == 1:  # the common case, without the merging
            h = members[0]
            lines = tuple(sorted(set(h.lines)))
            substances = tuple(dict.fromkeys(h.substances))
            citation = Citation(h.list_id, h.edition, h.criterion_id, h.description)
            findings.append(MergedFinding(h.kind, lines, substances, h.severity, (citation,), (h,)))
            continue
        members.sort(key=lambda hit: place[id(hit)])
        lines = tuple(sorted({n for h in members for n in h.lines}))
        substances = tuple(dict.fromkeys(s for h in members for s in h.substances))
        severity = max((h.severity for h in members), key=lambda s: SEVERITY_RANK.get(s, -1))
        citations = tuple(
            dict.fromkeys(Citation(h.list_id, h.edition, h.criterion_id, h.description) for h in members)
        )
        findings.append(
            MergedFinding(members[0].kind, lines, substances, severity, citations, tuple(members))
        )
    findings.sort(
        key=lambda f: (f.kind, f.lines or (1 << 30,), f.citations[0].list_id, f.citations[0].criterion_id)
    )
    return findings


# ---------------------------------------------------------------------------------------------------
# One alternative at a time, for callers that evaluate a list on many prescriptions (population
# screening). An alternative's outcome depends only on the exposures its selectors select, on the
# groups it names and on a few patient facts, and most alternatives concern nothing of most
# prescriptions: such a caller evaluates each one only where all it requires is present, memoised on
# what it reads. A criterion is hit when one of its alternatives holds.


@dataclass(frozen=True, slots=True)
class AlternativeInputs:
    """Everything one alternative of a criterion reads; ids are those of :class:`ByAlternative`."""

    criterion: int  # index of its criterion among the list's computable criteria
    index: int  # among the criterion's computable alternatives
    criterion_id: str
    kind: Literal["pim", "omission"]
    selectors: frozenset[int]  # of its drugs and absent drugs: an exposure none selects is moot
    required_selectors: frozenset[int]  # each selects some exposure, or the alternative is false
    groups: frozenset[int]  # required or excluded condition groups
    required_groups: frozenset[int]  # each present, or the alternative is false
    age: bool
    sex: bool
    labs: tuple[str, ...]  # fields of ``LAB_FIELDS``
    unresolved: bool  # has absent drugs: an unresolved line makes "none prescribed" unknown
    details: bool  # reads the dose, duration, route or PRN of an exposure (else only its substance)
    absent_drugs: tuple[str, ...]  # what a hit through it finds missing: see ``CriterionHit.absent_drugs``


class AlternativeHit(NamedTuple):
    """What merging reads of an alternative that holds; a criterion's hit is the union of these."""

    criterion_id: str
    kind: Literal["pim", "omission"]
    targets: frozenset[tuple[int, int]]  # (line, substance) of its target drugs: see :func:`pim_key`
    absent_drugs: tuple[str, ...]  # what it found missing: see ``CriterionHit.absent_drugs``


class ByAlternative:
    """A compiled list seen alternative by alternative.

    :meth:`hit` tells whether :func:`evaluate` finds an alternative true. It depends only on the
    exposures selected by :attr:`AlternativeInputs.selectors`, the presence of its groups, and the
    patient facts and unresolved lines it reads. The criterion's hit (when one of its alternatives holds)
    has as targets the union of theirs, and as missing drugs theirs, in order.
    """

    def __init__(self, criteria: CriteriaList) -> None:
        self._compiled = compiled = _compiled_for(criteria)
        self.list_id = compiled.list_id
        self.group_count = 1 + max(
            (g.gid for c in compiled.criteria for m in c.matches for g in (*m.groups, *m.excluded)),
            default=-1,
        )
        found = []
        for ci, crit in enumerate(compiled.criteria):
            for mi, m in enumerate(crit.matches):
                found.append(
                    AlternativeInputs(
                        criterion=ci,
                        index=mi,
                        criterion_id=crit.source.criterion_id,
                        kind=crit.source.kind,
                        selectors=frozenset({d.sid for d in m.drugs} | set(m.absent)),
                        required_selectors=frozenset(d.sid for d in m.drugs),
                        groups=frozenset(g.gid for g in (*m.groups, *m.excluded)),
                        required_groups=frozenset(g.gid for g in m.groups),
                        age=m.age_min is not None or m.age_max is not None,
                        sex=m.sex is not None,
                        labs=tuple(dict.fromkeys(lab.field for lab in m.labs)),
                        unresolved=bool(m.absent),
                        details=any(not d.plain for d in m.drugs),
                        absent_drugs=m.absent_text,
                    )
                )
        self.alternatives: tuple[AlternativeInputs, ...] = tuple(found)

    def selectors_of(self, exposure: Exposure) -> tuple[int, ...]:
        """The selectors the exposure meets (whatever its line number)."""
        compiled = self._compiled
        sids = compiled.exposure_memo.get((exposure.atc, exposure.name))
        return sids if sids is not None else _selectors_of_exposure(compiled, exposure)

    def groups_of(self, codes: Iterable[str]) -> tuple[int, ...]:
        """The condition groups present for these patient codes, each once."""
        return tuple(_present_groups(self._compiled, codes))

    def hit(self, alternative: AlternativeInputs, ctx: CheckContext) -> AlternativeHit | None:
        """The alternative as :func:`evaluate` finds it: what merging reads when it holds, else None."""
        compiled = self._compiled
        crit = compiled.criteria[alternative.criterion]
        match = crit.matches[alternative.index]
        selected = _selected(compiled, ctx.exposures)
        groups = _present_groups(compiled, ctx.patient.conditions)
        # Evaluated only when its trigger occurred (_todo).
        if match.groups:
            triggered = match.groups[0].gid in groups
        else:
            triggered = not match.drugs or match.drugs[0].sid in selected
        if not triggered:
            return None
        sure, _ = _outcomes(crit, [alternative.index], ctx, selected, groups)
        if not sure:
            return None
        exposures = ctx.exposures
        targets = frozenset(
            (exposures[i].line, exposures[i].substance_id) for drug, i in sure[0].drugs if drug.target
        )
        return AlternativeHit(crit.source.criterion_id, crit.source.kind, targets, match.absent_text)
