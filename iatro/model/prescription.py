"""The analysis input of the contract (``shared/contract/analysis.md``), as frozen pydantic models.

Unknown fields are refused rather than ignored: a misspelt ``creatinine`` silently dropped would make
the renal check run without the value the prescriber thought they had given.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_CIM10 = re.compile(r"^[A-Z][0-9]{1,2}(\.?[0-9A-Z]{0,4})?$")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class Labs(_Frozen):
    potassium_mmol_l: float | None = Field(default=None, ge=0, le=15)
    qtc_ms: float | None = Field(default=None, ge=200, le=900)
    heart_rate_bpm: float | None = Field(default=None, ge=10, le=300)
    sodium_mmol_l: float | None = Field(default=None, ge=80, le=200)
    calcium_mmol_l: float | None = Field(default=None, ge=0, le=6)
    magnesium_mmol_l: float | None = Field(default=None, ge=0, le=5)


class Vaccination(_Frozen):
    vaccine: Literal["grippe", "covid-19", "pneumocoque", "zona", "vrs", "dtp"]
    date: dt.date


class HospitalContext(_Frozen):
    """Inputs of the Iatroprev/Optimedoc hospital door, when the caller knows them."""

    iatrogenic_admission: bool | None = None
    treatment_changes: int | None = Field(default=None, ge=0, description="Changes of treatment in the stay")


class Patient(_Frozen):
    age: int | None = Field(default=None, ge=0, le=130)
    sex: Literal["F", "M"] | None = None
    weight_kg: float | None = Field(default=None, gt=0, le=400)
    creatinine_umol_l: float | None = Field(default=None, gt=0, le=3000)
    egfr_ml_min: float | None = Field(default=None, ge=0, le=250)
    conditions: tuple[str, ...] = ()
    labs: Labs = Labs()
    vaccinations: tuple[Vaccination, ...] = ()
    long_term_condition: bool | None = Field(default=None, description="Affection de longue durée (ALD)")
    hospital: HospitalContext = HospitalContext()

    @field_validator("conditions")
    @classmethod
    def _cim10(cls, codes: tuple[str, ...]) -> tuple[str, ...]:
        out = []
        for code in codes:
            norm = code.strip().upper()
            if not _CIM10.match(norm):
                raise ValueError(f"{code!r} is not a CIM-10 code (letter, two digits, optional subdivision)")
            out.append(norm.replace(".", ""))
        return tuple(out)


class LineInput(_Frozen):
    """One line of an ordonnance: free text, a CIP13, a CIS or a substance name (French DCI)."""

    text: str | None = Field(default=None, min_length=1, max_length=500)
    cip13: str | None = Field(default=None, pattern=r"^\d{13}$")
    cip7: str | None = Field(default=None, pattern=r"^\d{7}$")
    cis: str | None = Field(default=None, pattern=r"^\d{8}$")
    substance: str | None = Field(default=None, min_length=2, max_length=200)
    posology: str | None = Field(default=None, max_length=500)
    dose_mg_per_day: float | None = Field(default=None, ge=0)
    route: str | None = Field(default=None, max_length=50)
    duration_days: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _one_identifier(self) -> LineInput:
        if not (self.text or self.cip13 or self.cip7 or self.cis or self.substance):
            raise ValueError("a line needs one of text, cip13, cip7, cis or substance")
        return self

    def display(self) -> str:
        """What the line said, for the report's ``input`` field."""
        return self.text or self.cip13 or self.cip7 or self.cis or self.substance or ""


class Prescription(_Frozen):
    date: dt.date | None = None
    patient: Patient = Patient()
    lines: tuple[LineInput, ...] = ()
