"""Code systems and codes the FHIR and CDS Hooks adapters read and write.

French drug codes. The ANS publishes its terminologies on the SMT (smt.esante.gouv.fr) with FHIR
canonical URLs, and the CI-SIS documents the older OIDs; both are in use, so both are read:

- CIS (spécialité, 8 digits): ``https://smt.esante.gouv.fr/terminologie-bdpm`` (ANS "BDPM"
  terminology: value sets of the ANS IGs use it for the CIS "entité de spécialité" and for CIP
  presentations, so within it a code is told apart by its length), ``urn:oid:1.2.250.1.213.2.3.1``
  (CI-SIS OID of the CIS), and ``https://smt.esante.gouv.fr/terminologie-cis`` (seen in requests,
  not found in an ANS publication: read, never written).
- CIP (présentation, 13 or 7 digits): the BDPM terminology above, ``urn:oid:1.2.250.1.213.2.3.2``
  (CI-SIS OID of the CIP) and ``https://smt.esante.gouv.fr/terminologie-cip_ucd`` (ANS CIP/UCD
  correspondence, which holds CIP13 and UCD13 codes: a 13-digit code there is looked up as a CIP13).
- UCD (hospital dispensing unit): ``http://data.esante.gouv.fr/ansm/medicament/UCD`` (Interop'Santé
  medication IG) and ``urn:oid:1.2.250.1.213.2.61`` (CI-SIS). The KB has no UCD table (BDPM does
  not publish one), so a UCD-coded line is read from its text or display.
- ATC: ``http://www.whocc.no/atc`` (the FHIR-registered URI), ANS ``https://smt.esante.gouv.fr/
  terminologie-atc`` and ``urn:oid:2.16.840.1.113883.6.73``. An ATC code stands for its substance
  when exactly one KB substance carries it.

Diagnoses: CIM-10 as ``https://smt.esante.gouv.fr/terminologie-cim-10`` (ANS, CIM-10 FR PMSI),
``http://hl7.org/fhir/sid/icd-10`` (WHO ICD-10, FHIR-registered) and ``urn:oid:2.16.840.1.113883.6.3``.

Observations are LOINC (``http://loinc.org``); :data:`LOINC` lists the codes read and the unit
conversions to the contract's units.
"""

from __future__ import annotations

from dataclasses import dataclass

SMT_BDPM = "https://smt.esante.gouv.fr/terminologie-bdpm"
SMT_CIP_UCD = "https://smt.esante.gouv.fr/terminologie-cip_ucd"
OID_CIS = "urn:oid:1.2.250.1.213.2.3.1"
OID_CIP = "urn:oid:1.2.250.1.213.2.3.2"
OID_UCD = "urn:oid:1.2.250.1.213.2.61"
ANSM_UCD = "http://data.esante.gouv.fr/ansm/medicament/UCD"
ATC = "http://www.whocc.no/atc"

CIS_SYSTEMS = frozenset({SMT_BDPM, OID_CIS, "https://smt.esante.gouv.fr/terminologie-cis"})
CIP_SYSTEMS = frozenset({SMT_BDPM, OID_CIP, SMT_CIP_UCD})
UCD_SYSTEMS = frozenset({ANSM_UCD, OID_UCD, SMT_CIP_UCD})
ATC_SYSTEMS = frozenset(
    {ATC, "https://smt.esante.gouv.fr/terminologie-atc", "urn:oid:2.16.840.1.113883.6.73"}
)
ICD10_SYSTEMS = frozenset(
    {
        "https://smt.esante.gouv.fr/terminologie-cim-10",
        "http://hl7.org/fhir/sid/icd-10",
        "urn:oid:2.16.840.1.113883.6.3",
    }
)
LOINC_SYSTEM = "http://loinc.org"

# Written by the adapters. HL7 v3 ActCode is the DetectedIssue category system of the FHIR spec.
V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
# Iatro's own codes (alert types, override reasons). The project owns no domain yet: ".invalid" is
# reserved (RFC 2606) and says so plainly until a canonical base is chosen.
IATRO_BASE = "https://iatro.invalid/fhir/CodeSystem"
IATRO_ALERT_TYPE = f"{IATRO_BASE}/alert-type"
IATRO_RULE = f"{IATRO_BASE}/rule"
IATRO_OVERRIDE_REASON = f"{IATRO_BASE}/override-reason"


def normalise_system(system: str | None) -> str:
    """Systems are compared without a trailing slash: both spellings circulate for the SMT URLs."""
    return (system or "").strip().rstrip("/")


