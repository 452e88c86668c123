"""CDS Hooks 2.0 services: ``iatro-order-select`` (hook order-select) and ``iatro-order-sign`` (order-sign).

A call's ``context.draftOrders`` (a Bundle of MedicationRequest) and whatever the client prefetched
(the patient, active conditions, recent observations, active medications) are read with the same
FHIR reader as ``/fhir/$analyze`` and analysed together, so a draft order meets the treatment it
joins. Cards are raised for alerts that implicate a draft order (order-sign) or one of the orders
just selected (order-select); an alert about the existing treatment alone, or about no line (missing
vaccines, START omissions), is not the ordering clinician's decision at this moment and is left to
the full analysis. A draft order the engine could not recognise gets an info card: no card must
never be read as "nothing found" when the order was not analysed.

Each card carries its SFPC codes in the detail, the proven alternatives as suggestions (delete the
draft order, create a MedicationRequest for the alternative), and override reasons. Cards issued
and feedback received are kept in memory only, for now: see :class:`FeedbackLog`.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from fhir.resources.R4B.annotation import Annotation
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.reference import Reference

from api import sfpc
from api.errors import NotFoundError
from api.fhir import codes
from api.fhir.inbound import (
    ClinicalInput,
    FhirReader,
    Located,
    MedicationLine,
    bundle_resources,
    validate_resource,
)
from api.limits import check_line_count
from api.schemas import (
    CdsAction,
    CdsCard,
    CdsCoding,
    CdsFeedbackItem,
    CdsRequest,
    CdsResponse,
    CdsServiceDescription,
    CdsSource,
    CdsSuggestion,
)
from iatro.analysis import Engine
from iatro.errors import FieldError
from iatro.model.report import Alert, Alternative, LineReport, Report

_OBSERVATION_CODES = ",".join(f"{codes.LOINC_SYSTEM}|{code}" for code in codes.LOINC)
PREFETCH = {
    "patient": "Patient/{{context.patientId}}",
    "conditions": "Condition?patient={{context.patientId}}&clinical-status=active",
    "observations": f"Observation?patient={{{{context.patientId}}}}&code={_OBSERVATION_CODES}&_sort=-date",
    "medications": "MedicationRequest?patient={{context.patientId}}&status=active",
}

SERVICES: dict[str, CdsServiceDescription] = {
    "iatro-order-select": CdsServiceDescription(
        hook="order-select",
        id="iatro-order-select",
        title="Iatro: sécurité des prescriptions du sujet âgé (sélection)",
        description=(
            "Interactions ANSM, CYP, STOPP, doublons, QT, anticholinergiques et fonction rénale des "
            "médicaments sélectionnés, avec le traitement en cours."
        ),
        prefetch=PREFETCH,
    ),
    "iatro-order-sign": CdsServiceDescription(
        hook="order-sign",
        id="iatro-order-sign",
        title="Iatro: sécurité des prescriptions du sujet âgé (signature)",
        description=(
            "Analyse de l'ordonnance à signer (toutes les prescriptions en brouillon) avec le traitement "
            "en cours : interactions ANSM, CYP, STOPP, doublons, QT, anticholinergiques, fonction rénale."
        ),
        prefetch=PREFETCH,
    ),
}

OVERRIDE_REASONS = [
    CdsCoding(system=codes.IATRO_OVERRIDE_REASON, code=code, display=display)
    for code, display in (
        ("benefit-outweighs-risk", "Bénéfice supérieur au risque"),
        ("monitoring-planned", "Surveillance prévue (clinique, biologique, ECG)"),
        ("already-tolerated", "Association déjà tolérée par le patient"),
        ("short-course", "Traitement de courte durée"),
        ("not-relevant", "Alerte non pertinente pour ce patient"),
    )
]

_CRITICAL = frozenset({"contre-indication", "high"})
_WARNING = frozenset({"association-deconseillee", "precaution-emploi", "moderate"})
_INDICATOR_ORDER = {"critical": 0, "warning": 1, "info": 2}
_LEVEL_LABEL = {
    "contre-indication": "contre-indication",
    "association-deconseillee": "association déconseillée",
    "precaution-emploi": "précaution d'emploi",
    "a-prendre-en-compte": "à prendre en compte",
}
_SOURCE_LABEL = {
    "interaction": "ANSM — Thésaurus des interactions médicamenteuses",
    "cyp": "FDA — Drug interactions (CYP), table 1",
    "pim": "STOPP/START v2",
    "omission": "STOPP/START v2",
}
SUMMARY_MAX = 140


def indicator(alert: Alert) -> Literal["info", "warning", "critical"]:
    if alert.severity in _CRITICAL:
        return "critical"
    if alert.severity in _WARNING:
        return "warning"
    return "info"


def summary(alert: Alert) -> str:
    """The alert's first sentence, within the 140 characters CDS Hooks allows."""
    text = alert.message.split(". ", 1)[0].strip().rstrip(".")
    return text if len(text) <= SUMMARY_MAX else text[: SUMMARY_MAX - 1].rstrip() + "…"


