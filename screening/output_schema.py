"""The screening's output rows: one per patient, the same from both engines.

``rank`` is added once every patient is scored (it needs the whole population). The three list
columns repeat a few thousand distinct texts (interaction pairs, criterion ids) over millions of
rows: inside the local engine they travel dictionary-encoded (:data:`ENCODED_SCHEMA`), as they are
built, and are decoded to list<string> only in the output file.
"""

from __future__ import annotations

import pyarrow as pa

from iatro.kb.thesaurus import Level

LEVEL_COLUMNS: dict[Level, str] = {
    "contre-indication": "contraindications",
    "association-deconseillee": "deconseillees",
    "precaution-emploi": "precautions",
    "a-prendre-en-compte": "a_prendre_en_compte",
}
COUNTS = (
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
        *(pa.field(name, pa.int32(), nullable=False) for name in COUNTS),
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
# The list columns with their texts dictionary-encoded: a few thousand distinct texts over every row.
ENCODED_LIST = pa.list_(pa.dictionary(pa.int32(), pa.string()))
ENCODED_SCHEMA = pa.schema(
    [pa.field(f.name, ENCODED_LIST, f.nullable) if pa.types.is_list(f.type) else f for f in OUTPUT_SCHEMA]
)
