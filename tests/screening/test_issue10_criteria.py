"""Issue 10: STOPP/START for a whole chunk, worked by (patient, alternative) in arrays, is exactly what the
engine's evaluator and merge report patient by patient.

The reference is the per-patient path: ``evaluate_all`` then ``merge_hits`` on the patient's whole list
(every line numbered as in a prescription, unresolved lines given), counting the ``pim`` and
``omission`` findings and the criterion ids they cite. It is compared on generated claims (with
unknown codes, so unresolved lines), with facts varied (no age, no sex, ages at the criteria's
bounds, CIM-10 codes of the criteria, less or more specific than theirs), in chunks that reuse the
memo of earlier chunks, on random chunks (hypothesis), and with the hash made to collide.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import screening.criteria as criteria_module
import screening.criteria_findings as criteria_findings
import screening.criteria_items as criteria_items
import screening.criteria_keys as criteria_keys
import screening.criteria_tables as criteria_tables
from benchmarks.claims_generator import claims
from iatro.analysis import Engine
from iatro.checks.context import CheckContext
from iatro.checks.explicit_criteria import (
    AlternativeHit,
    ByAlternative,
    evaluate,
    evaluate_all,
    merge_hits,
    pim_key,
)
from iatro.kb.criteria import LAB_FIELDS, CriteriaList
from iatro.kb.store import KnowledgeBase
from iatro.model.prescription import Patient
from screening.criteria import Criteria, CriteriaColumns
from screening.derive import Context, derive, last_date
from screening.lines import LineCatalog
from screening.options import ScreeningOptions

PATIENTS = 3000
Expected = tuple[int, int, list[str], list[str]]


@dataclass(frozen=True)
class Chunk:
    offsets: npt.NDArray[np.int64]
    line_ids: npt.NDArray[np.int32]
    contexts: list[Context]

    def __len__(self) -> int:
        return len(self.contexts)

    def lines(self, p: int) -> list[int]:
        return [int(i) for i in self.line_ids[self.offsets[p] : self.offsets[p + 1]]]

    def part(self, first: int, end: int) -> Chunk:
        offsets = self.offsets[first : end + 1]
        return Chunk(offsets - offsets[0], self.line_ids[offsets[0] : offsets[-1]], self.contexts[first:end])


@dataclass(frozen=True)
class Sample:
    catalog: LineCatalog
    lists: tuple[CriteriaList, ...]
    chunk: Chunk
    codes: tuple[str, ...]  # CIM-10 codes the criteria name
    ages: tuple[int, ...]  # the criteria's age bounds and their neighbours

    def __repr__(self) -> str:  # hypothesis prints its strategies' arguments
        return f"Sample({len(self.chunk)} patients)"


def _criteria_codes_and_ages(lists: Sequence[CriteriaList]) -> tuple[tuple[str, ...], tuple[int, ...]]:
    codes: set[str] = set()
    ages: set[int] = set()
    for crit_list in lists:
        for criterion in crit_list.criteria:
            for match in criterion.any_of:
                for group in (*match.conditions, *match.excluded_conditions):
                    codes.update(group.cim10)
                for bound in (match.age_min, match.age_max):
                    if bound is not None:
                        ages.update((bound - 1, bound, bound + 1))
    return tuple(sorted(codes)), tuple(sorted(ages))


def _vary(contexts: list[Context], codes: Sequence[str], ages: Sequence[int], seed: int) -> list[Context]:
    """Facts the generated claims rarely have: no age, no sex, ages at the bounds, the criteria's codes."""
    rng = np.random.default_rng(seed)
    out = []
    for p, context in enumerate(contexts):
        changes: dict[str, object] = {}
        if p % 9 == 0:
            changes["age"] = None
        elif p % 17 == 0 and ages:
            changes["age"] = int(rng.choice(ages))
        if p % 13 == 0:
            changes["sex"] = None
        if p % 4 == 0:
            added = []
            for code in rng.choice(codes, size=int(rng.integers(1, 4))):
                shape = rng.integers(3)
                added.append(code[:3] if shape == 0 else code + "9" if shape == 1 and len(code) < 7 else code)
            changes["conditions"] = tuple(sorted({*context.conditions, *added}))
        out.append(dataclasses.replace(context, **changes) if changes else context)  # type: ignore[arg-type]
    return out


