"""The plan pharmaceutique personnalisé as FHIR R4: a ``collection`` Bundle around one CarePlan.

Built with the ``fhir.resources`` R4B models, as ``api/fhir`` does (R4B leaves CarePlan,
MedicationRequest, MedicationStatement, DetectedIssue, PractitionerRole and List as in R4):
constructing them validates them, so an invalid export fails here.

How the plan maps, and why:

- **CarePlan** (status ``active``, intent ``plan``): subject = the patient by pseudonym identifier only
  (no Patient resource: the identity stays in the workflow database), ``created`` = issue time,
  ``author`` = the issuer's PractitionerRole, ``contributor`` = the RCP participants.
- **One MedicationRequest per plan item**, intent ``proposal`` (the RCP proposes; the prescriber
  prescribes), status ``active`` (the proposal is in force). *Stop* is ``doNotPerform: true``: R4's
  way to say "this medication should not be given". Status ``stopped`` was not used: it would say that
  the proposal itself was stopped, not that it proposes to stop the drug. Before / after posology,
  the RCP decision and its comment are notes; ``after`` is the dosage text. The CarePlan activity
  references it and carries the SFPC outcome ("devenir": acceptée / acceptée avec modification) as
  its outcome, since that is what the RCP decided about the intervention.
- **Act-IP codes**: the SFPC problem code is the request's ``reasonCode`` (with the reason as text);
  problem and intervention also go in a **DetectedIssue** (code = problem, mitigation action =
  intervention), referenced from ``MedicationRequest.detectedIssue``: the same encoding
  ``api/fhir/outbound.py`` uses for alerts, so a receiver reads one convention.
- **Monitoring**: CarePlan activity ``detail`` of kind ``ServiceRequest`` with the what as code text,
  the when as ``scheduledString`` and the who as performer. **Follow-ups** (J45, J90): activity detail
  with a one-day ``scheduledPeriod`` on the due date (no Appointment: none is booked yet).
- **New medication list**: one MedicationStatement per line (CIS and ATC codings when known; status
  ``intended`` for a new drug, ``active`` otherwise) gathered in a **List** the CarePlan cites as
  supporting information.

Ids are UUIDs derived from the case, the plan version and the position, and the timestamps are the
plan's own, so the same plan always gives the same Bundle.
"""

from __future__ import annotations

import uuid
from typing import Any

from fhir.resources.R4B.annotation import Annotation
from fhir.resources.R4B.bundle import Bundle, BundleEntry
from fhir.resources.R4B.careplan import CarePlan, CarePlanActivity, CarePlanActivityDetail
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.detectedissue import DetectedIssue, DetectedIssueEvidence, DetectedIssueMitigation
from fhir.resources.R4B.dosage import Dosage
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.list import List as FhirList
from fhir.resources.R4B.list import ListEntry
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.medicationstatement import MedicationStatement
from fhir.resources.R4B.period import Period
from fhir.resources.R4B.practitionerrole import PractitionerRole
from fhir.resources.R4B.reference import Reference
from fhir.resources.R4B.resource import Resource

from rcp_workflow.ppp import labels
from rcp_workflow.ppp.model import Medication, PlanItem, PPPDocument, Professional

# Iatro owns no domain yet: ".invalid" (RFC 2606) says so, as in api/fhir/codes.py.
IATRO_BASE = "https://iatro.invalid/fhir"
PSEUDONYM_SYSTEM = f"{IATRO_BASE}/NamingSystem/patient-pseudonym"
PPP_SYSTEM = f"{IATRO_BASE}/NamingSystem/ppp"
ROLE_SYSTEM = f"{IATRO_BASE}/CodeSystem/professional-role"
PLAN_ACTION_SYSTEM = f"{IATRO_BASE}/CodeSystem/ppp-action"
MEDICATION_STATUS_SYSTEM = f"{IATRO_BASE}/CodeSystem/ppp-medication-status"
IATRO_RULE = f"{IATRO_BASE}/CodeSystem/rule"
# ANS BDPM terminology (CIS) and the FHIR-registered ATC URI, as written by api/fhir/codes.py.
SMT_BDPM = "https://smt.esante.gouv.fr/terminologie-bdpm"
ATC = "http://www.whocc.no/atc"


class _Ids:
    """Deterministic ids: one namespace per plan version, one name per resource."""

    def __init__(self, doc: PPPDocument) -> None:
        self._base = f"urn:iatro:ppp:{doc.case_id}:v{doc.version}"

    def __call__(self, kind: str, key: object = "") -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self._base}:{kind}:{key}"))


def _url(resource_id: str) -> str:
    return f"urn:uuid:{resource_id}"


def _role(role: str) -> CodeableConcept:
    label = labels.role_label(role)
    return CodeableConcept(coding=[Coding(system=ROLE_SYSTEM, code=role, display=label)], text=label)


def _actip_coding(code: labels.ActIpCode) -> Coding:
    return Coding(system=code.system, code=code.code, display=code.label)


