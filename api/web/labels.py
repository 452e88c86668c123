"""French labels of the workflow's codes (roles, states, actions, outcomes), for the pages."""

from __future__ import annotations

ROLE_LABELS: dict[str, str] = {
    "medecin_traitant": "Médecin traitant",
    "pharmacien_officine": "Pharmacien d'officine",
    "pharmacien_hospitalier": "Pharmacien hospitalier",
    "geriatre": "Gériatre",
    "coordinateur": "Coordinateur",
}

PATHWAY_LABELS: dict[str, str] = {
    "iatroprev": "Iatroprev",
    "optimedoc": "Optimedoc",
    "bpm": "Bilan partagé de médication",
}

STATE_LABELS: dict[str, str] = {
    "reperage": "Repérage",
    "inclusion": "Inclusion",
    "medication_review": "Revue de médication",
    "rcp_planned": "RCP planifiée",
    "rcp_held": "RCP tenue",
    "ppp_issued": "PPP émis",
    "followup_45": "Suivi J45 fait",
    "followup_90": "Suivi J90 fait",
    "information_interview": "Entretien de recueil",
    "bpm_analysis": "Analyse des traitements",
    "summary_sent": "Synthèse envoyée",
    "advice_interview": "Entretien conseil",
    "adherence_followup": "Suivi de l'observance",
    "closed": "Clôturé",
    "stopped": "Arrêté",
}

# The steps shown as a progress line, per kind of pathway.
RCP_STEPS: tuple[str, ...] = (
    "reperage", "inclusion", "medication_review", "rcp_planned", "rcp_held", "ppp_issued",
    "followup_45", "followup_90", "closed",
)  # fmt: skip
BPM_STEPS: tuple[str, ...] = (
    "reperage", "inclusion", "information_interview", "bpm_analysis", "summary_sent",
    "advice_interview", "adherence_followup", "closed",
)  # fmt: skip

ACTION_LABELS: dict[str, str] = {
    "include": "Inclure le patient",
    "start_review": "Commencer la revue de médication",
    "attach_analysis": "Analyser une nouvelle liste",
    "add_recommendation": "Ajouter une recommandation",
    "plan_rcp": "Planifier la RCP",
    "record_decision": "Enregistrer les décisions (RCP)",
    "hold_rcp": "Marquer la RCP tenue",
    "issue_ppp": "Émettre le plan pharmaceutique",
    "record_followup_45": "Saisir le suivi J45",
    "record_followup_90": "Saisir le suivi J90",
    "update_billing": "Mettre à jour la facturation",
    "close": "Clôturer le dossier",
    "stop": "Arrêter le parcours",
    "add_participant": "Ajouter un participant",
    "record_information_interview": "Saisir l'entretien de recueil",
    "record_bpm_analysis": "Saisir l'analyse des traitements",
    "send_summary": "Envoyer la synthèse au médecin",
    "record_advice_interview": "Saisir l'entretien conseil",
    "record_adherence_followup": "Saisir le suivi de l'observance",
}

OUTCOME_LABELS: dict[str, str] = {"accepted": "Acceptée", "refused": "Refusée", "modified": "Modifiée"}

PLAN_ACTION_LABELS: dict[str, str] = {
    "stop": "Arrêter",
    "start": "Débuter",
    "change": "Modifier",
    "continue": "Poursuivre",
    "monitor": "Surveiller",
}

MODALITY_LABELS: dict[str, str] = {
    "video": "Visioconférence",
    "phone": "Téléphone",
    "presentiel": "Présentiel",
}

ADHERENCE_LABELS: dict[str, str] = {"good": "Bonne", "partial": "Partielle", "poor": "Mauvaise"}

DIFFICULTY_LABELS: dict[str, str] = {
    "swallowing": "Difficulté à avaler",
    "opening_packaging": "Ouverture des conditionnements",
    "understanding": "Compréhension du traitement",
    "remembering": "Oublis",
    "side_effects": "Effets indésirables",
    "cost": "Coût",
    "other": "Autre",
}

BILLING_LABELS: dict[str, str] = {
    "convention_signed": "Convention signée",
    "participation_agreement_signed": "Accord de participation signé",
    "followup_45_proof": "Preuve du suivi à 45 jours",
    "followup_90_proof": "Preuve du suivi à 90 jours",
}
