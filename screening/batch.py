"""The per-chunk function both engines call: dispensation rows of whole patients in, one row per patient out.

A :class:`Screener` owns an engine and everything memoised from it (lines, line pairs, criteria
outcomes); it is built once per process (the local engine's, or once per Spark Python worker) and
called on chunk after chunk. Output columns are :data:`OUTPUT_SCHEMA`; ``rank`` is added once every
patient is scored (it needs the whole population).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from iatro.analysis import Engine
from iatro.batch.interactions import BatchInteractions, PairHits
from iatro.kb.thesaurus import LEVEL_RANK, Level
from iatro.model.prescription import Prescription
from screening.checks import Eligibility, Patients, Tisdale
from screening.criteria import Criteria
from screening.derive import derive
from screening.lines import LineCatalog
from screening.options import ScreeningOptions
from screening.risk import band, risk_scores

LEVEL_COLUMNS: dict[Level, str] = {
    "contre-indication": "contraindications",
    "association-deconseillee": "deconseillees",
    "precaution-emploi": "precautions",
    "a-prendre-en-compte": "a_prendre_en_compte",
}
_LEVEL_OF_RANK = {rank: level for level, rank in LEVEL_RANK.items()}
_COUNTS = (
    "n_lines",
    "n_chronic",
    "unresolved_codes",
    "invalid_conditions",
    *LEVEL_COLUMNS.values(),
    "interactions_unresolved",
    "stopp",
    "start",
    "acb_total",
    "qt_score",
    "qt_max_possible",
)
OUTPUT_SCHEMA = pa.schema(
    [
        pa.field("patient_id", pa.string(), nullable=False),
        pa.field("age", pa.int16()),
        pa.field("sex", pa.string()),
        *(pa.field(name, pa.int32(), nullable=False) for name in _COUNTS),
        pa.field("qt_level", pa.string(), nullable=False),
        pa.field("town_door", pa.bool_()),
        pa.field("iatroprev", pa.bool_()),
        pa.field("optimedoc", pa.bool_()),
        pa.field("bilan_partage_medication", pa.bool_()),
        pa.field("risk_score", pa.int32(), nullable=False),
        pa.field("risk_level", pa.string(), nullable=False),
        pa.field("interaction_pairs", pa.list_(pa.string())),
        pa.field("stopp_criteria", pa.list_(pa.string())),
        pa.field("start_criteria", pa.list_(pa.string())),
    ]
)
RANKED_SCHEMA = OUTPUT_SCHEMA.append(pa.field("rank", pa.int64(), nullable=False))


class Screener:
    def __init__(self, engine: Engine, options: ScreeningOptions) -> None:
        if options.as_of is None:
            raise ValueError("a Screener needs options with the reference date (as_of) set")
        self.engine = engine
        self.options = options
        self.catalog = LineCatalog(engine, options.chronic_days)
        self.patients = Patients()
        # The interaction counts come from the engine's batch kernel (iatro.batch), fed the same lines.
        self.kernel = BatchInteractions(engine.interactions, engine.resolver)
        self._kernel_ids: list[int] = []  # catalog line id -> kernel line id (0: takes no part)
        self.criteria = Criteria(engine, self.catalog)
        self.qt = Tisdale(engine)
        self.eligibility = Eligibility(engine)

    def _kernel_lines(self, ids: np.ndarray) -> np.ndarray:
        lines = self.catalog.lines
        for line in lines[len(self._kernel_ids) :]:
            found = self.kernel.encode_line_inputs([line.input])[0] if line.input is not None else 0
            self._kernel_ids.append(int(found))
        table: np.ndarray = np.asarray(self._kernel_ids, dtype=np.int32)
        return table[ids]  # type: ignore[no-any-return]

    def _interactions(self, hits: PairHits, n: int, counts: dict[str, np.ndarray]) -> list[list[str]]:
        """Counts per level into ``counts``; each patient's pairs, worst first, as text."""
        by_level = hits.counts_by_level(n)
        for level, column in LEVEL_COLUMNS.items():
            counts[column][:] = by_level[:, LEVEL_RANK[level]]
        counts["interactions_unresolved"][:] = np.bincount(hits.prescription[hits.unresolved], minlength=n)
        names = self.engine.kb.substances
        described: list[list[tuple[int, str, str, str]]] = [[] for _ in range(n)]
        for p, a, b, rank, unresolved in zip(
            hits.prescription.tolist(),
            hits.substance_a.tolist(),
            hits.substance_b.tolist(),
            hits.level.tolist(),
            hits.unresolved.tolist(),
            strict=True,
        ):
            # "?" marks a level read as the worst candidate: a condition claims cannot settle (a dose).
            shown = _LEVEL_OF_RANK[rank] + ("?" if unresolved else "")
            described[p].append((-rank, names[a].name, names[b].name, shown))
        return [[f"{a} + {b}: {level}" for _, a, b, level in sorted(found)] for found in described]

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

    def screen(self, rows: pa.Table) -> pa.Table:
        """Rows of complete patients (every row of each patient present) -> one output row per patient."""
        derived = derive(rows, self.options, self.catalog)
        lines_of = self.catalog.lines
        n = len(derived.patient_ids)
        counts = {name: np.zeros(n, dtype=np.int32) for name in _COUNTS}
        qt_level: list[str] = []
        elig: dict[str, list[bool | None]] = {
            k: [] for k in ("town_door", "iatroprev", "optimedoc", "bilan_partage_medication")
        }
        offsets, ids = derived.offsets, derived.line_ids
        patients = [self.patients.get(context) for context in derived.contexts]
        hits = self.kernel.run(offsets, self._kernel_lines(ids), patients)
        pairs_col = self._interactions(hits, n, counts)
        unresolved = np.fromiter((not lines_of[i].resolved for i in ids.tolist()), dtype=bool, count=len(ids))
        cumulative = np.concatenate(([0], np.cumsum(unresolved, dtype=np.int64)))
        has_unresolved = cumulative[offsets[1:]] > cumulative[offsets[:-1]]
        criteria = self.criteria.run_batch(offsets, ids, has_unresolved, derived.contexts, patients)
        counts["stopp"][:] = criteria.stopp
        counts["start"][:] = criteria.start
        for p in range(n):
            context = derived.contexts[p]
            patient = patients[p]
            lines = [lines_of[i] for i in ids[offsets[p] : offsets[p + 1]].tolist()]
            n_unresolved = sum(1 for line in lines if not line.resolved)
            counts["n_lines"][p] = len(lines)
            counts["n_chronic"][p] = sum(1 for line in lines if line.chronic)
            counts["unresolved_codes"][p] = n_unresolved
            counts["invalid_conditions"][p] = derived.invalid_conditions[p]

            acb: dict[str, int] = {}
            for line in lines:
                for name, value in line.acb:
                    if value > acb.get(name, -1):
                        acb[name] = value
            counts["acb_total"][p] = sum(acb.values())

            qt = self.qt.run(lines, n_unresolved, context, patient)
            qt_level.append(qt.level)
            counts["qt_score"][p] = qt.score
            counts["qt_max_possible"][p] = qt.max_possible

            eligibility = self.eligibility.run(lines, n_unresolved, context)
            elig["town_door"].append(eligibility.town_door)
            elig["iatroprev"].append(eligibility.iatroprev)
            elig["optimedoc"].append(eligibility.optimedoc)
            elig["bilan_partage_medication"].append(eligibility.bpm)

        score = risk_scores(
            counts["contraindications"],
            counts["deconseillees"],
            counts["stopp"],
            counts["acb_total"],
            qt_level,
        )
        columns: dict[str, object] = {
            "patient_id": derived.patient_ids,
            "age": [c.age for c in derived.contexts],
            "sex": [c.sex for c in derived.contexts],
            **counts,
            "qt_level": qt_level,
            **elig,
            "risk_score": score,
            "risk_level": [band(int(s)) for s in score],
            "interaction_pairs": pairs_col,
            "stopp_criteria": criteria.stopp_ids,
            "start_criteria": criteria.start_ids,
        }
        return pa.table(columns, schema=OUTPUT_SCHEMA)
