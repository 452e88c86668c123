"""Issue 8, in a real browser: the whole Iatroprev pathway walked through the French pages.

Log in, create a case from a prescription (real BDPM names: the golden prescription 04, amiodarone +
escitalopram), see its alerts grouped by severity, include the patient, add recommendations (one
from an alert), plan and hold the RCP recording a decision per recommendation, issue the PPP and
download it (PDF parsed back), record the day-45 follow-up. Then the negative cases a browser meets:
no session goes to the login page, another pharmacy's pharmacist is refused the case.
"""

from __future__ import annotations

import io
import re

import pdfplumber
from playwright.sync_api import Page, expect

from tests.web.conftest import log_in

HOSPITAL_PHARMACIST = "pharmacien.hospitalier@demo.iatro.local"
OTHER_PHARMACY = "pharmacien.marche@demo.iatro.local"
PRESCRIPTION = "\n".join(
    (
        "CORDARONE 200 mg, 1 cp/j",
        "SEROPLEX 10 mg, 1 cp le matin",
        "ELIQUIS 2,5 mg, 1 cp matin et soir",
        "LASILIX 40 mg, 1 cp le matin",
        "DOLIPRANE 500 mg, 2 gél si douleur, max 3 fois/j",
    )
)


def state(page: Page) -> str:
    return page.locator("#etat").inner_text().strip()


def test_whole_pathway_in_the_browser(page: Page) -> None:
    log_in(page, HOSPITAL_PHARMACIST)

    # Repérage: a new case from the prescription, analysed by the server's engine.
    page.get_by_role("link", name="Nouveau dossier").first.click()
    page.locator("[name=pathway]").select_option("iatroprev")
    page.get_by_label("Lignes de l'ordonnance").fill(PRESCRIPTION)
    page.get_by_label("Âge").fill("84")
    page.locator("[name=sex]").select_option("F")
    page.get_by_label("Poids (kg)").fill("52")
    page.get_by_label("Créatinine (µmol/L)").fill("110")
    page.get_by_label("Pathologies (codes CIM-10)").fill("I48, F32.1, I10")
    page.get_by_role("button", name="Créer le dossier et analyser").click()
    page.wait_for_url(re.compile(r"/dossiers/[0-9a-f]+\?ok=created"))
    case_url = page.url.split("?")[0]
    expect(page.locator(".flash")).to_have_text("Dossier créé.")
    assert state(page) == "Repérage"

    # The alerts, grouped by severity: the contre-indication first, with its explanation.
    groups = page.locator(".alert-group h3")
    expect(groups.first).to_contain_text("Contre-indication")
    ci = page.locator(".alert-group.g-contre-indication .alert").first
    expect(ci.locator(".drugs")).to_have_text("amiodarone + escitalopram")
    ci.get_by_text("Explication").click()
    expect(ci.locator("dd.mono").first).to_contain_text("ansm:")
    expect(page.locator(".alert-group.g-precaution-emploi")).to_be_visible()
    expect(page.locator(".banner.incomplete")).to_have_count(0)  # every line resolved

    # Inclusion: the analysis does not find the Iatroprev town door met (5 lines < 10), so the team
    # includes with a reason, after information and consent.
    page.get_by_label("Patient (ou aidant) informé").check()
    page.get_by_label("Consentement donné").check()
    page.get_by_label("Justification").fill("Hospitalisation récente pour chute sous amiodarone et ISRS.")
    page.locator("#include").get_by_role("button", name="Inclure le patient").click()
    expect(page.locator(".flash")).to_have_text("Patient inclus.")
    assert state(page) == "Inclusion"

    page.get_by_role("button", name="Commencer la revue de médication").click()
    assert state(page) == "Revue de médication"

    # A recommendation from the contre-indication alert: drug and Act-IP codes come pre-filled.
    page.locator(".alert-group.g-contre-indication .alert").first.get_by_role(
        "link", name="Recommander à partir de cette alerte"
    ).click()
    form = page.locator("#add_recommendation")
    expect(form.locator("[name=actip_problem]")).to_have_value("6.4")
    form.locator("[name=action]").select_option("stop")
    form.locator("[name=drug]").fill("escitalopram")
    form.get_by_role("button", name="Ajouter la recommandation").click()
    expect(page.locator(".flash")).to_have_text("Recommandation ajoutée.")

    # A second one typed by hand: monitoring of the kaliémie under furosemide.
    form = page.locator("#add_recommendation")
    form.locator("[name=action]").select_option("monitor")
    form.locator("[name=drug]").fill("furosemide")
    form.locator("[name=rationale]").fill(
        "Diurétique de l'anse avec deux torsadogènes : surveiller la kaliémie."
    )
    form.locator("[name=actip_problem]").select_option("6.2")
    form.locator("[name=actip_intervention]").select_option("5")
    form.locator("[name=monitoring_what]").fill("kaliémie")
    form.locator("[name=monitoring_when]").fill("à J7")
    form.get_by_role("button", name="Ajouter la recommandation").click()
    expect(page.locator("#recommandations tbody tr")).to_have_count(2)

    # RCP planned, by video, with the médecin traitant.
    plan = page.locator("#plan_rcp")
    plan.locator("[name=scheduled_at]").fill("2026-12-01T14:00")
    plan.locator("[name=modality]").select_option("video")
    plan.get_by_label(re.compile("Dr Marc Leroy")).check()
    plan.get_by_role("button", name="Planifier la RCP").click()
    assert state(page) == "RCP planifiée"
    expect(page.locator("#rcp")).to_contain_text("1 décembre 2026 à 14 h 00")

    # The RCP view: one row per recommendation, decided with htmx, without reloading the page.
    page.get_by_role("link", name="Vue RCP").click()
    rows = page.locator("form.decision-row")
    expect(rows).to_have_count(2)
    rows.nth(0).get_by_label("Acceptée").check()
    rows.nth(0).get_by_label("Commentaire").fill("Relais par sertraline à discuter avec le psychiatre.")
    rows.nth(0).get_by_label("Commentaire").press("Enter")
    expect(rows.nth(0)).to_have_class(re.compile("saved"))
    # The keyboard goes on to the next row.
    expect(rows.nth(1).get_by_label("Acceptée")).to_be_focused()
    rows.nth(1).get_by_label("Refusée").check()
    rows.nth(1).get_by_label("Commentaire").fill("Kaliémie déjà suivie par le néphrologue.")
    rows.nth(1).get_by_role("button", name="Enregistrer").click()
    expect(rows.nth(1)).to_have_class(re.compile("saved"))
    expect(page.locator("#reste")).to_have_text("Toutes les recommandations sont décidées.")
    page.get_by_role("button", name="Marquer la RCP tenue").click()
    expect(page.locator(".flash")).to_have_text("RCP tenue : décisions enregistrées.")
    assert state(page) == "RCP tenue"

    # PPP issued: the accepted decision is in it, the refused one is not.
    page.get_by_role("button", name="Émettre le plan pharmaceutique").click()
    assert state(page) == "PPP émis"
    page.get_by_role("link", name="Voir le plan").click()
    decisions = page.locator("table").first
    expect(decisions).to_contain_text("escitalopram")
    expect(decisions).to_contain_text("Relais par sertraline")
    expect(decisions).not_to_contain_text("Kaliémie déjà suivie")
    with page.expect_download() as download_info:
        page.locator("#telecharger-pdf").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".pdf")
    pdf = download.path().read_bytes()
    assert pdf.startswith(b"%PDF")
    with pdfplumber.open(io.BytesIO(pdf)) as document:
        text = "\n".join(p.extract_text() or "" for p in document.pages)
    assert "escitalopram" in text
    assert "Plan pharmaceutique personnalisé" in text

    # Day-45 follow-up: the plan's item implemented.
    page.goto(case_url)
    page.get_by_role("link", name="Saisir le suivi J45").click()
    page.get_by_label("Oui").first.check()
    page.get_by_label("Résultat pour escitalopram").fill("Escitalopram arrêté, relais fait ; QTc 440 ms.")
    page.get_by_role("button", name="Enregistrer le suivi J45").click()
    expect(page.locator(".flash")).to_have_text("Suivi enregistré.")
    assert state(page) == "Suivi J45 fait"
    expect(page.locator("#suivis")).to_contain_text("1 / 1")

    # The journal shows the download of the PPP.
    page.get_by_role("link", name="Journal").click()
    expect(page.locator("tbody")).to_contain_text("téléchargement")


