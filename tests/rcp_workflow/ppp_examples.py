"""Example plans for the PPP renderer tests.

Drug names and CIS codes are BDPM spécialités (knowledge_base/sources/bdpm, 2026-07-24 products);
rule ids are those of the compiled knowledge base (ANSM thésaurus 2020-10, STOPP/START v2). The
patient, the people and the organisations are made up. Only accepted and modified decisions are in
``items``: that is what the workflow hands the renderers.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from rcp_workflow.ppp.model import (
    FollowUp,
    Medication,
    Monitoring,
    PlanItem,
    PPPDocument,
    Professional,
)

KB_VERSION = "ansm-2020-10+bdpm-2026-07-24+atc-2026-04-25+1284425c"

GERIATRE = Professional("Dr Claire Vasseur", "geriatre", "Centre hospitalier de Valence")
PHARMACIEN_HOSPITALIER = Professional(
    "Julien Morel", "pharmacien_hospitalier", "Centre hospitalier de Valence"
)
MEDECIN_TRAITANT = Professional("Dr Hélène Garçon", "medecin_traitant", "Cabinet médical des Écoles")
PHARMACIEN_OFFICINE = Professional("Éloïse Bérard", "pharmacien_officine", "Pharmacie du Marché")

RCP_DATE = date(2026, 11, 12)

STOP_SERESTA = PlanItem(
    action="stop",
    drug="SERESTA 10 mg, comprimé",
    reason="Benzodiazépine prise depuis plus de 4 semaines : sédation prolongée, confusion, "
    "troubles de l'équilibre et chutes.",
    decision="modified",
    decided_by="Dr Hélène Garçon (médecin traitant)",
    responsible_role="medecin_traitant",
    before="1 cp le soir",
    comment="Arrêt progressif par paliers plutôt qu'arrêt immédiat (risque de sevrage) ; "
    "réévaluer le sommeil au suivi J45.",
    actip_problem="5",
    actip_intervention="2",
    source="STOPP D5 (STOPP/START v2, 2015)",
)
STOP_LAROXYL = PlanItem(
    action="stop",
    drug="LAROXYL 25 mg, comprimé pelliculé",
    reason="Antidépresseur tricyclique chez une patiente avec troubles cognitifs ; effets "
    "anticholinergiques.",
    decision="accepted",
    decided_by="Dr Claire Vasseur (gériatre)",
    responsible_role="medecin_traitant",
    before="1 cp le soir",
    actip_problem="1",
    actip_intervention="2",
    source="STOPP D1 (STOPP/START v2, 2015)",
)
MONITOR_ALDACTONE = PlanItem(
    action="monitor",
    drug="ALDACTONE 25 mg, comprimé sécable",
    reason="Spironolactone + inhibiteur de l'enzyme de conversion (périndopril) : précaution "
    "d'emploi, risque d'hyperkaliémie.",
    decision="accepted",
    decided_by="Julien Morel (pharmacien hospitalier)",
    responsible_role="medecin_traitant",
    before="1 cp le matin",
    after="1 cp le matin",
    actip_problem="6.2",
    actip_intervention="5",
    source="ansm:inhibiteurs de l enzyme de conversion+spironolactone (thésaurus ANSM 2020-10)",
)
CHANGE_INEXIUM = PlanItem(
    action="change",
    drug="INEXIUM 40 mg, comprimé gastro-résistant",
    reason="IPP à pleine dose depuis plus de 8 semaines pour une œsophagite non compliquée : "
    "réduction de dose indiquée.",
    decision="modified",
    decided_by="Dr Hélène Garçon (médecin traitant)",
    responsible_role="medecin_traitant",
    before="40 mg, 1 cp le matin",
    after="INEXIUM 20 mg, 1 cp le matin",
    comment="Réduction à 20 mg plutôt qu'arrêt ; arrêt à rediscuter au suivi J90.",
    actip_problem="4",
    actip_intervention="7",
    source="STOPP F2 (STOPP/START v2, 2015)",
)
START_UVEDOSE = PlanItem(
    action="start",
    drug="UVEDOSE 100 000 UI, solution buvable en ampoule",
    reason="Chutes répétées sans supplémentation en vitamine D.",
    decision="accepted",
    decided_by="Dr Claire Vasseur (gériatre)",
    responsible_role="medecin_traitant",
    after="posologie selon le RCP du produit, à fixer par le médecin traitant",
    actip_problem="2",
    actip_intervention="1",
    source="START E5 (STOPP/START v2, 2015)",
)
CONTINUE_ELIQUIS = PlanItem(
    action="continue",
    drug="ELIQUIS 2,5 mg, comprimé pelliculé",
    reason="Dose réduite conforme : âge ≥ 80 ans et poids ≤ 60 kg.",
    decision="accepted",
    decided_by="Julien Morel (pharmacien hospitalier)",
    responsible_role="pharmacien_officine",
    before="1 cp matin et soir",
    after="1 cp matin et soir",
)

ITEMS = (STOP_SERESTA, STOP_LAROXYL, MONITOR_ALDACTONE, CHANGE_INEXIUM, START_UVEDOSE, CONTINUE_ELIQUIS)


def iatroprev_plan() -> PPPDocument:
    """A day-hospital Iatroprev case: six kept decisions (a seventh, refused, is not in the plan)."""
    return PPPDocument(
        case_id="IPV-2026-0042",
        pathway="iatroprev",
        patient_pseudonym="PAT-7F3K2Q",
        rcp_date=RCP_DATE,
        issued_at=datetime(2026, 11, 14, 10, 30, tzinfo=UTC),
        issued_by=PHARMACIEN_HOSPITALIER,
        kb_version=KB_VERSION,
        items=ITEMS,
        new_medications=(
            Medication(
                "ELIQUIS 2,5 mg, comprimé pelliculé", "1 cp matin et soir", "unchanged", "69340279", "B01AF02"
            ),
            Medication(
                "ALDACTONE 25 mg, comprimé sécable", "1 cp le matin", "unchanged", "64565845", "C03DA01"
            ),
            Medication(
                "COVERSYL 5 mg, comprimé pelliculé sécable",
                "1 cp le matin",
                "unchanged",
                "63849839",
                "C09AA04",
            ),
            Medication(
                "INEXIUM 20 mg, comprimé gastro-résistant", "1 cp le matin", "changed", "64578892", "A02BC05"
            ),
            Medication(
                "UVEDOSE 100 000 UI, solution buvable en ampoule",
                "selon le RCP du produit",
                "new",
                "63489259",
                "A11CC05",
            ),
        ),
        monitoring=(
            Monitoring(
                "kaliémie et créatininémie (µmol/L)",
                "1 fois par semaine pendant le premier mois, puis 1 fois par mois",
                "medecin_traitant",
            ),
            Monitoring(
                "sommeil, anxiété, signes de sevrage après l'arrêt de l'oxazépam",
                "au suivi J45",
                "pharmacien_officine",
            ),
        ),
        follow_ups=(
            FollowUp("Suivi J45", RCP_DATE + timedelta(days=45)),
            FollowUp("Suivi J90", RCP_DATE + timedelta(days=90)),
        ),
        participants=(GERIATRE, PHARMACIEN_HOSPITALIER, MEDECIN_TRAITANT, PHARMACIEN_OFFICINE),
        patient_age=84,
        patient_sex="F",
    )


def long_plan(count: int = 60) -> PPPDocument:
    """A plan with ``count`` items: the six decisions above in turn, numbered so each row can be found
    in the text, with a longer reason so that cells wrap."""
    items = []
    for n in range(count):
        base = ITEMS[n % len(ITEMS)]
        items.append(
            replace(
                base,
                drug=f"{base.drug} [ligne {n + 1:02d}]",
                reason=base.reason + " Motif détaillé pour vérifier le retour à la ligne dans les cellules.",
            )
        )
    return replace(iatroprev_plan(), case_id="IPV-2026-0099", items=tuple(items))