@pytest.fixture(scope="module")
def sample(kb: KnowledgeBase, engine: Engine) -> Sample:
    rows = pa.concat_tables(claims(kb, PATIENTS, seed=1010, codes="mixed", unknown_rate=0.03))
    options = ScreeningOptions(as_of=last_date(rows))
    catalog = LineCatalog(engine, options.chronic_days)
    derived = derive(rows, options, catalog)
    lists = engine.criteria.lists
    codes, ages = _criteria_codes_and_ages(lists)
    contexts = _vary(list(derived.contexts), codes, ages, seed=1011)
    return Sample(catalog, lists, Chunk(derived.offsets, derived.line_ids, contexts), codes, ages)


def _patients(contexts: Sequence[Context]) -> list[Patient]:
    known: dict[Context, Patient] = {}
    return [known.setdefault(c, c.patient()) if c not in known else known[c] for c in contexts]


def _unresolved(catalog: LineCatalog, chunk: Chunk) -> npt.NDArray[np.bool_]:
    return np.array([any(not catalog.lines[i].resolved for i in chunk.lines(p)) for p in range(len(chunk))])


def _run(criteria: Criteria, catalog: LineCatalog, chunk: Chunk) -> CriteriaColumns:
    return criteria.run_batch(
        chunk.offsets, chunk.line_ids, _unresolved(catalog, chunk), chunk.contexts, _patients(chunk.contexts)
    )


def reference(
    catalog: LineCatalog, lists: Sequence[CriteriaList], line_ids: list[int], context: Context
) -> Expected:
    """The per-patient path: the engine's evaluator and merge on the patient's whole list."""
    lines = [catalog.lines[i] for i in line_ids]
    ctx = CheckContext(
        exposures=tuple(e for k, line in enumerate(lines) for e in catalog.numbered(line, k)),
        patient=context.patient(),
        unresolved_lines=tuple(k for k, line in enumerate(lines) if not line.resolved),
    )
    merged = merge_hits(evaluate_all(lists, ctx).hits)
    pim = [f for f in merged if f.kind == "pim"]
    omission = [f for f in merged if f.kind == "omission"]
    return (
        len(pim),
        len(omission),
        sorted({c.criterion_id for f in pim for c in f.citations}),
        sorted({c.criterion_id for f in omission for c in f.citations}),
    )


def _rows(columns: CriteriaColumns) -> list[Expected]:
    return list(
        zip(
            columns.stopp.tolist(),
            columns.start.tolist(),
            columns.stopp_ids.to_pylist(),
            columns.start_ids.to_pylist(),
            strict=True,
        )
    )


def _assert_same(sample: Sample, chunk: Chunk, columns: CriteriaColumns) -> list[Expected]:
    expected = [
        reference(sample.catalog, sample.lists, chunk.lines(p), chunk.contexts[p]) for p in range(len(chunk))
    ]
    got = _rows(columns)
    for p, (mine, theirs) in enumerate(zip(got, expected, strict=True)):
        keys = [sample.catalog.lines[i].key for i in chunk.lines(p)]
        assert mine == theirs, (p, chunk.contexts[p], keys)
    return expected


