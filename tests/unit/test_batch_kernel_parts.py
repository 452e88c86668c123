"""Issue 10 (screening speed): the interaction kernel's vectorised parts equal their plain definitions.

The kernel (``iatro.batch``) registers signatures as lines are encoded and builds its pair table in
numpy, drops a line met again in a prescription before pairing, merges a substance met on several
lines with one sort, answers a batch's coded histories one CIM-10 code at a time, and memoises a
qualified pair's outcome by exposure class. Each part is held here to a plain Python statement of
what it must give, on the real knowledge base where it reads one:

* the pair table over every signature a KB substance can have (every route that changes it), against
  a dictionary of the rules each pair of signatures meets;
* a kernel that meets its lines batch after batch (its table rebuilt as signatures appear) against
  one that encoded them all first, and both paths (numpy, single prescription) against each other;
* repeated lines, merged pairs and the pairs of a batch against loops over each prescription;
* the answers of condition sets against ``PatientQuestion.answer_to``, across batches and bounds;
* exposures of one class (same substance, names, route and doses; other ATC codes, "as needed" or a
  duration) against the engine's own evaluation of every pair they make.
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

import numpy as np
import pytest

from benchmarks.generator import COMMON, prescriptions
from iatro.analysis import Engine
from iatro.batch import BatchInteractions, PairHits
from iatro.batch import answers as answers_module
from iatro.batch.answers import CODE, Answers
from iatro.batch.pairs import merge_same_pair, pairs_within, repeats
from iatro.batch.patients import BuiltPatients
from iatro.batch.table import NO_RULE, QUALIFY, pair_codes, pair_table
from iatro.checks.context import Exposure
from iatro.checks.exposures import build_exposures
from iatro.errors import FieldError
from iatro.kb.store import KnowledgeBase
from iatro.kb.thesaurus import LEVEL_RANK
from iatro.model.prescription import LineInput, Patient, Prescription
from tests.unit.test_batch_interactions import _engine_rows, _kernel_rows
from tests.unit.test_batch_qualified_facts import CODES, _hit_tuples, _patient

ROUTES = (None, "orale", "injectable", "vaginale", "cutanee")


def _fields(hits: PairHits) -> dict[str, np.ndarray]:
    return {name: getattr(hits, name) for name in PairHits.__dataclass_fields__}


def _same_hits(a: PairHits, b: PairHits) -> None:
    for name, values in _fields(a).items():
        other = getattr(b, name)
        assert values.dtype == other.dtype and np.array_equal(values, other), name


# -- the pair table -------------------------------------------------------------------------------


def _every_signature(engine: Engine) -> list[tuple[tuple[int, int], ...]]:
    """The signature of every KB substance under every route (and none), as the kernel computes one."""
    index = engine.interactions
    found: dict[tuple[tuple[int, int], ...], None] = {(): None}
    for substance in engine.kb.substances:
        for route in (*ROUTES, *index.route_sides):
            exposure = Exposure(
                line=0,
                substance_id=substance.id,
                name=substance.name,
                atc=(),
                route=route,
                aliases=substance.ansm,
            )
            found[tuple(sorted({(rule, side) for rule, side, _ in index.entries(exposure)}))] = None
    return list(found)


def test_the_pair_table_holds_the_main_rule_of_every_pair_of_signatures(engine: Engine) -> None:
    kernel = BatchInteractions(engine.interactions, engine.resolver)
    signatures = _every_signature(engine)
    assert len(signatures) > 1000
    codes, qualified = kernel._codes, kernel._qualified
    table = pair_table(signatures, codes, qualified).reshape(len(signatures), len(signatures))
    # Plain statement: the rules two signatures meet, one on side a and the other on side b.
    members: dict[tuple[int, int], list[int]] = defaultdict(list)
    for sig, signature in enumerate(signatures):
        for rule, side in signature:
            members[rule, side].append(sig)
    expected: dict[tuple[int, int], list[int]] = defaultdict(list)
    for (rule, side), sigs in members.items():
        if side == 0:
            for a in sigs:
                for b in members.get((rule, 1), ()):
                    expected[a, b].append(rule)
                    expected[b, a].append(rule)
    assert len(expected) == int((table != NO_RULE).sum()) > 100_000
    for (a, b), rules in expected.items():
        cell = int(table[a, b])
        assert cell & (QUALIFY - 1) == min(int(codes[r]) for r in rules), (a, b)
        assert bool(cell & QUALIFY) == any(bool(qualified[r]) for r in rules), (a, b)
    # The code orders rules as the engine's alert does: worst level, then the smaller rule id.
    rules = engine.interactions.rules
    by_code = sorted(range(len(rules)), key=lambda r: int(codes[r]))
    assert by_code == sorted(range(len(rules)), key=lambda r: (-LEVEL_RANK[rules[r].worst], rules[r].rule_id))
    assert pair_codes(kernel._rank, kernel._rule_order).tolist() == codes.tolist()


def test_a_kernel_that_meets_its_lines_batch_after_batch_gives_the_same_rows(engine: Engine) -> None:
    """Signatures registered as lines come (the table rebuilt at each run that meets new ones)."""
    rng = random.Random(12)
    items = list(prescriptions(3000, seed=77))
    names = [[line["substance"] for line in item["lines"]] for item in items]  # type: ignore[index,union-attr]
    routes = ("orale", "injectable", None)
    batch = [[LineInput(substance=n, route=rng.choice(routes)) for n in lines] for lines in names]
    patients = [_patient(rng) for _ in batch]
    offsets = np.concatenate([[0], np.cumsum([len(lines) for lines in batch])]).astype(np.int64)
    whole = BatchInteractions(engine.interactions, engine.resolver)
    reference = whole.run(offsets, whole.encode_line_inputs(x for lines in batch for x in lines), patients)
    stepwise = BatchInteractions(engine.interactions, engine.resolver)
    tables = []
    for start, stop in ((0, 10), (10, 300), (300, 3000)):
        part = batch[start:stop]
        ids = stepwise.encode_line_inputs(x for lines in part for x in lines)
        hits = stepwise.run(offsets[start : stop + 1] - offsets[start], ids, patients[start:stop])
        rows = (reference.prescription >= start) & (reference.prescription < stop)
        expected = reference.take(np.flatnonzero(rows))
        _same_hits(
            hits,
            PairHits(**{**_fields(expected), "prescription": expected.prescription - start}),
        )
        tables.append(stepwise._table_size)
        # The single-prescription path reads the same table, rebuilt when it meets new signatures.
        for p in range(0, len(part), 37):
            single = stepwise.check_lines(
                ids[offsets[start + p] - offsets[start] : offsets[start + p + 1] - offsets[start]].tolist(),
                patients[start + p],
            )
            mine = np.flatnonzero(hits.prescription == p)
            assert sorted(tuple(hit) for hit in single) == _hit_tuples(hits, mine)
    assert tables[0] < tables[1] <= tables[2]  # the table grew with the lines met


def test_a_single_prescription_meets_new_signatures_without_a_run(engine: Engine) -> None:
    kernel = BatchInteractions(engine.interactions, engine.resolver)
    before = kernel._table_size
    ids = kernel.encode_lines(["amiodarone", "simvastatine", "clarithromycine"]).tolist()
    hits = kernel.check_lines(ids)
    assert kernel._table_size > before
    names = kernel.kb.substances
    found = {frozenset((names[h.substance_a].name, names[h.substance_b].name)) for h in hits}
    assert found >= {
        frozenset(("amiodarone", "simvastatine")),
        frozenset(("clarithromycine", "simvastatine")),
    }


def test_lines_given_as_their_exposures_get_the_ids_of_their_inputs(
    engine: Engine, kb: KnowledgeBase
) -> None:
    kernel = BatchInteractions(engine.interactions, engine.resolver)
    rng = random.Random(3)
    products = [p.cis for p in kb.products if p.marketed and p.components]
    inputs = [
        LineInput(cis=rng.choice(products), posology=rng.choice((None, "1 cp matin et soir")))
        for _ in range(300)
    ]
    inputs += [LineInput(substance=name) for name, _ in COMMON] + [LineInput(substance="zzz not a drug")]
    exposures = []
    for line in inputs:
        report = engine.resolver.resolve(line, 0)
        exposures.append(build_exposures(kb, (report,), (line,)) if report.status == "resolved" else ())
    other = BatchInteractions(engine.interactions, engine.resolver)
    assert other.encode_exposures(exposures).tolist() == kernel.encode_line_inputs(inputs).tolist()
    assert (
        kernel.encode_exposures(exposures[::-1]).tolist() == kernel.encode_line_inputs(inputs[::-1]).tolist()
    )
    moved = [Exposure(line=2, substance_id=0, name="x", atc=())]
    with pytest.raises(FieldError) as error:
        kernel.encode_exposures([(), moved])
    assert error.value.field == "lines.1"


# -- pairs, repeats and merges against loops -----------------------------------------------------


def _random_batch(seed: int, n_presc: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(0, 14, n_presc)
    presc = np.repeat(np.arange(n_presc, dtype=np.int64), sizes)
    exposure = rng.integers(0, 40, len(presc))
    sid = (exposure // 3).astype(np.int32)  # three exposures a substance: doses or routes
    return presc, exposure, sid


def test_repeats_keep_first_occurrences_and_name_the_substances_met_twice() -> None:
    for seed in range(6):
        presc, exposure, sid = _random_batch(seed, 400)
        rank = exposure.astype(np.int64)  # sid-major: exposure // 3 is the substance
        for drop in (False, True):
            keep, duplicated = repeats(presc, rank, sid, drop)
            expected_keep = np.ones(len(presc), dtype=np.bool_)
            if drop:
                seen: set[tuple[int, int]] = set()
                for i, key in enumerate(zip(presc.tolist(), exposure.tolist(), strict=True)):
                    expected_keep[i] = key not in seen
                    seen.add(key)
            assert (keep is None and expected_keep.all()) or np.array_equal(keep, expected_keep)
            kept = np.flatnonzero(expected_keep)
            counts: dict[tuple[int, int], int] = defaultdict(int)
            for i in kept.tolist():
                counts[int(presc[i]), int(sid[i])] += 1
            expected = [k for k, i in enumerate(kept.tolist()) if counts[int(presc[i]), int(sid[i])] > 1]
            assert sorted(duplicated.tolist()) == expected


def test_pairs_within_gives_every_pair_that_meets_a_rule_in_order() -> None:
    rng = np.random.default_rng(5)
    size = 23
    table = np.where(rng.random(size * size) < 0.3, rng.integers(0, 5000, size * size), NO_RULE).astype(
        np.int16
    )
    for n_presc in (0, 1, 50, 700):
        sizes = rng.integers(0, 16, n_presc)
        presc = np.repeat(np.arange(n_presc, dtype=np.int64), sizes)
        sig = rng.integers(0, size, len(presc)).astype(np.int32)
        first, second, cell = pairs_within(presc, sig, n_presc, table, size)
        expected = []
        for i in range(len(presc)):
            for j in range(i + 1, len(presc)):
                if presc[j] == presc[i] and table[sig[i] * size + sig[j]] >= 0:
                    expected.append((i, j, int(table[sig[i] * size + sig[j]])))
        assert list(zip(first.tolist(), second.tolist(), cell.tolist(), strict=True)) == expected


def test_merging_keeps_the_earliest_row_of_the_main_rule_per_pair() -> None:
    rng = np.random.default_rng(9)
    n_rules = 30
    rule_order = rng.permutation(n_rules).astype(np.int64)
    for rows in (0, 1, 2, 300, 5000):
        presc = np.sort(rng.integers(0, max(rows // 6, 1), rows)).astype(np.int64)
        a = rng.integers(0, 5, rows).astype(np.int32)
        b = (a + 1 + rng.integers(0, 3, rows)).astype(np.int32)
        level = rng.integers(1, 5, rows).astype(np.int8)
        rule = rng.integers(0, n_rules, rows).astype(np.int32)
        unresolved = rng.random(rows) < 0.2
        drop, kept, merged = merge_same_pair(presc, a, b, level, rule, unresolved, 10, n_rules, rule_order)
        groups: dict[tuple[int, int, int], list[int]] = defaultdict(list)
        for i in range(rows):
            groups[int(presc[i]), int(a[i]), int(b[i])].append(i)
        if all(len(g) == 1 for g in groups.values()):
            assert len(drop) == len(kept) == 0
            continue
        expected_drop, expected_kept = [], {}
        for members in groups.values():
            main = min(members, key=lambda i: ((4 - int(level[i])) * n_rules + int(rule_order[rule[i]]), i))
            expected_drop += [i for i in members if i != main]
            if len(members) > 1:
                expected_kept[main] = any(bool(unresolved[i]) for i in members)
        assert sorted(drop.tolist()) == sorted(expected_drop)
        assert dict(zip(kept.tolist(), merged.tolist(), strict=True)) == expected_kept


def test_repeated_lines_give_the_rows_of_the_engine(engine: Engine, kb: KnowledgeBase) -> None:
    """Lines repeated (the same product, or the same substance at another dose) in most prescriptions."""
    rng = random.Random(31)
    common = [name for name, weight in COMMON if weight > 0]
    doses = {"acide acetylsalicylique": (75, 160, 3000), "methotrexate": (2.5, 20)}
    batch = []
    for _ in range(600):
        lines = [LineInput(substance=n) for n in rng.sample(common, rng.randint(2, 9))]
        for name, values in doses.items():
            if rng.random() < 0.5:
                lines += [LineInput(substance=name, dose_mg_per_day=rng.choice(values)) for _ in range(2)]
        lines += rng.choices(lines, k=rng.randint(0, 3))
        rng.shuffle(lines)
        batch.append(lines)
    kernel = BatchInteractions(engine.interactions, engine.resolver)
    patients = [_patient(rng) for _ in batch]
    ids = kernel.encode_line_inputs(x for lines in batch for x in lines)
    offsets = np.concatenate([[0], np.cumsum([len(lines) for lines in batch])]).astype(np.int64)
    hits = kernel.run(offsets, ids, patients)
    repeated = 0
    for p, lines in enumerate(batch):
        prescription = Prescription(lines=tuple(lines), patient=patients[p])
        assert _kernel_rows(kb, kernel, hits, p) == _engine_rows(engine, prescription), f"prescription {p}"
        rows = np.flatnonzero(hits.prescription == p)
        single = kernel.check_lines(ids[offsets[p] : offsets[p + 1]].tolist(), patients[p])
        assert sorted(tuple(hit) for hit in single) == _hit_tuples(hits, rows), f"prescription {p}"
        repeated += len(set(lines)) < len(lines)
    assert repeated > 300


# -- answers of a batch's patients ----------------------------------------------------------------


def _condition_sets(rng: random.Random, count: int) -> list[tuple[str, ...]]:
    return [tuple(sorted(set(rng.sample(CODES, rng.randint(0, 4))))) for _ in range(count)]


@pytest.mark.parametrize("limit", [None, 7])
def test_answers_by_field_value_equal_each_question_asked_of_each_patient(
    engine: Engine, limit: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if limit is not None:
        monkeypatch.setattr(answers_module, "_ANSWER_LIMIT", limit)
    questions = BatchInteractions(engine.interactions).qualified_pairs.questions
    assert {q.field for q in questions} >= {"conditions", "age", "sex"}
    answers = Answers(questions)
    rng = random.Random(2)
    for batch in range(4):  # later batches meet remembered values, and new ones
        patients = [
            Patient(
                conditions=rng.choice(_condition_sets(rng, 60)),
                age=rng.choice((None, 17, 18, 64, 65, 80)),
                sex=rng.choice((None, "F", "M")),
            )
            for _ in range(400)
        ]
        people = np.array(sorted(rng.sample(range(400), 300)), dtype=np.int64)
        asked = sorted(rng.sample(range(len(questions)), min(len(questions), 9)))
        columns = answers.columns(BuiltPatients(patients), people, asked)
        assert sorted(columns) == asked
        for q in asked:
            expected = [CODE[questions[q].answer(patients[p])] for p in people.tolist()]
            assert columns[q].tolist() == expected, (batch, questions[q])


def test_answers_to_many_values_equal_answer_to_each(engine: Engine) -> None:
    questions = BatchInteractions(engine.interactions).qualified_pairs.questions
    rng = random.Random(4)
    values: dict[str, list[Any]] = {
        "conditions": [*_condition_sets(rng, 300), ()],
        "sex": ["F", "M", None],
        "age": [None, 17, 18, 64.5, 65, 90],
        "egfr_ml_min": [None, 10.0, 29.9, 30.0, 59.0, 60.0],
        "labs.potassium_mmol_l": [None, 3.0, 5.0, 5.5, 6.0],
    }
    for question in questions:
        given = values[question.field]
        assert question.answers_to(given) == [question.answer_to(v) for v in given], question


# -- exposure classes -----------------------------------------------------------------------------


def test_exposures_of_one_class_get_the_engine_outcome_of_each_one(engine: Engine, kb: KnowledgeBase) -> None:
    """Outcomes are memoised by class: each exposure of a class gives the engine's evaluation the same
    outcome with every other exposure, on either line, for every patient."""
    kernel = BatchInteractions(engine.interactions, engine.resolver)
    names = (
        "acide acetylsalicylique",
        "diltiazem",
        "esmolol",
        "methotrexate",
        "spironolactone",
        "ibuprofene",
    )
    names += ("amiodarone", "simvastatine", "potassium", "clarithromycine", "fluconazole", "warfarine")
    variants = [
        LineInput(substance=name, posology=posology, duration_days=duration)
        for name in names
        for posology in (None, "1 cp si besoin", "1 cp matin et soir")
        for duration in (None, 5, 90)
    ]
    variants += [
        LineInput(substance=name, dose_mg_per_day=dose, posology=posology)
        for name, doses in (("acide acetylsalicylique", (75, 500, 3000)), ("methotrexate", (2.5, 20)))
        for dose in doses
        for posology in (None, "1 cp si besoin")
    ]
    rng = random.Random(8)
    products = [p.cis for p in kb.products if p.marketed and p.components]
    variants += [LineInput(cis=rng.choice(products)) for _ in range(200)]
    ids = kernel.encode_line_inputs(variants)
    qualified = kernel.qualified_pairs
    classes = qualified._classes()
    exposures = list(dict.fromkeys(e for i in ids.tolist() for e in kernel._lines[i]))
    by_class: dict[int, list[int]] = defaultdict(list)
    for e in exposures:
        by_class[classes[e]].append(e)
    shared = [members for members in by_class.values() if len(members) > 1]
    assert len(shared) >= 10  # "as needed", durations and ATC codes made distinct exposures of one class
    others = [members[0] for members in by_class.values()]
    patients = [_patient(rng) for _ in range(3)] + [Patient()]
    compared = 0
    for members in shared:
        for y in others:
            if kernel._exposure_sid[y] == kernel._exposure_sid[members[0]]:
                continue
            for patient in patients:
                for order in ((0, 1), (1, 0)):
                    outcomes = {
                        qualified._evaluate(*((x, y) if order == (0, 1) else (y, x)), patient)
                        for x in members
                    }
                    assert len(outcomes) == 1, (members, y, order)
                    compared += len(members) - 1
    assert compared > 1000
    assert any(
        o.level for o in (qualified._evaluate(m[0], y, Patient()) for m in shared for y in others[:50])
    )
