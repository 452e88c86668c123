"""The SFPC intervention codes a recommendation is coded with (problem, intervention, outcome).

The table is data (``data/sfpc_codes.csv``, with its provenance); this module only reads and checks it.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Literal

from iatro.errors import FieldError

Axis = Literal["problem", "intervention", "outcome"]


@dataclass(frozen=True, slots=True)
class SfpcCode:
    axis: Axis
    code: str
    label: str
    source_ref: str


@lru_cache(maxsize=1)
def codes() -> dict[tuple[str, str], SfpcCode]:
    text = resources.files("rcp_workflow").joinpath("data", "sfpc_codes.csv").read_text(encoding="utf-8")
    body = "".join(line for line in text.splitlines(True) if not line.startswith("#"))
    return {
        (row["axis"], row["code"]): SfpcCode(row["axis"], row["code"], row["label_fr"], row["source_ref"])  # type: ignore[arg-type]
        for row in csv.DictReader(io.StringIO(body))
    }


def axis_codes(axis: Axis) -> tuple[SfpcCode, ...]:
    return tuple(c for c in codes().values() if c.axis == axis)


def lookup(axis: Axis, code: str, *, field: str) -> SfpcCode:
    """The code, or a FieldError naming ``field`` and listing the valid codes."""
    found = codes().get((axis, code))
    if found is None:
        valid = ", ".join(c.code for c in axis_codes(axis))
        raise FieldError(field, f"{code!r} is not an SFPC {axis} code (valid: {valid})")
    return found