def test_a_chunk_equals_the_engine_patient_by_patient(engine: Engine, sample: Sample) -> None:
    criteria = Criteria(engine, sample.catalog)
    chunk = sample.chunk
    middle = len(chunk) * 3 // 5
    # The second part meets the memo the first one filled, as chunks of one run do.
    expected = _assert_same(
        sample, chunk.part(0, middle), _run(criteria, sample.catalog, chunk.part(0, middle))
    )
    expected += _assert_same(
        sample, chunk.part(middle, len(chunk)), _run(criteria, sample.catalog, chunk.part(middle, len(chunk)))
    )

    # Not vacuous: the sample holds what the chunk path must get right.
    stopp = np.array([e[0] for e in expected])
    start = np.array([e[1] for e in expected])
    cited_stopp = np.array([len(e[2]) for e in expected])
    cited_start = np.array([len(e[3]) for e in expected])
    unresolved = _unresolved(sample.catalog, chunk)
    no_age = np.array([c.age is None for c in chunk.contexts])
    assert (stopp >= 3).sum() > 100 and (start >= 2).sum() > 50
    assert (cited_stopp > stopp).any(), "two PIM criteria on the same drugs make one finding"
    assert (cited_start > start).any(), "overlapping omissions make one finding"
    # An unresolved line could be the missing drug: omissions are then unknown, not findings.
    assert unresolved.sum() > 50 and (stopp[unresolved] > 0).any() and (start[~unresolved] > 0).any()
    assert (stopp[no_age] > 0).any() and (start[no_age] > 0).any()


def test_cold_warm_and_split_runs_agree(engine: Engine, sample: Sample) -> None:
    chunk = sample.chunk.part(0, 800)
    criteria = Criteria(engine, sample.catalog)
    cold = _rows(_run(criteria, sample.catalog, chunk))
    warm = _rows(_run(criteria, sample.catalog, chunk))
    split = [
        row
        for first in range(0, len(chunk), 150)
        for row in _rows(
            _run(
                Criteria(engine, sample.catalog),
                sample.catalog,
                chunk.part(first, min(first + 150, len(chunk))),
            )
        )
    ]
    assert cold == warm == split