def source_label(alert: Alert) -> str:
    label = _SOURCE_LABEL.get(alert.type)
    if label is None:
        label = alert.source.split(" — ")[0]
    if alert.edition and alert.type == "interaction":
        label += f" ({alert.edition})"
    return label if len(label) <= 100 else label[:99].rstrip() + "…"


def detail(alert: Alert, proposal: sfpc.SfpcProposal) -> str:
    level = _LEVEL_LABEL.get(alert.severity, alert.severity)
    parts = [f"**{alert.type} — {level}**", alert.message]
    if alert.recommendation:
        parts.append(f"**Conduite à tenir** : {alert.recommendation}")
    if alert.why:
        parts.append(f"**Pourquoi ce niveau** : {alert.why}")
    if alert.unresolved_conditions:
        parts.append("**Conditions non résolues** : " + "; ".join(alert.unresolved_conditions))
    edition = f", édition {alert.edition}" if alert.edition and alert.edition not in alert.source else ""
    parts.append(f"**Règle** : `{alert.rule_id}` — {alert.source}{edition}")
    if alert.via:
        parts.append("**Via** : " + " → ".join(alert.via))
    if alert.alternatives:
        parts.append(
            "**Alternatives vérifiées** : "
            + "; ".join(f"{a.name}" + (f" ({a.reason})" if a.reason else "") for a in alert.alternatives)
        )
    parts.append(
        f"**SFPC** : problème {proposal.problem.code} ({proposal.problem.label}) ; "
        f"intervention {proposal.intervention.code} ({proposal.intervention.label})"
    )
    return "\n\n".join(parts)


@dataclass(frozen=True, slots=True)
class CardRecord:
    service: str
    rule_id: str
    alert_type: str
    indicator: str
    suggestions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FeedbackRecord:
    received_at: dt.datetime
    service: str
    card: str
    known_card: bool
    rule_id: str | None
    outcome: str
    sfpc_outcome: str  # SFPC "devenir": 1 acceptée, 2 non acceptée
    accepted_suggestions: tuple[str, ...]
    override_reason: str | None
    has_comment: bool
    outcome_timestamp: dt.datetime


class FeedbackLog:
    """Cards issued and feedback received, in memory and append-only (bounded).

    Nothing is persisted yet: a restart loses the log. It is kept to measure acceptance per rule, not
    to audit a patient's care. The user's free-text comment is not stored (only that there was one):
    it may name the patient, and this log has neither access control nor retention rules.
    """

    def __init__(self, max_cards: int = 50_000, max_feedback: int = 100_000) -> None:
        self._lock = threading.Lock()
        self._cards: OrderedDict[str, CardRecord] = OrderedDict()
        self._max_cards = max_cards
        self.feedback: deque[FeedbackRecord] = deque(maxlen=max_feedback)

    def issued(self, card: str, record: CardRecord) -> None:
        with self._lock:
            self._cards[card] = record
            while len(self._cards) > self._max_cards:
                self._cards.popitem(last=False)

    def record(self, service: str, items: Sequence[CdsFeedbackItem]) -> tuple[int, int]:
        now = dt.datetime.now(dt.UTC)
        unknown = 0
        with self._lock:
            for item in items:
                card = self._cards.get(item.card)
                unknown += card is None
                reason = item.overrideReason
                self.feedback.append(
                    FeedbackRecord(
                        received_at=now,
                        service=service,
                        card=item.card,
                        known_card=card is not None,
                        rule_id=card.rule_id if card else None,
                        outcome=item.outcome,
                        sfpc_outcome="1" if item.outcome == "accepted" else "2",
                        accepted_suggestions=tuple(s.id for s in item.acceptedSuggestions or ()),
                        override_reason=reason.reason.code if reason and reason.reason else None,
                        has_comment=bool(reason and reason.userComment),
                        outcome_timestamp=item.outcomeTimestamp,
                    )
                )
        return len(items), unknown


