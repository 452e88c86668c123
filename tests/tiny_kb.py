"""A tiny hand-written KB (three products) for fast unit tests, written through the real writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from knowledge_base.builder.compile import _write
from knowledge_base.builder.files import SOURCES_DIR, load_registry

SUBSTANCES = [
    {
        "name": "amitriptyline",
        "key": "amitriptyline",
        "atc": ["N06AA09"],
        "name_en": "amitriptyline",
        "ansm": ["amitriptyline"],
        "origin": "bdpm",
        "homeopathic": False,
    },
    {
        "name": "paracetamol",
        "key": "paracetamol",
        "atc": ["N02BE01"],
        "name_en": "paracetamol",
        "ansm": ["paracetamol"],
        "origin": "bdpm",
        "homeopathic": False,
    },
]
PRODUCTS = [
    {
        "cis": "62633436",
        "name": "LAROXYL 25 mg, comprimé pelliculé",
        "form": "comprimé pelliculé",
        "routes": ["orale"],
        "marketed": True,
        "atc": "N06AA09",
        "atc_basis": "bdpm:CIS_MITM",
        "generic_group": None,
        "homeopathic": False,
        "components": [[0, "25 mg", "un comprimé", 25.0, "compositions"]],
        "stem": "laroxyl",
    },
    {
        "cis": "60234100",
        "name": "DOLIPRANE 1000 mg, comprimé",
        "form": "comprimé",
        "routes": ["orale"],
        "marketed": True,
        "atc": "N02BE01",
        "atc_basis": "bdpm:CIS_MITM",
        "generic_group": None,
        "homeopathic": False,
        "components": [[1, "1000 mg", "un comprimé", 1000.0, "compositions"]],
        "stem": "doliprane",
    },
]


def write_tiny_kb(directory: Path) -> Path:
    tables = {
        "substances": SUBSTANCES,
        "substance_synonyms": [["chlorhydrate d amitriptyline"], []],
        "products": PRODUCTS,
        "presentations": [["3400930000001", "3000001", 0, "plaquette de 30", True]],
        "atc_names": {"N06AA09": "amitriptyline", "N02BE01": "paracetamol"},
        "ansm_index": {},
        "acb": [],
        "atc_ddd": {},
    }
    _write(
        directory,
        tables,
        np.asarray([0, 1, 2], dtype=np.int32),
        np.asarray([0, 1], dtype=np.int32),
        load_registry(),
        SOURCES_DIR,
        lambda _m: None,
    )
    return directory
