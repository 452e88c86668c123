"""An analysis report out as FHIR R4: a ``collection`` Bundle of DetectedIssue, plus one OperationOutcome.

Each alert is one DetectedIssue, built with the ``fhir.resources`` R4B models (construction validates
it, so a response that is not valid FHIR fails here, in the server, rather than in the client):

- ``status`` ``preliminary``: raised by software, not yet reviewed by a pharmacist;
- ``code``: the HL7 v3 ActCode category where one fits (DRG drug interaction, DUPTHPGEN /
  DUPTHPCLS duplicates, DOSECOND renal dosing), Iatro's alert type, and the proposed SFPC problem code;
- ``severity``: high / moderate / low (ANSM contre-indication and association déconseillée are high,
  précaution d'emploi moderate, à prendre en compte low);
- ``implicated``: the MedicationRequest / MedicationStatement of each line involved;
- ``evidence``: the rule (id, source, edition) and the chain of ANSM classes that made it apply;
- ``detail``: message, why this level, and the conditions the input left open;
- ``mitigation``: the proposed SFPC intervention with the recommendation, then one substitution per
  proven alternative.

The OperationOutcome says what the report cannot: lines left unresolved or ambiguous, inputs the
reader skipped, checks that did not run and inputs they missed.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from fhir.resources.R4B.bundle import Bundle, BundleEntry
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.detectedissue import DetectedIssue, DetectedIssueEvidence, DetectedIssueMitigation
from fhir.resources.R4B.operationoutcome import OperationOutcome, OperationOutcomeIssue
from fhir.resources.R4B.reference import Reference

from api import sfpc
from api.fhir import codes
from api.fhir.inbound import ClinicalInput, MedicationLine
from iatro.model.report import Alert, Report

_LEVEL_SEVERITY = {
    "contre-indication": "high",
    "association-deconseillee": "high",
    "precaution-emploi": "moderate",
    "a-prendre-en-compte": "low",
}
_ACT_CODE = {
    "interaction": ("DRG", "Drug Interaction Alert"),
    "cyp": ("DRG", "Drug Interaction Alert"),
    "renal": ("DOSECOND", "dosage-condition alert"),
}


def fhir_severity(alert: Alert) -> str:
    if alert.severity in _LEVEL_SEVERITY:
        return _LEVEL_SEVERITY[alert.severity]
    return alert.severity if alert.severity in ("high", "moderate", "low") else "low"


def sfpc_coding(code: sfpc.SfpcCode) -> Coding:
    return Coding(system=code.system, code=code.code, display=code.label)


def _category(alert: Alert, problem: sfpc.SfpcCode) -> CodeableConcept:
    codings = []
    act = _ACT_CODE.get(alert.type)
    if alert.type == "duplicate":
        act = (
            ("DUPTHPGEN", "duplicate generic alert")
            if alert.rule_id == "duplicate:substance"
            else ("DUPTHPCLS", "duplicate therapeutic class alert")
        )
    if act is not None:
        codings.append(Coding(system=codes.V3_ACT_CODE, code=act[0], display=act[1]))
    codings.append(Coding(system=codes.IATRO_ALERT_TYPE, code=alert.type, display=alert.type))
    codings.append(sfpc_coding(problem))
    return CodeableConcept(coding=codings, text=f"{alert.type}: {alert.severity}")


def _implicated(alert: Alert, lines: Sequence[MedicationLine]) -> list[Reference]:
    out = []
    for index in alert.lines:
        if 0 <= index < len(lines):
            line = lines[index]
            out.append(Reference(reference=line.reference, display=line.display[:200] or None))
    return out


def _detail(alert: Alert) -> str:
    parts = [alert.message]
    if alert.why:
        parts.append(f"Pourquoi ce niveau : {alert.why}")
    if alert.unresolved_conditions:
        parts.append("Conditions non résolues : " + "; ".join(alert.unresolved_conditions))
    return "\n\n".join(parts)


def detected_issue(
    alert: Alert, lines: Sequence[MedicationLine], patient: str | None, kb_version: str, now: dt.datetime
) -> DetectedIssue:
    proposal = sfpc.propose(alert)
    evidence = [
        DetectedIssueEvidence(
            code=[
                CodeableConcept(
                    coding=[Coding(system=codes.IATRO_RULE, code=alert.rule_id)],
                    text=alert.source
                    + (
                        f" (édition {alert.edition})"
                        if alert.edition and alert.edition not in alert.source
                        else ""
                    ),
                )
            ]
        )
    ]
    if alert.via:
        evidence.append(DetectedIssueEvidence(code=[CodeableConcept(text="Via : " + " → ".join(alert.via))]))
    action = sfpc_coding(proposal.intervention)
    mitigation = [
        DetectedIssueMitigation(
            action=CodeableConcept(coding=[action], text=alert.recommendation or proposal.intervention.label)
        )
    ]
    substitution = sfpc_coding(sfpc.code("intervention", "3"))
    for alternative in alert.alternatives:
        text = f"Substitution : {alternative.name}" + (
            f" ({alternative.reason})" if alternative.reason else ""
        )
        mitigation.append(DetectedIssueMitigation(action=CodeableConcept(coding=[substitution], text=text)))
    return DetectedIssue(
        id=str(uuid.uuid4()),
        status="preliminary",
        code=_category(alert, proposal.problem),
        severity=fhir_severity(alert),
        patient=Reference(reference=patient) if patient else None,
        identifiedDateTime=now,
        author=Reference(display=f"Iatro (KB {kb_version})"),
        implicated=_implicated(alert, lines) or None,
        evidence=evidence,
        detail=_detail(alert),
        mitigation=mitigation,
    )


def _outcome(report: Report, reading: ClinicalInput) -> OperationOutcome:
    issues = [
        OperationOutcomeIssue(
            severity="information",
            code="informational",
            diagnostics=f"Iatro analysis, knowledge base {report.kb_version}",
        )
    ]
    for line in report.lines:
        if line.status == "resolved":
            continue
        source = reading.lines[line.index] if line.index < len(reading.lines) else None
        issues.append(
            OperationOutcomeIssue(
                severity="warning",
                code="not-found" if line.status == "unresolved" else "multiple-matches",
                diagnostics=f"line {line.index} ({line.input}) {line.status}: "
                + (line.reason or "several products fit"),
                expression=[source.path] if source else None,
            )
        )
    for note in reading.notes:
        issues.append(
            OperationOutcomeIssue(
                severity=note.level,
                code="informational" if note.level == "information" else "incomplete",
                diagnostics=note.text,
                expression=[note.path],
            )
        )
    for missing in report.missing_inputs:
        issues.append(OperationOutcomeIssue(severity="information", code="incomplete", diagnostics=missing))
    if report.checks_not_run:
        issues.append(
            OperationOutcomeIssue(
                severity="information",
                code="not-supported",
                diagnostics="checks not run: " + ", ".join(report.checks_not_run),
            )
        )
    return OperationOutcome(id=str(uuid.uuid4()), issue=issues)


def report_bundle(report: Report, reading: ClinicalInput, now: dt.datetime | None = None) -> Bundle:
    now = now or dt.datetime.now(dt.UTC)
    entries = []
    for alert in report.alerts:
        issue = detected_issue(alert, reading.lines, reading.patient_reference, report.kb_version, now)
        entries.append(BundleEntry(fullUrl=f"urn:uuid:{issue.id}", resource=issue))
    outcome = _outcome(report, reading)
    entries.append(BundleEntry(fullUrl=f"urn:uuid:{outcome.id}", resource=outcome))
    return Bundle(id=str(uuid.uuid4()), type="collection", timestamp=now, entry=entries)
