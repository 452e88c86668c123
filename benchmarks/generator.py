"""Seeded generator of realistic elderly French prescriptions (5–20 substances).

The drug list is what French general practice prescribes most to patients over 75 (cardiovascular,
antithrombotics, diabetes, psychotropics, analgesics, PPIs), written as DCI names: the batch mode's
"names as input". Weights are rough frequencies chosen for realism, not clinical data.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator

COMMON = [
    ("paracetamol", 10), ("amlodipine", 6), ("furosemide", 6), ("bisoprolol", 6), ("ramipril", 5),
    ("atorvastatine", 6), ("simvastatine", 3), ("rosuvastatine", 3), ("omeprazole", 5), ("esomeprazole", 4),
    ("pantoprazole", 4), ("acide acetylsalicylique", 7), ("clopidogrel", 3), ("apixaban", 4),
    ("rivaroxaban", 3), ("fluindione", 2), ("warfarine", 1), ("metformine", 5), ("gliclazide", 2),
    ("levothyroxine", 5), ("zopiclone", 3), ("oxazepam", 3), ("alprazolam", 2), ("escitalopram", 3),
    ("sertraline", 2), ("citalopram", 1), ("mirtazapine", 2), ("tramadol", 3), ("codeine", 1),
    ("amiodarone", 2), ("digoxine", 1), ("spironolactone", 2), ("hydrochlorothiazide", 2),
    ("indapamide", 2), ("candesartan", 2), ("valsartan", 2), ("perindopril", 2), ("allopurinol", 3),
    ("colchicine", 1), ("prednisolone", 1), ("alendronique acide", 0), ("cholecalciferol", 4),
    ("potassium", 2), ("macrogol", 3), ("tamsulosine", 2), ("donepezil", 1), ("memantine", 1),
    ("quetiapine", 1), ("risperidone", 1), ("haloperidol", 1), ("hydroxyzine", 1), ("ibuprofene", 1),
    ("clarithromycine", 1), ("fluconazole", 1), ("ciprofloxacine", 1), ("diltiazem", 1), ("verapamil", 1),
    ("lithium", 1), ("carbamazepine", 1), ("oxybutynine", 1), ("amitriptyline", 1),
]  # fmt: skip


def prescriptions(
    count: int, seed: int = 20261124, lines: tuple[int, int] = (5, 20)
) -> Iterator[dict[str, object]]:
    rng = random.Random(seed)
    names = [n for n, w in COMMON if w > 0]
    weights = [w for _, w in COMMON if w > 0]
    for _ in range(count):
        size = rng.randint(*lines)
        chosen: dict[str, None] = {}
        while len(chosen) < size:
            chosen[rng.choices(names, weights)[0]] = None
        yield {
            "patient": {"age": rng.randint(75, 98), "sex": rng.choice("FM")},
            "lines": [{"substance": name} for name in chosen],
        }


def write_jsonl(path: str, count: int, seed: int = 20261124) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for item in prescriptions(count, seed):
            handle.write(json.dumps(item, ensure_ascii=False) + "\n")
