"""From resolved lines to the exposures the checks read: one per (line, active substance).

Doses are per substance: a combination product's posology is converted with each component's own
strength, and only when the posology counts the unit the strength refers to ("un comprimé").
"""

from __future__ import annotations

from iatro.checks.context import Exposure
from iatro.kb.store import KnowledgeBase
from iatro.model.prescription import LineInput
from iatro.model.report import LineReport, Posology
from iatro.units import dosing_unit, normalise_route

_MEMO_SIZE = 100_000


def _intakes(posology: Posology | None) -> float | None:
    if posology is None:
        return None
    # The maximum an as-needed line allows is the exposure dose-dependent rules must consider.
    return posology.max_intakes_per_day or posology.intakes_per_day


# Every field of an Exposure but those read from the KB by substance id (name, aliases).
ExposureKey = tuple[
    int, int, tuple[str, ...], str | None, float | None, float | None, float | None, bool, int | None
]


def build_exposures(
    kb: KnowledgeBase,
    reports: tuple[LineReport, ...],
    inputs: tuple[LineInput, ...],
    memo: dict[ExposureKey, Exposure] | None = None,
) -> tuple[Exposure, ...]:
    """``memo`` (owned by the caller, e.g. the engine) shares equal exposures between prescriptions:
    an exposure is immutable, and reusing one costs a fifth of building it."""
    out: list[Exposure] = []
    for report, line in zip(reports, inputs, strict=True):
        if report.status != "resolved":
            continue
        product = kb.by_cis.get(report.product.cis) if report.product else None
        posology = report.posology
        intakes = _intakes(posology)
        route = normalise_route(line.route) or normalise_route(report.route)
        duration = (posology.duration_days if posology else None) or line.duration_days
        single = len(report.substance_ids) == 1
        for k, substance_id in enumerate(report.substance_ids):
            mg_day: float | None = None
            mg_intake: float | None = None
            if single and posology is not None:
                mg_day = posology.mg_per_day
                if posology.unit == "mg" and posology.dose_per_intake is not None:
                    mg_intake = posology.dose_per_intake
                elif mg_day is not None and intakes:
                    mg_intake = mg_day / intakes
            elif product is not None and posology is not None and k < len(product.components):
                component = product.components[k]
                unit = dosing_unit(component.reference)
                if (
                    component.mg is not None
                    and unit is not None
                    and unit == posology.unit
                    and posology.dose_per_intake is not None
                ):
                    mg_intake = component.mg * posology.dose_per_intake
                    mg_day = mg_intake * intakes if intakes else None
            sub_ref = report.substances[k] if k < len(report.substances) else None
            atc = (sub_ref.atc,) if sub_ref and sub_ref.atc else kb.substances[substance_id].atc[:1]
            per_day = posology.intakes_per_day if posology else None
            as_needed = posology.as_needed if posology else False
            key = (report.index, substance_id, atc, route, mg_intake, mg_day, per_day, as_needed, duration)
            exposure = memo.get(key) if memo is not None else None
            if exposure is None:
                exposure = Exposure(
                    line=report.index,
                    substance_id=substance_id,
                    name=kb.substances[substance_id].name,
                    atc=atc,
                    route=route,
                    mg_per_intake=mg_intake,
                    mg_per_day=mg_day,
                    intakes_per_day=per_day,
                    as_needed=as_needed,
                    duration_days=duration,
                    aliases=kb.substances[substance_id].ansm,
                )
                if memo is not None:
                    if len(memo) >= _MEMO_SIZE:
                        memo.clear()
                    memo[key] = exposure
            out.append(exposure)
    return tuple(out)
