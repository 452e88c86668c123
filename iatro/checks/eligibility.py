"""Eligibility for the French medication-review pathways: Iatroprev / Optimedoc and the bilan partagé
de médication (BPM).

Every answer is three-valued: ``True``, ``False`` or ``None`` when an input that would decide it is
missing (reported in ``missing_inputs`` with the reasons). The programme rules are the tables
below; each cites where it was read and says what is assumed.

Iatroprev / Optimedoc. Two doors, computed the same way for both programmes (the programme
documents were not available; Optimedoc is treated as using the Iatroprev doors):

- *town door*: age >= 75 and >= 10 drug lines. geroscopie.fr (APM News, 2025) reports the programme
  "désormais ouvert en ville à toute personne de plus de 75 ans et prenant plus de 10 médicaments";
  "plus de" is read inclusively, as the project brief states the door. Lines are counted, resolved
  or not (an unresolved line is still a drug the patient takes).
- *hospital door*, only when the input carries hospital context: an admission related to iatrogeny,
  a narrow-therapeutic-index drug (``narrow_therapeutic_index.yaml``), or more than 3 treatment
  changes during the stay. These criteria are the project brief's; the cahier des charges was not in
  the stored sources. No age condition is added to them (an earlier assumption of age >= 75 had no
  source; the golden reports cite the programme's own 65+ hospital population).

BPM. The pharmacists' convention sets the population; its wording changed over time, so the rule is
an edition of :data:`BPM_RULES` (default: the current one):

- ``convention-2022`` (default): age >= 65 and >= 5 molecules prescribed for >= 6 consecutive months
  (pharmaprat.fr, page updated for 2026).
- ``avenant-12-2018``: age >= 65 with an ALD, or age >= 75, and in both cases >= 5 molecules for >= 6
  months (arrêté du 9 mars 2018 approving avenant 12, as reported by syndicat-infirmier.com).
- ``brief-2018-reading``: age >= 65 with an ALD, or age >= 75 with >= 5 chronic molecules — the project
  brief's reading of avenant 12 (also gerontofficine.com's wording).

"Chronic": a duration >= 180 days (the posology parser counts a month as 30 days). A line without
duration is not assumed long-term: when it could change the answer, the answer is ``None`` and the
duration is listed in the missing inputs. Lines with a shorter duration are not counted either, but
when counting them would change the answer the answer is ``None`` too — a renewable "QSP 3 mois"
line is a long-term treatment the input does not mark as such.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from iatro.checks.context import CheckContext, Exposure
from iatro.checks.result import CheckResult, compiled_table, read_table, substance_ids
from iatro.kb.store import KnowledgeBase

TABLE = "narrow_therapeutic_index.yaml"
CHRONIC_DAYS = 180  # 6 months as the posology parser counts them (30-day months)

Truth = bool | None


# -- programme rules --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TownDoor:
    age_min: int
    min_drug_lines: int
    source: str


@dataclass(frozen=True, slots=True)
class HospitalDoor:
    more_than_treatment_changes: int
    source: str
    assumption: str


@dataclass(frozen=True, slots=True)
class BpmAlternative:
    age_min: int
    requires_ald: bool
    min_chronic_molecules: int | None  # None: no molecule count in this alternative


@dataclass(frozen=True, slots=True)
class BpmRule:
    edition: str
    alternatives: tuple[BpmAlternative, ...]
    source: str


TOWN_DOOR = TownDoor(
    age_min=75,
    min_drug_lines=10,
    source=(
        "Iatroprev (article 51, CHU Lille / Amiens): town door 'personne de plus de 75 ans et prenant plus "
        "de 10 médicaments' — https://www.geroscopie.fr/un-nouveau-cahier-des-charges-pour-l-experimentation"
        "-iatroprev-idm-27-ids-32861"
    ),
)
HOSPITAL_DOOR = HospitalDoor(
    more_than_treatment_changes=3,
    source=(
        "Iatro project brief (Iatroprev hospital door: iatrogenic admission, narrow-therapeutic-index drug, "
        "> 3 treatment changes); the programme's cahier des charges is not in the stored sources"
    ),
    assumption="no age condition at the hospital door: the brief defines the door by these criteria only",
)
BPM_RULES: dict[str, BpmRule] = {
    "convention-2022": BpmRule(
        "convention-2022",
        (BpmAlternative(65, False, 5),),
        "Bilan partagé de médication, patients concernés (convention pharmaceutique en vigueur) — "
        "https://pharmaprat.fr/?p=79",
    ),
    "avenant-12-2018": BpmRule(
        "avenant-12-2018",
        (BpmAlternative(65, True, 5), BpmAlternative(75, False, 5)),
        "Arrêté du 9 mars 2018 portant approbation de l'avenant 12 à la convention pharmaceutique — "
        "http://www.syndicat-infirmier.com/Bilan-de-medication-du-pharmacien.html",
    ),
    "brief-2018-reading": BpmRule(
        "brief-2018-reading",
        (BpmAlternative(65, True, None), BpmAlternative(75, False, 5)),
        "Iatro project brief; same reading in https://gerontofficine.com/bilans-de-medication-14-pharmacien"
        "-va-recolter-informations-patient-age/",
    ),
}
DEFAULT_BPM = "convention-2022"


# -- narrow-therapeutic-index table -------------------------------------------------------------------


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NtiSource(_Frozen):
    citation: str
    edition: str
    read_at: tuple[str, ...] = ()


class NtiEntry(_Frozen):
    id: str
    names: tuple[str, ...] = ()
    atc_prefixes: tuple[str, ...] = ()
    label: str | None = None
    sources: tuple[str, ...] = Field(min_length=1)
    excluded_routes: tuple[str, ...] = ()


class NotIncluded(_Frozen):
    what: str
    why: str


class NtiTable(_Frozen):
    schema_version: int = Field(alias="schema")
    sources: dict[str, NtiSource]
    entries: tuple[NtiEntry, ...]
    not_included: tuple[NotIncluded, ...] = ()

    @model_validator(mode="after")
    def _cited(self) -> NtiTable:
        for entry in self.entries:
            if not entry.names and not entry.atc_prefixes:
                raise ValueError(f"{entry.id}: an entry needs names or atc_prefixes")
            unknown = [s for s in entry.sources if s not in self.sources]
            if unknown:
                raise ValueError(f"{entry.id}: sources {unknown} are not defined")
        return self


def load_nti_table(path: Path) -> NtiTable:
    return read_table(path, NtiTable)


# -- three-valued helpers -----------------------------------------------------------------------------


def all_true(*values: Truth) -> Truth:
    """Three-valued AND: False wins, then unknown (None)."""
    if any(v is False for v in values):
        return False
    return None if any(v is None for v in values) else True


def any_true(*values: Truth) -> Truth:
    """Three-valued OR: True wins, then unknown (None)."""
    if any(v is True for v in values):
        return True
    return None if any(v is None for v in values) else False


def _at_least(age: int | None, minimum: int) -> Truth:
    return None if age is None else age >= minimum


@dataclass(frozen=True, slots=True)
class _Molecules:
    counted: int  # a duration >= 6 months is given
    without_duration: tuple[str, ...]  # no duration given: could be long-term, not assumed to be
    short: tuple[str, ...]  # only shorter durations given
    unresolved: int


class EligibilityCheck:
    def __init__(
        self, kb: KnowledgeBase, table: NtiTable | None = None, bpm_edition: str = DEFAULT_BPM
    ) -> None:
        self.table = table or load_nti_table(compiled_table(kb, TABLE))
        if bpm_edition not in BPM_RULES:
            raise ValueError(f"unknown BPM rule edition {bpm_edition!r} (known: {sorted(BPM_RULES)})")
        self.bpm = BPM_RULES[bpm_edition]
        self._entry_ids: dict[str, frozenset[int]] = {}
        for entry in self.table.entries:
            self._entry_ids[entry.id] = substance_ids(kb, entry.names, f"{TABLE}: {entry.id}")
        self._atc = {s.id: s.atc for s in kb.substances}
        # What ``_nti`` reads of an exposure -> its answer, computed once per combination.
        self._nti_cache: dict[tuple[int, tuple[str, ...], str | None], tuple[NtiEntry, Truth] | None] = {}

    # -- narrow-therapeutic-index drugs -----------------------------------------------------------

    def _nti(self, exposure: Exposure) -> tuple[NtiEntry, Truth] | None:
        """The NTI entry an exposure meets: True, or None when its unknown route could exclude it."""
        key = (exposure.substance_id, exposure.atc, exposure.route)
        try:
            return self._nti_cache[key]
        except KeyError:
            found = self._nti_cache[key] = self._nti_of(exposure)
            return found

    def _nti_of(self, exposure: Exposure) -> tuple[NtiEntry, Truth] | None:
        for entry in self.table.entries:
            by_name = exposure.substance_id in self._entry_ids[entry.id]
            codes = (*exposure.atc, *self._atc.get(exposure.substance_id, ()))
            by_atc = bool(entry.atc_prefixes) and any(c.startswith(entry.atc_prefixes) for c in codes)
            if not (by_name or by_atc):
                continue
            if exposure.route in entry.excluded_routes:
                continue
            if exposure.route is None and entry.excluded_routes:
                return entry, None
            return entry, True
        return None

    def nti_drugs(self, ctx: CheckContext) -> tuple[list[dict[str, object]], list[Exposure]]:
        sure: list[dict[str, object]] = []
        unsure: list[Exposure] = []
        for exposure in ctx.exposures:
            found = self._nti(exposure)
            if found is None:
                continue
            entry, truth = found
            if truth is None:
                unsure.append(exposure)
            else:
                sure.append(
                    {
                        "name": exposure.name,
                        "line": exposure.line,
                        "entry": entry.id,
                        "sources": list(entry.sources),
                    }
                )
        return sure, unsure

    # -- run ------------------------------------------------------------------------------------------

    def run(self, ctx: CheckContext) -> CheckResult:
        # Each part returns the inputs that would settle it; they are reported only when the
        # programme's answer is undecided, so that an input that could not change it is not asked.
        town, town_reasons, town_missing = self._town(ctx)
        hospital, hospital_reasons, hospital_missing, nti = self._hospital(ctx)
        iatroprev = any_true(town, hospital)
        bpm, bpm_reasons, bpm_missing = self._bpm(ctx)
        missing: list[str] = []
        if iatroprev is None:
            missing += (town_missing if town is None else []) + (hospital_missing if hospital is None else [])
        if bpm is None:
            missing += bpm_missing
        missing = list(dict.fromkeys(missing))
        programme_reasons = [*town_reasons, *hospital_reasons]
        eligibility: dict[str, object] = {
            "iatroprev": iatroprev,
            "optimedoc": iatroprev,
            "bilan_partage_medication": bpm,
            "reasons": {
                "iatroprev": programme_reasons,
                "optimedoc": [*programme_reasons, "Optimedoc assessed with the Iatroprev doors"],
                "bilan_partage_medication": bpm_reasons,
            },
            "doors": {"town": town, "hospital": hospital},
            "nti_drugs": nti,
            "bpm_rule": self.bpm.edition,
            "sources": {
                "town_door": TOWN_DOOR.source,
                "hospital_door": HOSPITAL_DOOR.source,
                "bilan_partage_medication": self.bpm.source,
            },
            "missing_inputs": missing,
        }
        return CheckResult(eligibility=eligibility, missing_inputs=tuple(missing))

    def _town(self, ctx: CheckContext) -> tuple[Truth, list[str], list[str]]:
        lines = len({e.line for e in ctx.exposures} | set(ctx.unresolved_lines))
        age = ctx.patient.age
        result = all_true(_at_least(age, TOWN_DOOR.age_min), lines >= TOWN_DOOR.min_drug_lines)
        age_text = "age unknown" if age is None else f"age {age}"
        reason = (
            f"town door {_word(result)}: {age_text} (>= {TOWN_DOOR.age_min} needed), "
            f"{lines} drug line(s) (>= {TOWN_DOOR.min_drug_lines} needed)"
        )
        return result, [reason], ["age"] if age is None else []

    def _hospital(self, ctx: CheckContext) -> tuple[Truth, list[str], list[str], list[dict[str, object]]]:
        hospital = ctx.patient.hospital
        nti, unsure = self.nti_drugs(ctx)
        if hospital.iatrogenic_admission is None and hospital.treatment_changes is None:
            return False, ["hospital door not assessed: no hospital context in the input"], [], nti
        missing: list[str] = []
        reasons: list[str] = []
        if hospital.iatrogenic_admission is None:
            missing.append("hospital.iatrogenic_admission")
        elif hospital.iatrogenic_admission:
            reasons.append("admission related to iatrogeny")
        has_nti: Truth = True if nti else (None if unsure or ctx.unresolved_lines else False)
        if nti:
            reasons.append(
                "narrow-therapeutic-index drug(s): " + ", ".join(sorted({str(d["name"]) for d in nti}))
            )
        elif has_nti is None:
            missing.extend(f"line {e.line} ({e.name}): route" for e in unsure)
            if ctx.unresolved_lines:
                listed = ", ".join(str(i) for i in ctx.unresolved_lines)
                missing.append(f"unresolved line(s) {listed}: could be a narrow-therapeutic-index drug")
        changes = hospital.treatment_changes
        many: Truth = None if changes is None else changes > HOSPITAL_DOOR.more_than_treatment_changes
        if changes is None:
            missing.append("hospital.treatment_changes")
        elif many:
            reasons.append(f"{changes} treatment changes (> {HOSPITAL_DOOR.more_than_treatment_changes})")
        result = any_true(hospital.iatrogenic_admission, has_nti, many)
        detail = "; ".join(reasons) if reasons else "no criterion met"
        return result, [f"hospital door {_word(result)}: {detail}; {HOSPITAL_DOOR.assumption}"], missing, nti

    def _molecules(self, ctx: CheckContext) -> _Molecules:
        chronic: dict[int, str] = {}
        no_duration: dict[int, str] = {}
        short: dict[int, str] = {}
        for e in ctx.exposures:
            if e.duration_days is None:
                no_duration[e.substance_id] = e.name
            elif e.duration_days >= CHRONIC_DAYS:
                chronic[e.substance_id] = e.name
            else:
                short[e.substance_id] = e.name
        for sid in chronic:
            short.pop(sid, None)
            no_duration.pop(sid, None)
        for sid in no_duration:
            short.pop(sid, None)
        return _Molecules(
            len(chronic),
            tuple(sorted(no_duration.values())),
            tuple(sorted(short.values())),
            len(ctx.unresolved_lines),
        )

    def _bpm(self, ctx: CheckContext) -> tuple[Truth, list[str], list[str]]:
        patient = ctx.patient
        molecules = self._molecules(ctx)
        results: list[Truth] = []
        reasons: list[str] = []
        missing: list[str] = []
        for alt in self.bpm.alternatives:
            parts: list[Truth] = [_at_least(patient.age, alt.age_min)]
            text = [f"age >= {alt.age_min}"]
            if patient.age is None:
                missing.append("age")
            if alt.requires_ald:
                parts.append(patient.long_term_condition)
                text.append("ALD")
                if patient.long_term_condition is None:
                    missing.append("long_term_condition")
            if alt.min_chronic_molecules is not None:
                parts.append(self._enough(molecules, alt.min_chronic_molecules, missing))
                text.append(f">= {alt.min_chronic_molecules} molecules for >= 6 months")
            result = all_true(*parts)
            results.append(result)
            reasons.append(f"{' and '.join(text)}: {_word(result)}")
        summary = f"{molecules.counted} molecule(s) with a duration >= 6 months"
        if molecules.without_duration:
            summary += f"; without duration (not assumed long-term): {', '.join(molecules.without_duration)}"
        if molecules.short:
            summary += f"; not counted (duration < 6 months): {', '.join(molecules.short)}"
        reasons += [summary, f"rule {self.bpm.edition}"]
        return any_true(*results), reasons, missing

    @staticmethod
    def _enough(molecules: _Molecules, needed: int, missing: list[str]) -> Truth:
        if molecules.counted >= needed:
            return True
        undecided = len(molecules.without_duration) + len(molecules.short) + molecules.unresolved
        if molecules.counted + undecided < needed:
            return False
        if molecules.without_duration:
            # The BPM counts molecules taken for >= 6 consecutive months: a missing duration is asked
            # for, not assumed (a check says what it lacks rather than guess).
            missing.append(f"duration_days of {', '.join(molecules.without_duration)} (taken >= 6 months?)")
        if molecules.short:
            missing.append(
                f"whether {', '.join(molecules.short)} are long-term treatments (duration < 6 months given)"
            )
        if molecules.unresolved:
            missing.append(f"{molecules.unresolved} unresolved line(s): molecules unknown")
        return None


def _word(value: Truth) -> str:
    return {True: "met", False: "not met", None: "undecided"}[value]
