"""FHIR R4 resources in, an analysis contract prescription out.

Every input is validated with the ``fhir.resources`` R4B models (R4B is R4 plus errata for the
resources read here: Patient, MedicationRequest, MedicationStatement, Medication, Condition,
Observation, Immunization), so a malformed resource is refused with the path of the offending
element before anything is read from it. What can be read:

- Patient: ``birthDate`` -> age at the analysis date (a partial date gives the youngest age the
  patient can have: no age is claimed that may not be reached), ``gender`` -> sex.
- MedicationRequest / MedicationStatement (and a referenced or contained Medication): the first
  coding whose code the KB knows (CIS, CIP13, CIP7, or an ATC code of a single substance); else
  the concept's text or a coding's display, read as a free-text line; else the code itself, which
  then reports as an unresolved line (an unknown code is never guessed). ``dosageInstruction.text``
  (``dosage.text``) -> posology; a route the engine knows -> route; ``doseQuantity`` in mg with a
  daily ``timing.repeat`` -> mg/day. Cancelled, stopped, completed and erroneous entries are skipped, and
  so is an order not to give a drug (``doNotPerform``).
- Condition: CIM-10 codes, unless inactive, resolved, refuted or entered in error.
- Observation (LOINC, see :mod:`api.fhir.codes`): the latest value of each analyte, converted to
  the contract's unit; a value in an unknown unit is skipped, with a note.
- Immunization (completed): vaccine category from the ATC code or the vaccine's name, and date.

What was skipped or read from text is returned as notes, for the caller to see (an OperationOutcome
in the FHIR response): the engine never silently drops an input.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.dosage import Dosage
from fhir.resources.R4B.immunization import Immunization
from fhir.resources.R4B.medication import Medication
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.medicationstatement import MedicationStatement
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient as FhirPatient
from fhir.resources.R4B.resource import Resource
from pydantic import ValidationError

from api.fhir import codes
from iatro.errors import FieldError
from iatro.kb.store import KnowledgeBase
from iatro.model.prescription import Labs, LineInput, Patient, Prescription, Vaccination
from iatro.text import fold
from iatro.units import known_route

NoteLevel = Literal["information", "warning"]

_SKIPPED_REQUEST = frozenset({"cancelled", "entered-in-error", "stopped", "completed"})
_SKIPPED_STATEMENT = frozenset({"entered-in-error", "stopped", "completed", "not-taken"})
_INACTIVE_CONDITION = frozenset({"inactive", "resolved", "remission"})
_UNCONFIRMED_CONDITION = frozenset({"refuted", "entered-in-error"})
_SKIPPED_OBSERVATION = frozenset({"cancelled", "entered-in-error"})
_PER_DAY = {"d": 1.0, "h": 24.0, "min": 1440.0, "wk": 1 / 7, "mo": 1 / 30}
_MG = {"mg": 1.0, "g": 1000.0, "ug": 0.001, "mcg": 0.001}


@dataclass(frozen=True, slots=True)
class Note:
    path: str
    level: NoteLevel
    text: str


@dataclass(frozen=True, slots=True)
class Located:
    """A validated resource and where it came from in the request."""

    resource: Resource
    path: str  # "entry.3.resource", "context.draftOrders.entry.0.resource", "prefetch.patient"
    full_url: str | None = None
    draft: bool = False


@dataclass(frozen=True, slots=True)
class MedicationLine:
    """One prescription line and the resource it was read from (for DetectedIssue.implicated and for
    CDS suggestions that replace it)."""

    resource_type: str
    resource_id: str | None
    reference: str | None
    path: str
    display: str
    draft: bool
    subject: dict[str, Any] | None
    intent: str | None


@dataclass(frozen=True, slots=True)
class ClinicalInput:
    prescription: Prescription
    lines: tuple[MedicationLine, ...]
    patient_reference: str | None
    notes: tuple[Note, ...]


def field_error(exc: ValidationError, prefix: str) -> FieldError:
    """The first problem of a FHIR validation, as a FieldError with a dotted path."""
    error = exc.errors()[0]
    path = ".".join(str(part) for part in (prefix, *error["loc"]) if part != "")
    return FieldError(path or "(document)", error["msg"])


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def validate_resource(document: Any, path: str, expected: str | None = None) -> Resource:
    """A FHIR R4B resource from JSON data, or a FieldError naming the element that is wrong."""
    if not isinstance(document, dict):
        raise FieldError(path or "(document)", "expected a FHIR resource (a JSON object)")
    kind = document.get("resourceType")
    if not isinstance(kind, str) or not kind:
        raise FieldError(_join(path, "resourceType"), "missing: a FHIR resource names its resourceType")
    if expected is not None and kind != expected:
        raise FieldError(_join(path, "resourceType"), f"expected {expected}, got {kind!r}")
    _check_entry_types(document, path)
    try:
        model = get_fhir_model_class(kind)
    except ValueError:
        raise FieldError(_join(path, "resourceType"), f"{kind!r} is not a FHIR R4 resource type") from None
    try:
        resource = model.model_validate(document)
    except ValidationError as exc:
        raise field_error(exc, path) from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # The models raise these for some malformed polymorphic content; still the caller's input.
        raise FieldError(path or "(document)", f"not a valid FHIR {kind}: {exc}") from None
    if not isinstance(resource, Resource):
        raise FieldError(path or "(document)", f"{kind} is not a FHIR resource")
    return resource


def _check_entry_types(document: dict[str, Any], path: str) -> None:
    """Name an unknown resourceType inside a Bundle by its entry (the models fail without a path)."""
    entries = document.get("entry")
    if document.get("resourceType") != "Bundle" or not isinstance(entries, list):
        return
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
            continue
        kind = entry["resource"].get("resourceType")
        where = _join(path, f"entry.{i}.resource.resourceType")
        if not isinstance(kind, str):
            raise FieldError(where, "missing: a FHIR resource names its resourceType")
        try:
            get_fhir_model_class(kind)
        except ValueError:
            raise FieldError(where, f"{kind!r} is not a FHIR R4 resource type") from None


def bundle_resources(bundle: Bundle, path: str, draft: bool = False) -> list[Located]:
    out = []
    for i, entry in enumerate(bundle.entry or ()):
        if entry.resource is not None:
            out.append(Located(entry.resource, _join(path, f"entry.{i}.resource"), entry.fullUrl, draft))
    return out


class FhirReader:
    """Reads FHIR resources against one KB (to tell known codes from unknown ones). Built once."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.cis = frozenset(kb.by_cis)
        self.cip13 = frozenset(kb.by_cip13)
        self.cip7 = frozenset(kb.by_cip7)
        by_atc: dict[str, set[str]] = {}
        for s in kb.substances:
            if s.homeopathic:
                continue
            for code in s.atc:
                by_atc.setdefault(code, set()).add(s.name)
        # Only an ATC code carried by one substance names it; a combination code names none.
        self.substance_by_atc = {code: next(iter(names)) for code, names in by_atc.items() if len(names) == 1}

    def read(self, located: Sequence[Located], date: dt.date | None = None) -> ClinicalInput:
        return _Reading(self, located, date or dt.date.today()).result()