@dataclass(frozen=True, slots=True)
class Analyte:
    """A contract input read from Observations: where it goes and how units convert to it."""

    field: str  # "creatinine_umol_l", "labs.potassium_mmol_l", ...
    label: str
    # folded unit (lower case, µ -> u, spaces removed) -> factor to the contract unit
    units: dict[str, float]


_MMOL = {"mmol/l": 1.0, "meq/l": 1.0}
LOINC: dict[str, Analyte] = {
    # Creatinine [Moles/volume] in Serum or Plasma; [Mass/volume] (mg/dL, 1 mg/dL = 88.42 µmol/L).
    "14682-9": Analyte("creatinine_umol_l", "créatinine", {"umol/l": 1.0, "mmol/l": 1000.0, "mg/dl": 88.42}),
    "2160-0": Analyte("creatinine_umol_l", "créatinine", {"mg/dl": 88.42, "umol/l": 1.0, "mg/l": 8.842}),
    # Estimated GFR: MDRD (33914-3), CKD-EPI (62238-1), CKD-EPI 2021 (98979-8),
    # MDRD by race (48642-3, 48643-1).
    **{
        code: Analyte(
            "egfr_ml_min", "DFG estimé", {"ml/min/{1.73_m2}": 1.0, "ml/min/1.73m2": 1.0, "ml/min": 1.0}
        )
        for code in ("33914-3", "62238-1", "98979-8", "48642-3", "48643-1")
    },
    # Potassium / sodium [Moles/volume] in Serum or Plasma, and in Blood.
    "2823-3": Analyte("labs.potassium_mmol_l", "kaliémie", _MMOL),
    "6298-4": Analyte("labs.potassium_mmol_l", "kaliémie", _MMOL),
    "2951-2": Analyte("labs.sodium_mmol_l", "natrémie", _MMOL),
    "2947-0": Analyte("labs.sodium_mmol_l", "natrémie", _MMOL),
    # Calcium [Moles/volume] (2000-8) and [Mass/volume] (17861-6, 1 mg/dL = 0.2495 mmol/L).
    "2000-8": Analyte("labs.calcium_mmol_l", "calcémie", {"mmol/l": 1.0, "mg/dl": 0.2495}),
    "17861-6": Analyte("labs.calcium_mmol_l", "calcémie", {"mg/dl": 0.2495, "mmol/l": 1.0}),
    # Magnesium [Moles/volume] (2601-3) and [Mass/volume] (19123-9, 1 mg/dL = 0.4114 mmol/L).
    "2601-3": Analyte("labs.magnesium_mmol_l", "magnésémie", {"mmol/l": 1.0, "mg/dl": 0.4114}),
    "19123-9": Analyte("labs.magnesium_mmol_l", "magnésémie", {"mg/dl": 0.4114, "mmol/l": 1.0}),
    # QT interval corrected (8636-3) and heart rate (8867-4).
    "8636-3": Analyte("labs.qtc_ms", "QTc", {"ms": 1.0, "s": 1000.0}),
    "8867-4": Analyte(
        "labs.heart_rate_bpm", "fréquence cardiaque", {"/min": 1.0, "{beats}/min": 1.0, "bpm": 1.0}
    ),
    # Body weight (29463-7), measured (3141-9).
    "29463-7": Analyte("weight_kg", "poids", {"kg": 1.0, "g": 0.001}),
    "3141-9": Analyte("weight_kg", "poids", {"kg": 1.0, "g": 0.001}),
}


def fold_unit(unit: str) -> str:
    return unit.strip().lower().replace("µ", "u").replace("μ", "u").replace(" ", "")


# Vaccines of the contract, from ATC (J07 subgroups) or from words of the vaccine's name.
VACCINE_ATC = {
    "J07BB": "grippe",
    "J07BN": "covid-19",
    "J07AL": "pneumocoque",
    "J07BK": "zona",
    "J07BX05": "vrs",
    "J07AM": "dtp",
    "J07CA": "dtp",
}
VACCINE_WORDS = (
    ("grippe", "grippe"),
    ("influenza", "grippe"),
    ("covid", "covid-19"),
    ("sars-cov-2", "covid-19"),
    ("pneumoco", "pneumocoque"),
    ("zona", "zona"),
    ("zoster", "zona"),
    ("syncytial", "vrs"),
    ("vrs", "vrs"),
    ("rsv", "vrs"),
    ("tetanos", "dtp"),
    ("tetanus", "dtp"),
    ("diphter", "dtp"),
    ("dtp", "dtp"),
)