def _professionals(doc: PPPDocument, ids: _Ids) -> dict[Professional, PractitionerRole]:
    people = list(doc.participants)
    if doc.issued_by not in people:
        people.append(doc.issued_by)
    return {
        person: PractitionerRole(
            id=ids("practitioner-role", f"{person.name}|{person.role}|{person.organisation}"),
            active=True,
            practitioner=Reference(display=person.name),
            organization=Reference(display=person.organisation),
            code=[_role(person.role)],
        )
        for person in people
    }


def _ref(role: PractitionerRole, person: Professional) -> Reference:
    return Reference(reference=_url(str(role.id)), type="PractitionerRole", display=person.name)


def _medication_concept(drug: str, line: Medication | None) -> CodeableConcept:
    codings = []
    if line is not None and line.cis:
        codings.append(Coding(system=SMT_BDPM, code=line.cis))
    if line is not None and line.atc:
        codings.append(Coding(system=ATC, code=line.atc))
    return CodeableConcept(coding=codings or None, text=drug)


def _item_notes(item: PlanItem) -> list[Annotation]:
    change = f"{labels.ACTION_LABELS[item.action]} : {item.drug}"
    if item.before:
        change += f". Avant : {item.before}"
    if item.after:
        change += f". Après : {item.after}"
    decision = f"Décision RCP : {labels.DECISION_LABELS[item.decision]} par {item.decided_by}"
    if item.comment:
        decision += f". Commentaire : {item.comment}"
    return [Annotation(text=change), Annotation(text=decision)]


def _detected_issue(
    doc: PPPDocument, item: PlanItem, index: int, request_id: str, ids: _Ids, subject: Reference
) -> DetectedIssue | None:
    if not (item.actip_problem or item.actip_intervention):
        return None
    problem = item.actip_problem and labels.actip(
        "problem", item.actip_problem, f"items.{index}.actip_problem"
    )
    intervention = item.actip_intervention and labels.actip(
        "intervention", item.actip_intervention, f"items.{index}.actip_intervention"
    )
    mitigation = (
        [
            DetectedIssueMitigation(
                action=CodeableConcept(
                    coding=[_actip_coding(intervention)],
                    text=f"{labels.ACTION_LABELS[item.action]} {item.drug}",
                ),
                date=doc.rcp_date,
                author=Reference(display=item.decided_by),
            )
        ]
        if intervention
        else None
    )
    return DetectedIssue(
        id=ids("detected-issue", index),
        status="final",  # reviewed by the RCP, unlike the engine's preliminary alerts
        code=CodeableConcept(coding=[_actip_coding(problem)] if problem else None, text=item.reason),
        patient=subject,
        identifiedDateTime=doc.rcp_date,
        implicated=[Reference(reference=_url(request_id), type="MedicationRequest", display=item.drug)],
        evidence=[DetectedIssueEvidence(code=[CodeableConcept(text=item.source)])] if item.source else None,
        detail=item.reason,
        mitigation=mitigation,
    )


def _medication_request(
    doc: PPPDocument,
    item: PlanItem,
    index: int,
    ids: _Ids,
    subject: Reference,
    requester: Reference,
    issue: DetectedIssue | None,
) -> MedicationRequest:
    lines = {line.drug: line for line in doc.new_medications}
    reason_codings = (
        [_actip_coding(labels.actip("problem", item.actip_problem, f"items.{index}.actip_problem"))]
        if item.actip_problem
        else None
    )
    return MedicationRequest(
        id=ids("medication-request", index),
        status="active",
        intent="proposal",
        doNotPerform=True if item.action == "stop" else None,
        category=[
            CodeableConcept(
                coding=[
                    Coding(
                        system=PLAN_ACTION_SYSTEM, code=item.action, display=labels.ACTION_LABELS[item.action]
                    )
                ],
                text=labels.ACTION_LABELS[item.action],
            )
        ],
        medicationCodeableConcept=_medication_concept(item.drug, lines.get(item.drug)),
        subject=subject,
        authoredOn=doc.issued_at,
        requester=requester,
        performerType=_role(item.responsible_role),
        reasonCode=[CodeableConcept(coding=reason_codings, text=item.reason)],
        detectedIssue=[Reference(reference=_url(str(issue.id)), type="DetectedIssue")] if issue else None,
        note=_item_notes(item),
        dosageInstruction=[Dosage(text=item.after)] if item.after and item.action != "stop" else None,
    )


def _outcome(item: PlanItem) -> CodeableConcept:
    code = labels.actip("outcome", labels.DECISION_OUTCOME_CODES[item.decision], "items.decision")
    return CodeableConcept(coding=[_actip_coding(code)], text=labels.DECISION_LABELS[item.decision])


def _medication_statement(
    doc: PPPDocument, line: Medication, index: int, ids: _Ids, subject: Reference, source: Reference
) -> MedicationStatement:
    return MedicationStatement(
        id=ids("medication-statement", index),
        status="intended" if line.status == "new" else "active",
        medicationCodeableConcept=_medication_concept(line.drug, line),
        subject=subject,
        dateAsserted=doc.issued_at,
        informationSource=source,
        dosage=[Dosage(text=line.posology)] if line.posology else None,
    )


