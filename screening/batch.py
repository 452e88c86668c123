"""The per-chunk function both engines call: dispensation rows of whole patients in, one row per patient out.

A :class:`Screener` owns an engine and everything memoised from it (lines and their arrays, line pairs,
criteria outcomes); it is built once per process (the local engine's, or once per Spark Python worker)
and called on chunk after chunk. Output columns are :data:`OUTPUT_SCHEMA`; ``rank`` is added once every
patient is scored (it needs the whole population).

Every per-patient column is computed over the whole chunk at once: per-line arrays gathered through
the chunk's CSR (patient -> catalog lines) and reduced per patient (:mod:`screening.checks`). Python
runs per patient only where the engine's evaluators still need objects (STOPP/START, and the
interaction kernel's patient-dependent pairs).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from iatro.analysis import Engine
from iatro.batch.interactions import BatchInteractions, PairHits
from iatro.kb.thesaurus import LEVEL_RANK
from iatro.model.prescription import Patient, Prescription
from screening.checks import (
    TRUE,
    UNKNOWN,
    Chunk,
    Eligibility,
    PatientKey,
    Patients,
    Tisdale,
    Truths,
    acb_totals,
)
from screening.criteria import Criteria
from screening.derive import SEXES, UNKNOWN_AGE, derive
from screening.line_arrays import LineArrays
from screening.lines import LineCatalog
from screening.options import ScreeningOptions
from screening.output_schema import COUNTS, ENCODED_LIST, ENCODED_SCHEMA, LEVEL_COLUMNS, OUTPUT_SCHEMA
from screening.risk import BANDS, bands, risk_scores
from screening.segments import sort_keys

_LEVEL_OF_RANK = {rank: level for level, rank in LEVEL_RANK.items()}
_N_RANKS = max(LEVEL_RANK.values()) + 1


def _booleans(values: Truths) -> pa.Array:
    """A three-valued column as nullable booleans (unknown -> null)."""
    return pa.array(values == TRUE, type=pa.bool_(), mask=values == UNKNOWN)


def _lists(column: pa.ListArray, encoded: bool) -> pa.ListArray:
    """A list column of dictionary-encoded texts, kept so (``encoded``) or decoded to list<string>."""
    if encoded:
        return column
    values = column.values
    return pa.ListArray.from_arrays(
        column.offsets, values.dictionary.take(values.indices), type=pa.list_(pa.string())
    )


class Screener:
    def __init__(self, engine: Engine, options: ScreeningOptions) -> None:
        if options.as_of is None:
            raise ValueError("a Screener needs options with the reference date (as_of) set")
        self.engine = engine
        self.options = options
        self.catalog = LineCatalog(engine, options.chronic_days)
        # Contract patients by their claims facts, shared by chunks (see checks.Patients).
        self.patients: dict[PatientKey, Patient] = {}
        # The interaction counts come from the engine's batch kernel (iatro.batch), fed the same lines.
        self.kernel = BatchInteractions(engine.interactions, engine.resolver)
        self._kernel_ids = np.zeros(0, dtype=np.int32)  # catalog line id -> kernel line id (0: none)
        self.criteria = Criteria(engine, self.catalog)
        self.qt = Tisdale(engine)
        self.eligibility = Eligibility(engine)
        self.lines = LineArrays(self.catalog, self.qt.drug_class_factors)
        names = [s.name for s in engine.kb.substances]
        rank_of = {name: k for k, name in enumerate(sorted(set(names)))}
        self._names = names
        self._name_rank = np.array([rank_of[name] for name in names], dtype=np.int64)
        # Bounded by the pairs of substances the thesaurus names, a few thousand at most.
        self._pair_texts: dict[int, tuple[tuple[int, int, int, int], str]] = {}

    def _kernel_lines(self, ids: npt.NDArray[np.int32]) -> npt.NDArray[np.int32]:
        lines = self.catalog.lines
        known = len(self._kernel_ids)
        if len(lines) > known:
            # The catalog resolved these lines with the engine already: the kernel reads their exposures.
            found = self.kernel.encode_exposures([line.exposures for line in lines[known:]])
            self._kernel_ids = np.concatenate((self._kernel_ids, np.asarray(found, dtype=np.int32)))
        return self._kernel_ids[ids]

    def prescriptions(self, rows: pa.Table) -> list[tuple[str, Prescription | None]]:
        """Each patient's derived list as the contract prescription the engine would analyse.

        None for a patient with a line the contract cannot carry (a malformed code): such a line
        is unresolved in the screening and has no contract form.
        """
        derived = derive(rows, self.options, self.catalog)
        out: list[tuple[str, Prescription | None]] = []
        for p, pid in enumerate(derived.patient_ids):
            lines = [
                self.catalog.lines[i] for i in derived.line_ids[derived.offsets[p] : derived.offsets[p + 1]]
            ]
            inputs = [line.input for line in lines]
            if any(i is None for i in inputs):
                out.append((pid, None))
                continue
            out.append(
                (
                    pid,
                    Prescription(
                        date=self.options.as_of,
                        patient=derived.contexts[p].patient(),
                        lines=tuple(i for i in inputs if i is not None),
                    ),
                )
            )
        return out

    def screen(
        self, rows: pa.Table, phases: dict[str, float] | None = None, *, encoded_lists: bool = False
    ) -> pa.Table:
        """Rows of complete patients (every row of each patient present) -> one output row per patient.

        ``phases``, when given, receives the seconds spent in each phase (added to what it holds).
        The table has :data:`OUTPUT_SCHEMA`, or :data:`ENCODED_SCHEMA` with ``encoded_lists``: the list
        columns' texts dictionary-encoded as they are built (the same values, without decoding a few
        thousand distinct texts into every row; the local engine's work file stores them so).
        """
        timings: dict[str, float] = {} if phases is None else phases

        @contextmanager
        def phase(name: str) -> Iterator[None]:
            start = time.perf_counter()
            yield
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - start

        with phase("derive"):
            derived = derive(rows, self.options, self.catalog)
            self.lines.sync()
            chunk = Chunk(self.lines, derived.offsets, derived.line_ids, derived.facts)
            n = chunk.size
            counts = {name: np.zeros(n, dtype=np.int32) for name in COUNTS}
            patients = Patients(derived.facts, self.patients)
        with phase("interactions (batch kernel)"):
            hits = self.kernel.run(chunk.offsets, self._kernel_lines(chunk.line_ids), patients)
        with phase("interaction columns"):
            pairs = self._interactions(hits, n, counts)
        with phase("counts, acb, qt, eligibility"):
            unresolved = chunk.count(~self.lines.resolved)
            counts["n_lines"][:] = np.diff(chunk.offsets)
            counts["n_chronic"][:] = chunk.count(self.lines.chronic)
            counts["unresolved_codes"][:] = unresolved
            counts["invalid_conditions"][:] = derived.invalid_conditions
            counts["acb_total"][:] = acb_totals(chunk)
            qt = self.qt.run(chunk, unresolved)
            counts["qt_score"][:] = qt.score
            counts["qt_max_possible"][:] = qt.max_possible
            eligibility = self.eligibility.run(chunk, unresolved)
        with phase("stopp/start"):
            facts = derived.facts
            criteria = self.criteria.run_facts(
                chunk.offsets,
                chunk.line_ids,
                unresolved > 0,
                facts.age,
                facts.sex,
                facts.conditions,
                facts.condition_sets,
                patients,
            )
            counts["stopp"][:] = criteria.stopp
            counts["start"][:] = criteria.start
        with phase("output"):
            qt_level = pa.array(self.qt.levels, pa.string()).take(pa.array(qt.level))
            score = risk_scores(
                counts["contraindications"],
                counts["deconseillees"],
                counts["stopp"],
                counts["acb_total"],
                np.asarray(self.qt.levels)[qt.level],
            )
            columns: dict[str, pa.Array] = {
                "patient_id": pa.array(derived.patient_ids, pa.string()),
                "age": pa.array(facts.age, pa.int16(), mask=facts.age == UNKNOWN_AGE),
                "sex": pa.array(SEXES, pa.string()).take(pa.array(facts.sex)),
                **{name: pa.array(values, pa.int32()) for name, values in counts.items()},
                "qt_level": qt_level,
                "town_door": _booleans(eligibility.town_door),
                "iatroprev": _booleans(eligibility.iatroprev),
                "optimedoc": _booleans(eligibility.optimedoc),
                "bilan_partage_medication": _booleans(eligibility.bpm),
                "risk_score": pa.array(score, pa.int32()),
                "risk_level": pa.array([name for name, _ in BANDS], pa.string()).take(pa.array(bands(score))),
                "interaction_pairs": _lists(pairs, encoded_lists),
                "stopp_criteria": _lists(criteria.stopp_ids, encoded_lists),
                "start_criteria": _lists(criteria.start_ids, encoded_lists),
            }
            schema = ENCODED_SCHEMA if encoded_lists else OUTPUT_SCHEMA
            table = pa.Table.from_arrays([columns[f.name] for f in schema], schema=schema)
        return table

    def _pair_text(self, packed: int, n_substances: int) -> tuple[tuple[int, int, int, int], str]:
        """A hit's code as (its sort key within a patient, its text); remembered across chunks."""
        found = self._pair_texts.get(packed)
        if found is None:
            rest, marked = divmod(packed, 2)
            rest, level = divmod(rest, _N_RANKS)
            first, second = divmod(rest, n_substances)
            # "?" marks a level read as the worst candidate: a condition claims cannot settle (a dose).
            shown = _LEVEL_OF_RANK[level] + ("?" if marked else "")
            text = f"{self._names[first]} + {self._names[second]}: {shown}"
            # Within a patient: worst level first, then as the texts sort ("x" before "x?").
            key = (-level, int(self._name_rank[first]), int(self._name_rank[second]), marked)
            found = self._pair_texts[packed] = (key, text)
        return found

    def _interactions(self, hits: PairHits, n: int, counts: dict[str, npt.NDArray[np.int32]]) -> pa.ListArray:
        """Counts per level into ``counts``; each patient's pairs as text, worst first, then by names."""
        by_level = hits.counts_by_level(n)
        for level, column in LEVEL_COLUMNS.items():
            counts[column][:] = by_level[:, LEVEL_RANK[level]]
        counts["interactions_unresolved"][:] = np.bincount(hits.prescription[hits.unresolved], minlength=n)
        prescription = np.asarray(hits.prescription, dtype=np.int64)
        n_substances = len(self._names)
        # Each hit as one (a, b, level, ?) code; Arrow's hash gives the chunk's distinct codes.
        code = (
            (np.asarray(hits.substance_a, dtype=np.int64) * n_substances + hits.substance_b) * _N_RANKS
            + hits.level
        ) * 2 + hits.unresolved
        encoded = pc.dictionary_encode(pa.array(code, pa.int64()))
        entry = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
        described = [self._pair_text(packed, n_substances) for packed in encoded.dictionary.to_pylist()]
        ranked = sorted(range(len(described)), key=lambda k: described[k][0])
        position = np.empty(len(ranked), dtype=np.int64)
        position[ranked] = np.arange(len(ranked))
        # Sorting (patient, position of the text) sorts each patient's texts; the hits come by patient.
        width = max(len(ranked), 1)
        keys = sort_keys(prescription * width + position[entry])
        texts = pa.array([described[k][1] for k in ranked], pa.string())
        values = pa.DictionaryArray.from_arrays(pa.array((keys % width).astype(np.int32)), texts)
        offsets = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(np.bincount(prescription, minlength=n), out=offsets[1:])
        return pa.ListArray.from_arrays(pa.array(offsets), values, type=ENCODED_LIST)