def test_pages_need_a_session_and_the_right_pharmacy(page: Page, server: str) -> None:
    # No session: the login page, then back to the page asked for.
    page.goto("/dossiers/nouveau")
    page.wait_for_url(re.compile(r"/connexion\?suite="))
    page.get_by_label("E-mail").fill(HOSPITAL_PHARMACIST)
    page.get_by_label("Mot de passe").fill("not-the-password")
    page.get_by_role("button", name="Se connecter").click()
    expect(page.locator(".error-box")).to_have_text("E-mail ou mot de passe incorrect.")
    page.get_by_label("Mot de passe").fill("demo-iatro")
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url("**/dossiers/nouveau")

    page.get_by_label("Lignes de l'ordonnance").fill(
        "KARDEGIC 75 mg, 1 sachet/j\nPREVISCAN 20 mg, 1 cp le soir"
    )
    page.get_by_label("Âge").fill("81")
    page.get_by_role("button", name="Créer le dossier et analyser").click()
    page.wait_for_url(re.compile(r"/dossiers/[0-9a-f]+\?ok=created"))
    case_url = page.url.split("?")[0]

    # Logged out, then in as the pharmacist of another officine: the case is refused.
    page.get_by_role("button", name="Se déconnecter").click()
    page.wait_for_url(re.compile(r"/connexion"))
    log_in(page, OTHER_PHARMACY)
    response = page.goto(case_url)
    assert response is not None and response.status == 403
    expect(page.locator("h1")).to_have_text("Accès refusé")
    expect(page.locator("body")).not_to_contain_text("PREVISCAN")