class CdsServices:
    def __init__(self, engine: Engine, reader: FhirReader, log: FeedbackLog, max_lines: int) -> None:
        self.engine = engine
        self.reader = reader
        self.log = log
        self.max_lines = max_lines

    @staticmethod
    def describe(service_id: str) -> CdsServiceDescription:
        service = SERVICES.get(service_id)
        if service is None:
            raise NotFoundError(f"no CDS service {service_id!r}; see GET /cds-services")
        return service

    def call(self, service_id: str, request: CdsRequest, today: dt.date | None = None) -> CdsResponse:
        service = self.describe(service_id)
        if request.hook != service.hook:
            raise FieldError(
                "hook", f"service {service_id} answers the {service.hook} hook, not {request.hook!r}"
            )
        context = request.context
        patient_id = context.get("patientId")
        if not isinstance(patient_id, str) or not patient_id:
            raise FieldError("context.patientId", "required: the FHIR id of the patient")
        draft = validate_resource(context.get("draftOrders"), "context.draftOrders", "Bundle")
        assert isinstance(draft, Bundle)
        located = bundle_resources(draft, "context.draftOrders", draft=True)
        located.extend(self._prefetched(request.prefetch or {}))
        reading = self.reader.read(located, today)
        check_line_count(len(reading.lines), self.max_lines, "context.draftOrders")
        selections = self._selections(service, context, reading)
        report = self.engine.analyze(reading.prescription)
        return CdsResponse(cards=self.cards(service_id, report, reading, patient_id, selections))

    @staticmethod
    def _prefetched(prefetch: dict[str, Any]) -> list[Located]:
        out: list[Located] = []
        for key, value in prefetch.items():
            if value is None:
                continue  # the client could not or would not fetch it
            resource = validate_resource(value, f"prefetch.{key}")
            if isinstance(resource, Bundle):
                out.extend(bundle_resources(resource, f"prefetch.{key}"))
            else:
                out.append(Located(resource, f"prefetch.{key}"))
        return out

    @staticmethod
    def _selections(
        service: CdsServiceDescription, context: dict[str, Any], reading: ClinicalInput
    ) -> frozenset[int] | None:
        """Line indexes the clinician just selected (order-select), or None for "every draft order"."""
        if service.hook != "order-select":
            return None
        selections = context.get("selections")
        if not isinstance(selections, list) or not all(isinstance(s, str) for s in selections):
            raise FieldError("context.selections", "required: a list of references to draft orders")
        by_reference = {
            line.reference: i for i, line in enumerate(reading.lines) if line.draft and line.reference
        }
        chosen = set()
        for j, reference in enumerate(selections):
            if reference not in by_reference:
                raise FieldError(
                    f"context.selections.{j}", f"{reference!r} names no MedicationRequest of draftOrders"
                )
            chosen.add(by_reference[reference])
        return frozenset(chosen)

    def cards(
        self,
        service_id: str,
        report: Report,
        reading: ClinicalInput,
        patient_id: str,
        selections: frozenset[int] | None,
    ) -> list[CdsCard]:
        wanted = selections if selections is not None else {i for i, s in enumerate(reading.lines) if s.draft}
        cards = [
            self._card(service_id, alert, report, reading, patient_id)
            for alert in report.alerts
            if wanted.intersection(alert.lines)
        ]
        for line in report.lines:
            if line.index in wanted and line.status != "resolved":
                cards.append(self._unanalysed(line, reading.lines[line.index]))
        cards.sort(key=lambda c: _INDICATOR_ORDER[c.indicator])
        return cards

    def _card(
        self, service_id: str, alert: Alert, report: Report, reading: ClinicalInput, patient_id: str
    ) -> CdsCard:
        proposal = sfpc.propose(alert)
        suggestions = self._suggestions(alert, report, reading, patient_id)
        card = CdsCard(
            uuid=str(uuid.uuid4()),
            summary=summary(alert),
            detail=detail(alert, proposal),
            indicator=indicator(alert),
            source=CdsSource(
                label=source_label(alert),
                topic=CdsCoding(system=codes.IATRO_ALERT_TYPE, code=alert.type, display=alert.type),
            ),
            suggestions=suggestions or None,
            selectionBehavior="at-most-one" if suggestions else None,
            overrideReasons=OVERRIDE_REASONS,
        )
        self.log.issued(
            card.uuid,
            CardRecord(
                service_id, alert.rule_id, alert.type, card.indicator, tuple(s.uuid for s in suggestions)
            ),
        )
        return card

    @staticmethod
    def _unanalysed(line: LineReport, source: MedicationLine) -> CdsCard:
        reason = line.reason or "plusieurs produits possibles"
        return CdsCard(
            uuid=str(uuid.uuid4()),
            summary=summary(
                Alert(
                    type="unresolved",
                    severity="low",
                    source="",
                    rule_id="",
                    message=f"Non analysé : {source.display}",
                )
            ),
            detail=f"Iatro n'a pas reconnu cette prescription ({line.status} : {reason}) ; elle n'est pas "
            "couverte par l'analyse. Coder le médicament (CIS, CIP13) permet de l'analyser.",
            indicator="info",
            source=CdsSource(label="Iatro"),
        )

    def _suggestions(
        self, alert: Alert, report: Report, reading: ClinicalInput, patient_id: str
    ) -> list[CdsSuggestion]:
        out: list[CdsSuggestion] = []
        for alternative in alert.alternatives:
            index = _replaced_line(alert, alternative, report)
            if index is None:
                continue
            source = reading.lines[index]
            if not source.draft or not source.resource_id:
                continue  # only a draft order with an id can be withdrawn by the client
            replaced = ", ".join(s.name for s in report.lines[index].substances) or source.display
            resource = MedicationRequest(
                status="draft",
                intent=source.intent or "order",
                subject=Reference.model_validate(source.subject or {"reference": f"Patient/{patient_id}"}),
                medicationCodeableConcept=CodeableConcept(
                    coding=[Coding(system=codes.ATC, code=alternative.atc, display=alternative.name)]
                    if alternative.atc
                    else None,
                    text=alternative.name,
                ),
                note=[Annotation(text=f"Proposé par Iatro à la place de {replaced} ({alert.rule_id}).")],
            )
            out.append(
                CdsSuggestion(
                    label=f"Remplacer {replaced} par {alternative.name}",
                    uuid=str(uuid.uuid4()),
                    isRecommended=not out,
                    actions=[
                        CdsAction(
                            type="delete",
                            description=f"Retirer la prescription en brouillon : {source.display}",
                            resourceId=f"{source.resource_type}/{source.resource_id}",
                        ),
                        CdsAction(
                            type="create",
                            description=f"Prescrire {alternative.name} (posologie à définir)",
                            resource=resource.model_dump(mode="json", exclude_none=True),
                        ),
                    ],
                )
            )
        return out


def _replaced_line(alert: Alert, alternative: Alternative, report: Report) -> int | None:
    """The alert's line the alternative replaces: the one whose substance shares its ATC level 4, else
    level 3 (the alternative finder looks there), else its name in the finder's reason."""
    if alternative.atc:
        for length in (5, 4):
            for index in alert.lines:
                if index < len(report.lines) and any(
                    s.atc and s.atc[:length] == alternative.atc[:length]
                    for s in report.lines[index].substances
                ):
                    return index
    for index in alert.lines:
        if index < len(report.lines) and any(
            f"remplace {s.name} " in (alternative.reason or "") for s in report.lines[index].substances
        ):
            return index
    return None