class _Reading:
    """One request's reading: state shared by the resource handlers, then the prescription."""

    def __init__(self, reader: FhirReader, located: Sequence[Located], date: dt.date) -> None:
        self.reader = reader
        self.date = date
        self.notes: list[Note] = []
        self.lines: list[tuple[LineInput, MedicationLine]] = []
        self.patient: dict[str, Any] = {}
        self.patient_reference: str | None = None
        self.conditions: list[str] = []
        self.observations: dict[str, tuple[tuple[float, int], float, str]] = {}
        self.vaccinations: list[Vaccination] = []
        self.medications: dict[str, Medication] = {}
        for item in located:
            if isinstance(item.resource, Medication):
                for key in _references_to(item):
                    self.medications[key] = item.resource
        patient_seen: str | None = None
        for order, item in enumerate(located):
            resource = item.resource
            if isinstance(resource, FhirPatient):
                if patient_seen is not None:
                    raise FieldError(
                        item.path, f"a second Patient (the first is {patient_seen}): one patient per call"
                    )
                patient_seen = item.path
                self._patient(resource, item)
            elif isinstance(resource, MedicationRequest | MedicationStatement):
                self._medication(resource, item)
            elif isinstance(resource, Condition):
                self._condition(resource, item)
            elif isinstance(resource, Observation):
                self._observation(resource, item, order)
            elif isinstance(resource, Immunization):
                self._immunization(resource, item)
            elif not isinstance(resource, Medication):
                self.note(
                    item.path, "information", f"{resource.get_resource_type()} is not read by the analysis"
                )

    def note(self, path: str, level: NoteLevel, text: str) -> None:
        self.notes.append(Note(path, level, text))

    # -- resources ----------------------------------------------------------------------------
    def _patient(self, patient: FhirPatient, item: Located) -> None:
        self.patient_reference = _reference_of(item)
        if patient.birthDate is not None:
            age = _age(patient.birthDate, self.date)
            if age is None or not 0 <= age <= 130:
                raise FieldError(f"{item.path}.birthDate", f"gives an age of {age} at {self.date}")
            self.patient["age"] = age
        if patient.gender in ("female", "male"):
            self.patient["sex"] = "F" if patient.gender == "female" else "M"

    def _medication(self, resource: MedicationRequest | MedicationStatement, item: Located) -> None:
        is_request = isinstance(resource, MedicationRequest)
        skipped = _SKIPPED_REQUEST if is_request else _SKIPPED_STATEMENT
        if resource.status in skipped:
            self.note(
                item.path, "information", f"status {resource.status}: not part of the current treatment"
            )
            return
        if isinstance(resource, MedicationRequest) and resource.doNotPerform:
            self.note(item.path, "information", "doNotPerform: an order not to give this drug")
            return
        concept = resource.medicationCodeableConcept
        concept_path = f"{item.path}.medicationCodeableConcept"
        if concept is None and resource.medicationReference is not None:
            reference = resource.medicationReference.reference or ""
            medication = self.medications.get(reference)
            if medication is None and reference.startswith("#"):
                medication = next(
                    (
                        c
                        for c in resource.contained or ()
                        if isinstance(c, Medication) and c.id == reference[1:]
                    ),
                    None,
                )
            concept_path = f"{item.path}.medicationReference"
            if medication is not None and medication.code is not None:
                concept = medication.code
            else:
                # A Medication the request does not carry: its display, if any, is what the line
                # says; otherwise the line is reported unresolved (never dropped, never guessed).
                shown = (resource.medicationReference.display or "").strip()
                self.note(
                    concept_path,
                    "warning",
                    f"{reference or 'the reference'}: no coded Medication in the request",
                )
                concept = CodeableConcept(text=shown or f"{reference or 'Medication'} (not in the request)")
        if concept is None:
            raise FieldError(f"{item.path}.medication[x]", "a medication is needed")
        fields, display = self._drug(concept, concept_path)
        dosages: Sequence[Dosage] = (
            resource.dosageInstruction if isinstance(resource, MedicationRequest) else resource.dosage
        ) or ()
        dosage_path = f"{item.path}.{'dosageInstruction' if is_request else 'dosage'}.0"
        if dosages:
            fields.update(self._dosage(dosages[0], dosage_path))
        try:
            line = LineInput(**fields)
        except ValidationError as exc:
            raise field_error(exc, concept_path) from None
        subject = resource.subject.model_dump(mode="json", exclude_none=True) if resource.subject else None
        self.lines.append(
            (
                line,
                MedicationLine(
                    resource_type=resource.get_resource_type(),
                    resource_id=resource.id,
                    reference=_reference_of(item),
                    path=item.path,
                    display=display,
                    draft=item.draft,
                    subject=subject,
                    intent=resource.intent if isinstance(resource, MedicationRequest) else None,
                ),
            )
        )

    def _drug(self, concept: CodeableConcept, path: str) -> tuple[dict[str, Any], str]:
        """Contract line fields from a coded or textual concept, and what the line says."""
        text = (concept.text or "").strip()
        displays = [c.display.strip() for c in concept.coding or () if c.display and c.display.strip()]
        shown = text or (displays[0] if displays else "")
        unknown: list[tuple[str, str]] = []
        for coding in concept.coding or ():
            system, value = codes.normalise_system(coding.system), (coding.code or "").strip()
            if not value:
                continue
            found = self._known_code(system, value)
            if found is not None:
                return found, shown or value
            unknown.append((system, value))
        listed = ", ".join(f"{value} ({system or 'no system'})" for system, value in unknown)
        if shown:
            if unknown:
                self.note(path, "information", f"code {listed} not in the KB: the line is read from its text")
            return {"text": shown[:500]}, shown
        if unknown:
            # Only codes, none known: the line goes on as its first code so that the report says it
            # is unresolved, and why, rather than guessing (the contract's rule for unknown codes).
            system, value = unknown[0]
            self.note(
                path, "warning", f"code {listed} not in the KB and no text: the line cannot be analysed"
            )
            return self._code_fields(system, value), value
        raise FieldError(path, "neither a code, a text nor a display: nothing says which drug this is")

    def _known_code(self, system: str, value: str) -> dict[str, Any] | None:
        reader = self.reader
        if system in codes.CIS_SYSTEMS and len(value) == 8 and value in reader.cis:
            return {"cis": value}
        if system in codes.CIP_SYSTEMS:
            if len(value) == 13 and value in reader.cip13:
                return {"cip13": value}
            if len(value) == 7 and value in reader.cip7:
                return {"cip7": value}
        if system in codes.ATC_SYSTEMS and value.upper() in reader.substance_by_atc:
            return {"substance": reader.substance_by_atc[value.upper()]}
        return None

    @staticmethod
    def _code_fields(system: str, value: str) -> dict[str, Any]:
        """An unknown code as the contract field of its kind, so the report names the code system."""
        if value.isdigit():
            if system in codes.CIS_SYSTEMS and len(value) == 8:
                return {"cis": value}
            if system in codes.CIP_SYSTEMS - {codes.SMT_CIP_UCD} and len(value) in (7, 13):
                return {"cip7" if len(value) == 7 else "cip13": value}
        return {"text": f"{value} ({system or 'no system'})"[:500]}

    def _dosage(self, dosage: Dosage, path: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if dosage.text and dosage.text.strip():
            out["posology"] = dosage.text.strip()[:500]
        if dosage.route is not None:
            words = [dosage.route.text or ""] + [c.display or "" for c in dosage.route.coding or ()]
            route = next((r for r in (_route(w) for w in words if w) if r), None)
            if route is not None:
                out["route"] = route
            else:
                self.note(
                    f"{path}.route", "information", "route not recognised: the line's route is left open"
                )
        per_day = _mg_per_day(dosage)
        if per_day is not None:
            out["dose_mg_per_day"] = per_day
        return out

    def _condition(self, condition: Condition, item: Located) -> None:
        clinical = (
            {c.code for c in (condition.clinicalStatus.coding or ())} if condition.clinicalStatus else set()
        )
        verification = (
            {c.code for c in (condition.verificationStatus.coding or ())}
            if condition.verificationStatus
            else set()
        )
        if clinical & _INACTIVE_CONDITION or verification & _UNCONFIRMED_CONDITION:
            self.note(item.path, "information", "inactive or unconfirmed condition: not used")
            return
        found = False
        for j, coding in enumerate(condition.code.coding or () if condition.code else ()):
            if codes.normalise_system(coding.system) not in codes.ICD10_SYSTEMS or not coding.code:
                continue
            try:
                (code,) = Patient(conditions=(coding.code,)).conditions
            except ValidationError as exc:
                raise FieldError(f"{item.path}.code.coding.{j}.code", exc.errors()[0]["msg"]) from None
            self.conditions.append(code)
            found = True
        if not found:
            self.note(item.path, "warning", "no CIM-10 (ICD-10) coding: the condition is not used")

    def _observation(self, observation: Observation, item: Located, order: int) -> None:
        if observation.status in _SKIPPED_OBSERVATION:
            return
        loinc = [
            c.code
            for c in (observation.code.coding or ())
            if codes.normalise_system(c.system) == codes.LOINC_SYSTEM and c.code in codes.LOINC
        ]
        if not loinc:
            self.note(item.path, "information", "not a LOINC code the analysis reads")
            return
        analyte = codes.LOINC[loinc[0]]
        quantity = observation.valueQuantity
        if quantity is None or quantity.value is None:
            self.note(item.path, "warning", f"{analyte.label}: no valueQuantity, not used")
            return
        unit = codes.fold_unit(quantity.code or quantity.unit or "")
        factor = analyte.units.get(unit)
        if factor is None:
            self.note(
                f"{item.path}.valueQuantity",
                "warning",
                f"{analyte.label}: unit {unit or '(none)'!r} not convertible, not used",
            )
            return
        value = round(float(quantity.value) * factor, 3)
        when = _when(observation)
        previous = self.observations.get(analyte.field)
        if previous is None or (when, order) >= previous[0]:
            self.observations[analyte.field] = ((when, order), value, f"{item.path}.valueQuantity.value")

    def _immunization(self, immunization: Immunization, item: Located) -> None:
        if immunization.status != "completed":
            return
        vaccine = _vaccine(immunization.vaccineCode)
        when = immunization.occurrenceDateTime
        if vaccine is None or when is None:
            self.note(item.path, "information", "vaccine or date not recognised: not used")
            return
        date = when.date() if isinstance(when, dt.datetime) else when if isinstance(when, dt.date) else None
        if date is None:
            self.note(item.path, "information", "partial vaccination date: not used")
            return
        self.vaccinations.append(Vaccination(vaccine=vaccine, date=date))

    # -- result -------------------------------------------------------------------------------
    def result(self) -> ClinicalInput:
        labs: dict[str, float] = {}
        patient: dict[str, Any] = dict(self.patient)
        paths: dict[str, str] = {}
        for name, (_, value, path) in self.observations.items():
            paths[name] = path
            if name.startswith("labs."):
                labs[name.removeprefix("labs.")] = value
            else:
                patient[name] = value
        try:
            built = Patient(
                **patient,
                labs=Labs(**labs),
                conditions=tuple(dict.fromkeys(self.conditions)),
                vaccinations=tuple(self.vaccinations),
            )
        except ValidationError as exc:
            loc = [str(p) for p in exc.errors()[0]["loc"]]
            name = ".".join(loc)
            raise FieldError(
                paths.get(name, paths.get(f"labs.{name}", "(bundle)")), exc.errors()[0]["msg"]
            ) from None
        prescription = Prescription(
            date=self.date, patient=built, lines=tuple(line for line, _ in self.lines)
        )
        return ClinicalInput(
            prescription=prescription,
            lines=tuple(source for _, source in self.lines),
            patient_reference=self.patient_reference,
            notes=tuple(self.notes),
        )


def _reference_of(item: Located) -> str | None:
    resource = item.resource
    if resource.id:
        return f"{resource.get_resource_type()}/{resource.id}"
    return item.full_url


def _references_to(item: Located) -> Iterable[str]:
    if item.resource.id:
        yield f"{item.resource.get_resource_type()}/{item.resource.id}"
    if item.full_url:
        yield item.full_url


def _age(birth: dt.date | str, on: dt.date) -> int | None:
    if isinstance(birth, dt.date):
        return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
    match = re.fullmatch(r"(\d{4})(?:-(\d{2}))?", str(birth))
    if not match:
        return None
    year, month = int(match[1]), int(match[2]) if match[2] else None
    if month is None:
        return on.year - year - 1  # born at the latest on 31 December of that year
    return on.year - year - (on.month <= month)  # born at the latest on the last day of that month


def _route(text: str) -> str | None:
    folded = fold(text)
    for candidate in (
        folded,
        folded.removeprefix("voie "),
        folded.removesuffix(" use"),
        folded.split(" ")[0],
    ):
        route = known_route(candidate)
        if route is not None:
            return candidate
    return None


def _mg_per_day(dosage: Dosage) -> float | None:
    """mg/day from a structured dose and a daily timing, when both are fully given."""
    if not dosage.doseAndRate or dosage.timing is None or dosage.timing.repeat is None:
        return None
    quantity = dosage.doseAndRate[0].doseQuantity
    if quantity is None or quantity.value is None:
        return None
    factor = _MG.get(codes.fold_unit(quantity.code or quantity.unit or ""))
    repeat = dosage.timing.repeat
    per_unit = _PER_DAY.get(repeat.periodUnit or "")
    if factor is None or per_unit is None or not repeat.period:
        return None
    per_day = float(quantity.value) * factor * (repeat.frequency or 1) / float(repeat.period) * per_unit
    return round(per_day, 3)


def _when(observation: Observation) -> float:
    """A sortable time for "latest": effective[x] or issued; undated values count as oldest."""
    value: Any = observation.effectiveDateTime or observation.issued
    if value is None and observation.effectivePeriod is not None:
        value = observation.effectivePeriod.end or observation.effectivePeriod.start
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp()
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC).timestamp()
    return float("-inf")


def _vaccine(concept: CodeableConcept | None) -> str | None:
    if concept is None:
        return None
    for coding in concept.coding or ():
        if codes.normalise_system(coding.system) in codes.ATC_SYSTEMS and coding.code:
            code = coding.code.upper()
            for prefix in sorted(codes.VACCINE_ATC, key=len, reverse=True):
                if code.startswith(prefix):
                    return codes.VACCINE_ATC[prefix]
    words = fold(" ".join([concept.text or "", *(c.display or "" for c in concept.coding or ())]))
    return next((vaccine for word, vaccine in codes.VACCINE_WORDS if word in words), None)
