"""A prescription typed or pasted into a web form, turned into the contract's :class:`Prescription`.

Two ways in, one textarea: the lines of an ordonnance, one per line (a line of 13 digits is a CIP13, of
8 digits a CIS, anything else free text as written), with the patient's fields beside it; or the
contract's JSON document pasted whole (it starts with ``{``), the patient fields then ignored.

Errors are :class:`FieldError` naming the form field (``age``, ``lines.2.cip13``...), never a 500: the
page shows the message beside the form and keeps what was typed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson
from pydantic import ValidationError

from iatro.errors import FieldError
from iatro.model.prescription import Prescription

_CIP13 = re.compile(r"^\d{13}$")
_CIS = re.compile(r"^\d{8}$")


def _line(text: str) -> dict[str, str]:
    compact = text.replace(" ", "")
    if _CIP13.match(compact):
        return {"cip13": compact}
    if _CIS.match(compact):
        return {"cis": compact}
    return {"text": text}


def _number(form: Mapping[str, str], name: str, kind: type[int] | type[float]) -> int | float | None:
    raw = form.get(name, "").strip().replace(",", ".")
    if not raw:
        return None
    try:
        return kind(raw)
    except ValueError:
        raise FieldError(name, f"{raw!r} n'est pas un nombre") from None


def _validated(document: Any) -> Prescription:
    try:
        return Prescription.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first.get("loc", ())) or "(document)"
        raise FieldError(field, str(first.get("msg", "invalide"))) from None


def prescription_document(form: Mapping[str, str]) -> dict[str, Any]:
    """The contract's input document from the form (before validation)."""
    text = form.get("lines", "").strip()
    if text.startswith("{"):
        try:
            pasted = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise FieldError("lines", f"JSON invalide : {exc}") from None
        if not isinstance(pasted, dict):
            raise FieldError("lines", "le document JSON doit être un objet")
        return pasted
    lines = [_line(raw.strip()) for raw in text.splitlines() if raw.strip()]
    if not lines:
        raise FieldError("lines", "aucune ligne d'ordonnance")
    patient: dict[str, Any] = {}
    for name, kind in (("age", int), ("weight_kg", float), ("creatinine_umol_l", float)):
        value = _number(form, name, kind)
        if value is not None:
            patient[name] = value
    sex = form.get("sex", "").strip().upper()
    if sex:
        patient["sex"] = sex
    conditions = [c.strip() for c in re.split(r"[,;\s]+", form.get("conditions", "")) if c.strip()]
    if conditions:
        patient["conditions"] = conditions
    built: dict[str, Any] = {"patient": patient, "lines": lines}
    if form.get("date", "").strip():
        built["date"] = form["date"].strip()
    return built


def parse_prescription(form: Mapping[str, str]) -> Prescription:
    """The validated prescription, or :class:`FieldError` naming the field at fault."""
    return _validated(prescription_document(form))


def form_field(field: str) -> str:
    """The form input a contract path belongs to: ``patient.age`` → ``age``, ``lines.2.cip13`` → ``lines``."""
    if field.startswith("patient."):
        return field.split(".")[1]
    if field.startswith("lines"):
        return "lines"
    return field