def test_hash_collisions_and_wide_keys_cost_time_not_counts(
    engine: Engine, sample: Sample, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With every hash colliding, keys and target sets are told apart item by item (the key store
    probing slot after slot, from a table that starts with a few slots and grows); with numbers too
    wide for one sort key, the sorts take two."""
    monkeypatch.setattr(criteria_keys, "mix", lambda x: np.zeros_like(x))
    monkeypatch.setattr(criteria_keys, "_FIRST_SLOTS", 4)
    monkeypatch.setattr(criteria_items, "PACK_LIMIT", 0)
    monkeypatch.setattr(criteria_findings, "PACK_LIMIT", 0)
    chunk = sample.chunk.part(0, 400)
    criteria = Criteria(engine, sample.catalog)
    criteria._substances = 1 << 40  # drugs numbered (line, substance) beyond 62 bits per patient
    _assert_same(sample, chunk, _run(criteria, sample.catalog, chunk))
    # The second half meets the keys of the first in the store.
    _assert_same(sample, chunk, _run(criteria, sample.catalog, chunk))


def test_memos_emptied_when_full_count_the_same(
    engine: Engine, sample: Sample, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every memo (keys and their outcomes, condition groups of codes, omission groups) emptied as soon
    as it holds a few entries: the counts are those of the engine, as with the memos kept."""
    for module in (criteria_module, criteria_tables, criteria_findings):
        monkeypatch.setattr(module, "MEMO_LIMIT", 3)
    criteria = Criteria(engine, sample.catalog)
    chunk = sample.chunk
    for first in range(0, 900, 150):
        _assert_same(
            sample,
            chunk.part(first, first + 150),
            _run(criteria, sample.catalog, chunk.part(first, first + 150)),
        )


def test_omission_groups_beyond_one_mask_word(engine: Engine, sample: Sample) -> None:
    """Past 64 omission alternatives a patient's are not one 64-bit mask: the same groups, from lists."""
    chunk = sample.chunk.part(0, 600)
    criteria = Criteria(engine, sample.catalog)
    criteria._omissions._fits = False
    _assert_same(sample, chunk, _run(criteria, sample.catalog, chunk))


def test_alternatives_reading_labs_never_hold_for_claims_patients(engine: Engine, sample: Sample) -> None:
    """They are left out of the chunk path: a claims patient has no lab, so the engine finds them unknown."""
    chunk = sample.chunk.part(0, 300)
    readers = [ByAlternative(crit_list) for crit_list in sample.lists]
    reading = [(reader, a) for reader in readers for a in reader.alternatives if a.labs]
    assert reading, "the lists have alternatives that read a lab"
    for p in range(len(chunk)):
        patient = chunk.contexts[p].patient()
        assert all(operator.attrgetter(LAB_FIELDS[a.labs[0]][0])(patient) is None for _, a in reading)
        lines = [sample.catalog.lines[i] for i in chunk.lines(p)]
        ctx = CheckContext(
            exposures=tuple(e for k, line in enumerate(lines) for e in sample.catalog.numbered(line, k)),
            patient=patient,
            unresolved_lines=tuple(k for k, line in enumerate(lines) if not line.resolved),
        )
        assert all(reader.hit(a, ctx) is None for reader, a in reading)


class _Counted(Sequence[Patient]):
    """Contract patients that count how often they are read."""

    def __init__(self, patients: list[Patient]) -> None:
        self._patients = patients
        self.reads = 0

    def __len__(self) -> int:
        return len(self._patients)

    def __getitem__(self, index: int) -> Patient:  # type: ignore[override]  # (no slices asked)
        self.reads += 1
        return self._patients[index]


def test_a_patient_is_read_only_for_a_new_key_that_reads_one(engine: Engine, sample: Sample) -> None:
    """Once per key met for the first time whose alternative names a condition group, an age or a sex;
    never for a key met before; the others hold or not whoever the patient (counts as the engine's)."""
    chunk = sample.chunk.part(0, 800)
    criteria = Criteria(engine, sample.catalog)
    unresolved = _unresolved(sample.catalog, chunk)
    for round_ in range(2):
        patients = _Counted(_patients(chunk.contexts))
        read, evaluated = criteria.patients_read, criteria.evaluated_keys
        columns = criteria.run_batch(chunk.offsets, chunk.line_ids, unresolved, chunk.contexts, patients)
        _assert_same(sample, chunk, columns)
        assert patients.reads == criteria.patients_read - read
        if round_:
            assert patients.reads == 0 and criteria.evaluated_keys == evaluated
        else:
            assert 0 < patients.reads < criteria.evaluated_keys - evaluated


def test_key_store_finds_each_key_it_holds() -> None:
    """Keys added over several calls, with hashes forced to collide in a few values and the table
    growing: each is found with its own number, a key never added is not."""
    rng = np.random.default_rng(7)
    store = criteria_keys.KeyStore()
    keys: dict[tuple[int, int, tuple[int, ...]], int] = {}
    while len(keys) < 3000:
        length = int(rng.integers(1, 5))
        keys.setdefault(
            (
                int(rng.integers(0, 40)),
                int(rng.integers(0, 3)),
                tuple(sorted(rng.integers(0, 50, length).tolist())),
            ),
            len(keys),
        )

    def arrays(
        chosen: list[tuple[int, int, tuple[int, ...]]],
    ) -> tuple[
        npt.NDArray[np.uint64],
        npt.NDArray[np.int64],
        npt.NDArray[np.int64],
        npt.NDArray[np.int64],
        npt.NDArray[np.int64],
        npt.NDArray[np.int64],
    ]:
        lengths = np.array([len(v) for _, _, v in chosen], dtype=np.int64)
        views = np.array([x for _, _, v in chosen for x in v], dtype=np.int64)
        alternative = np.array([a for a, _, _ in chosen], dtype=np.int64)
        facts = np.array([f for _, f, _ in chosen], dtype=np.int64)
        starts = np.cumsum(lengths) - lengths
        hashes = store.hashes(alternative, facts, views, starts, lengths) % np.uint64(5)  # collide
        return hashes, alternative, facts, lengths, views, starts

    listed = list(keys)
    for first in range(0, 2000, 500):  # in four calls; the last thousand are never added
        hashes, alternative, facts, lengths, views, _ = arrays(listed[first : first + 500])
        found = np.array([keys[k] for k in listed[first : first + 500]], dtype=np.int64)
        store.add(hashes, alternative, facts, lengths, views, found)
    order = rng.permutation(len(listed))
    hashes, alternative, facts, lengths, views, starts = arrays([listed[k] for k in order])
    number = store.lookup(hashes, alternative, facts, lengths, views, starts)
    known = store.found[np.where(number >= 0, number, 0)]
    assert (number[order < 2000] >= 0).all() and (number[order >= 2000] == -1).all()
    assert (known[order < 2000] == order[order < 2000]).all()


def test_empty_chunk_and_patients_without_lines(engine: Engine, sample: Sample) -> None:
    criteria = Criteria(engine, sample.catalog)
    empty = Chunk(np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int32), [])
    assert _rows(_run(criteria, sample.catalog, empty)) == []
    bare = [Context(80, "F", ("I48",), None), Context(None, None, (), None)]
    nothing = Chunk(np.zeros(3, dtype=np.int64), np.zeros(0, dtype=np.int32), bare)
    _assert_same(sample, nothing, _run(criteria, sample.catalog, nothing))


