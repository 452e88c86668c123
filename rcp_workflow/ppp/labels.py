"""French labels and SFPC Act-IP codes the PPP renderers print.

The plan's value object keeps language-neutral codes (``stop``, ``accepted``, ``medecin_traitant``);
this module is the one place that turns them into the French a pharmacist or a médecin traitant reads,
so the PDF and the FHIR export say the same thing.

Act-IP codes are read from the workflow's SFPC table (:mod:`rcp_workflow.actip`, the SFPC hospital
classification of the Interop'Santé FHIR IG); their ``source_ref`` is the FHIR CodeSystem URL, which
the export writes as the coding system (``ACTIP_SYSTEMS`` names the three for readers and tests).
"""

from __future__ import annotations

from dataclasses import dataclass

from rcp_workflow import actip as sfpc_table
from rcp_workflow.actip import Axis

ACTION_LABELS = {
    "stop": "Arrêter",
    "start": "Débuter",
    "change": "Modifier",
    "continue": "Poursuivre",
    "monitor": "Surveiller",
}
DECISION_LABELS = {"accepted": "Acceptée", "modified": "Modifiée"}
MEDICATION_STATUS_LABELS = {"new": "Nouveau", "changed": "Modifié", "unchanged": "Inchangé"}
ROLE_LABELS = {
    "medecin_traitant": "Médecin traitant",
    "pharmacien_officine": "Pharmacien d'officine",
    "pharmacien_hospitalier": "Pharmacien hospitalier",
    "geriatre": "Gériatre",
    "coordinateur": "Coordinateur",
}
PATHWAY_LABELS = {
    "iatroprev": "Iatroprev",
    "optimedoc": "Optimedoc",
    "bpm": "Bilan partagé de médication",
}
SEX_LABELS = {"F": "femme", "M": "homme"}


def role_label(role: str) -> str:
    # A role outside the five the workflow knows is printed as recorded rather than refused: the
    # plan must still be issuable, and the code is readable.
    return ROLE_LABELS.get(role, role)


def pathway_label(pathway: str) -> str:
    return PATHWAY_LABELS.get(pathway, pathway)


ACTIP_SYSTEMS: dict[Axis, str] = {
    "problem": "https://hl7.fr/ig/fhir/medication/CodeSystem/fr-pharmaceutical-intervention-problem-code",
    "intervention": "https://hl7.fr/ig/fhir/medication/CodeSystem/fr-pharmaceutical-intervention-type-code",
    "outcome": "https://hl7.fr/ig/fhir/medication/CodeSystem/fr-pharmaceutical-intervention-devenir-code",
}
# The SFPC "devenir" of an intervention the RCP kept: accepted as proposed, or accepted once modified.
DECISION_OUTCOME_CODES = {"accepted": "1", "modified": "4"}


@dataclass(frozen=True, slots=True)
class ActIpCode:
    axis: Axis
    code: str
    label: str
    system: str


def actip(axis: Axis, code: str, field: str) -> ActIpCode:
    """The Act-IP code of ``axis``; an unknown code is refused naming the plan field it came from."""
    found = sfpc_table.lookup(axis, code, field=field)
    return ActIpCode(axis, found.code, found.label, found.source_ref)


def actip_rows() -> list[ActIpCode]:
    """Every code of the three axes (for the consistency test against the shipped source)."""
    return [ActIpCode(c.axis, c.code, c.label, c.source_ref) for c in sfpc_table.codes().values()]
