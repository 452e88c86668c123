"""Frozen value objects at the edges: the analysis input and the report."""

from iatro.model.prescription import HospitalContext, Labs, LineInput, Patient, Prescription, Vaccination
from iatro.model.report import (
    Alert,
    Alternative,
    Candidate,
    LineReport,
    Posology,
    ProductRef,
    Report,
    SubstanceRef,
)

__all__ = [
    "Alert",
    "Alternative",
    "Candidate",
    "HospitalContext",
    "Labs",
    "LineInput",
    "LineReport",
    "Patient",
    "Posology",
    "Prescription",
    "ProductRef",
    "Report",
    "SubstanceRef",
    "Vaccination",
]