@pytest.fixture(scope="module")
def shared(engine: Engine, sample: Sample) -> Criteria:
    """One Criteria for every hypothesis example: its memo grows over them as over chunks."""
    return Criteria(engine, sample.catalog)


def codes(sample: Sample) -> st.SearchStrategy[str]:
    """A code of the criteria, its category (less specific) or one of its subdivisions (more specific)."""
    named = st.sampled_from(sample.codes)
    return named | named.map(lambda c: c[:3]) | named.filter(lambda c: len(c) < 7).map(lambda c: c + "9")


@st.composite
def chunks(draw: st.DrawFn, sample: Sample) -> Chunk:
    n_lines = len(sample.catalog.lines)
    contexts: list[Context] = []
    lines: list[list[int]] = []
    for _ in range(draw(st.integers(1, 12))):
        lines.append(sorted(draw(st.sets(st.integers(0, n_lines - 1), max_size=14))))
        contexts.append(
            Context(
                age=draw(st.none() | st.sampled_from(sample.ages) | st.integers(60, 105)),
                sex=draw(st.sampled_from((None, "F", "M"))),
                conditions=tuple(sorted(draw(st.sets(codes(sample), max_size=4)))),
                ald=None,
            )
        )
    counts = np.array([len(x) for x in lines], dtype=np.int64)
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    return Chunk(offsets, np.array([i for x in lines for i in x], dtype=np.int32), contexts)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(data=st.data())
def test_random_chunks_equal_the_engine(data: st.DataObject, sample: Sample, shared: Criteria) -> None:
    chunk = data.draw(chunks(sample))
    _assert_same(sample, chunk, _run(shared, sample.catalog, chunk))


def test_alternatives_make_the_engine_hits(engine: Engine, sample: Sample) -> None:
    """A criterion is hit exactly when one of its alternatives holds; its targets and missing drugs are
    those of the alternatives that hold (what the chunk path counts with)."""
    chunk = sample.chunk.part(0, 300)
    compared = 0
    for crit_list in sample.lists:
        reader = ByAlternative(crit_list)
        ids = [a.criterion_id for a in reader.alternatives]
        for p in range(len(chunk)):
            lines = [sample.catalog.lines[i] for i in chunk.lines(p)]
            ctx = CheckContext(
                exposures=tuple(e for k, line in enumerate(lines) for e in sample.catalog.numbered(line, k)),
                patient=chunk.contexts[p].patient(),
                unresolved_lines=tuple(k for k, line in enumerate(lines) if not line.resolved),
            )
            hits = {h.criterion_id: h for h in evaluate(crit_list, ctx).hits}
            held: dict[str, list[AlternativeHit]] = {}
            for alternative in reader.alternatives:
                found = reader.hit(alternative, ctx)
                if found is not None:
                    held.setdefault(found.criterion_id, []).append(found)
            assert set(held) == set(hits), p
            for criterion_id, found_list in held.items():
                hit = hits[criterion_id]
                assert frozenset().union(*(f.targets for f in found_list)) == pim_key(hit)
                assert {a for f in found_list for a in f.absent_drugs} == set(hit.absent_drugs)
                compared += 1
        assert len(set(ids)) == len({(a.criterion, a.criterion_id) for a in reader.alternatives})
    assert compared > 1000