def ppp_bundle(doc: PPPDocument) -> Bundle:
    """The plan as a validated R4 Bundle (see the module docstring for the mapping)."""
    ids = _Ids(doc)
    subject = Reference(
        type="Patient",
        identifier=Identifier(system=PSEUDONYM_SYSTEM, value=doc.patient_pseudonym),
        display=doc.patient_pseudonym,
    )
    roles = _professionals(doc, ids)
    author = _ref(roles[doc.issued_by], doc.issued_by)
    by_role: dict[str, Reference] = {}
    for person in doc.participants:
        by_role.setdefault(person.role, _ref(roles[person], person))

    resources: list[Resource] = []
    activities: list[CarePlanActivity] = []
    for index, item in enumerate(doc.items):
        request_id = ids("medication-request", index)
        issue = _detected_issue(doc, item, index, request_id, ids, subject)
        request = _medication_request(doc, item, index, ids, subject, author, issue)
        resources.append(request)
        if issue is not None:
            resources.append(issue)
        activities.append(
            CarePlanActivity(
                outcomeCodeableConcept=[_outcome(item)],
                reference=Reference(
                    reference=_url(request_id),
                    type="MedicationRequest",
                    display=f"{labels.ACTION_LABELS[item.action]} {item.drug}",
                ),
            )
        )
    for monitoring in doc.monitoring:
        who = by_role.get(monitoring.who) or Reference(display=labels.role_label(monitoring.who))
        activities.append(
            CarePlanActivity(
                detail=CarePlanActivityDetail(
                    kind="ServiceRequest",
                    code=CodeableConcept(text=monitoring.what),
                    status="not-started",
                    scheduledString=monitoring.when,
                    performer=[who],
                    description=f"Surveillance : {monitoring.what} ({monitoring.when})",
                )
            )
        )
    for follow_up in doc.follow_ups:
        activities.append(
            CarePlanActivity(
                detail=CarePlanActivityDetail(
                    code=CodeableConcept(text=follow_up.label),
                    status="scheduled",
                    scheduledPeriod=Period(start=follow_up.due, end=follow_up.due),
                    description=f"{follow_up.label} : mise en œuvre et devenir de chaque item du plan",
                )
            )
        )

    statements = [
        _medication_statement(doc, line, index, ids, subject, author)
        for index, line in enumerate(doc.new_medications)
    ]
    medication_list = FhirList(
        id=ids("list"),
        status="current",
        mode="snapshot",
        title="Liste des médicaments après le plan",
        subject=subject,
        date=doc.issued_at,
        source=author,
        entry=[
            ListEntry(
                flag=CodeableConcept(
                    coding=[
                        Coding(
                            system=MEDICATION_STATUS_SYSTEM,
                            code=line.status,
                            display=labels.MEDICATION_STATUS_LABELS[line.status],
                        )
                    ],
                    text=labels.MEDICATION_STATUS_LABELS[line.status],
                ),
                item=Reference(
                    reference=_url(str(statement.id)), type="MedicationStatement", display=line.drug
                ),
            )
            for line, statement in zip(doc.new_medications, statements, strict=True)
        ]
        or None,
        emptyReason=CodeableConcept(text="aucun médicament") if not statements else None,
    )

    dues = [f.due for f in doc.follow_ups]
    plan = CarePlan(
        id=ids("careplan"),
        identifier=[Identifier(system=PPP_SYSTEM, value=f"{doc.case_id}/v{doc.version}")],
        status="active",
        intent="plan",
        title="Plan pharmaceutique personnalisé",
        description=(
            f"Parcours {labels.pathway_label(doc.pathway)}, dossier {doc.case_id}, RCP du "
            f"{doc.rcp_date.strftime('%d/%m/%Y')}, version {doc.version}. "
            f"Base de connaissances {doc.kb_version}."
        ),
        category=[
            CodeableConcept(text=f"Plan pharmaceutique personnalisé — {labels.pathway_label(doc.pathway)}")
        ],
        subject=subject,
        period=Period(start=doc.rcp_date, end=max(dues) if dues else None),
        created=doc.issued_at,
        author=author,
        contributor=[_ref(roles[p], p) for p in doc.participants] or None,
        supportingInfo=[Reference(reference=_url(str(medication_list.id)), type="List")],
        activity=activities or None,
        note=[
            Annotation(
                text=f"Généré par Iatro, base de connaissances {doc.kb_version}. Seules les décisions "
                "acceptées ou modifiées en RCP figurent dans le plan."
            )
        ],
    )
    entries = [plan, *roles.values(), *resources, medication_list, *statements]
    return Bundle(
        id=ids("bundle"),
        identifier=Identifier(system=PPP_SYSTEM, value=f"{doc.case_id}/v{doc.version}"),
        type="collection",
        timestamp=doc.issued_at,
        entry=[BundleEntry(fullUrl=_url(str(r.id)), resource=r) for r in entries],
    )


def to_fhir(doc: PPPDocument) -> dict[str, Any]:
    """The plan's Bundle as JSON-ready data (what an API returns or a file stores)."""
    data: dict[str, Any] = ppp_bundle(doc).model_dump(mode="json", exclude_none=True)
    return data
