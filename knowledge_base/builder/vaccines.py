"""The transcribed French vaccination rules for older adults, read into :class:`VaccineRule` objects.

Source: ``knowledge_base/sources/fr_vaccines_older_adults/`` (read its SOURCE.md): a hand-made CSV of
seven rules whose schedules, intervals and campaign dates are written in prose ("≥6 mois après
dernière injection ou infection; ≥3 mois si ≥80 ans"). The numbers the engine needs are written
below, once per rule (``_READINGS``), and each reading lists the exact fragments of the CSV it was
read from. Loading checks every fragment is still in the CSV: when the transcription is updated
(the calendar changes every year) the loader refuses the stale reading instead of applying last
year's numbers to this year's text. A CSV rule without a reading, or a reading without its rule, is
refused for the same reason.

Nothing is added to what the CSV says. What it leaves in prose without a usable structure (risk
groups listed in words, conditions not mapped to CIM-10 codes) goes to ``unmapped`` and is shown in
the report as not assessed.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from iatro.checks.vaccines import Campaign, RuleKind, VaccineKey, VaccineRule
from iatro.errors import SourceError
from knowledge_base.builder.files import SOURCES_DIR, read_text

SOURCE_DIR = SOURCES_DIR / "fr_vaccines_older_adults"
RULES_CSV = SOURCE_DIR / "fr_vaccines_older_adults.csv"
SOURCE_TITLE = (
    "Calendrier des vaccinations et recommandations vaccinales 2025 (ministère de la Santé) et avis HAS, "
    "transcrits dans knowledge_base/sources/fr_vaccines_older_adults"
)
RULE_PREFIX = "fr_vaccines_older_adults:"

Column = Literal[
    "disease",
    "vaccine",
    "population",
    "age_min",
    "alt_condition",
    "schedule",
    "interval_or_timing",
    "valid_from",
    "note",
]


@dataclass(frozen=True)
class _Reading:
    """The structured reading of one CSV rule and the CSV fragments it rests on."""

    vaccine: VaccineKey
    kind: RuleKind
    quotes: tuple[tuple[Column, str], ...]
    age_min: int | None = None
    alt_age_min: int | None = None
    alt_conditions: tuple[str, ...] = ()
    interval_months: int | None = None
    reduced_interval_months: int | None = None
    reduced_from_age: int | None = None
    doses: int = 1
    dose_interval_months: int | None = None
    campaigns: tuple[Campaign, ...] = ()
    prior_dose: Literal["complete", "undecided"] = "complete"
    prior_dose_caveat: str | None = None
    caveat_if_dose_before: dt.date | None = None
    unmapped: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())


_READINGS: dict[str, _Reading] = {
    "DTP_BOOST": _Reading(
        vaccine="dtp",
        kind="interval",
        # From 65 the boosters are every 10 years (75, 85, 95): a dose older than 10 years is a booster
        # due (or overdue). The fixed-age boosters before 65 (25, 45) are not read: Iatro's patients
        # are older adults and their age alone does not say which booster was last due.
        age_min=65,
        interval_months=120,
        quotes=(
            ("age_min", "25"),
            ("schedule", "rappels à 25, 45 et 65 ans puis tous les 10 ans"),
            ("interval_or_timing", "10 ans après 65 ans"),
        ),
        unmapped=(
            "rappels à âge fixe de 25 et 45 ans (avant 65 ans) non évalués",
            "l'intervalle de 10 ans court depuis la dernière dose enregistrée : une dose hors calendrier "
            "n'est pas réalignée sur les âges fixes (75, 85, 95 ans)",
        ),
    ),
    "FLU_ANNUAL": _Reading(
        vaccine="grippe",
        kind="seasonal",
        age_min=65,
        campaigns=(Campaign("campagne grippe 2025-2026", dt.date(2025, 10, 14), dt.date(2026, 1, 31)),),
        quotes=(
            ("age_min", "65"),
            ("schedule", "1 dose chaque saison"),
            ("interval_or_timing", "14 oct. 2025 → 31 janv. 2026"),
        ),
        unmapped=("personnes à risque de moins de 65 ans (liste non transcrite dans la source)",),
    ),
    "COVID_AUTUMN": _Reading(
        vaccine="covid-19",
        kind="interval",
        age_min=65,
        interval_months=6,
        reduced_interval_months=3,
        reduced_from_age=80,
        # The source gives the start of the autumn 2025 campaign, not its end.
        campaigns=(Campaign("campagne Covid-19 automne 2025", dt.date(2025, 10, 14), None),),
        quotes=(
            ("age_min", "65"),
            ("interval_or_timing", "≥6 mois après dernière injection ou infection"),
            ("interval_or_timing", "≥3 mois si ≥80 ans"),
            ("valid_from", "début 14 oct. 2025"),
        ),
        unmapped=(
            "comorbidités à risque, immunodépression, résidents EHPAD/USLD, entourage (non structurés)",
            "infection Covid-19 récente (non renseignée dans l'entrée ; "
            "l'intervalle part aussi d'une infection)",
        ),
    ),
    "COVID_SPRING": _Reading(
        vaccine="covid-19",
        kind="interval",
        age_min=80,
        interval_months=3,
        # "14/15 juin": the earlier end is used, the one every cited page agrees the campaign reached.
        campaigns=(Campaign("campagne Covid-19 printemps 2025", dt.date(2025, 4, 14), dt.date(2025, 6, 14)),),
        quotes=(
            ("age_min", "80"),
            ("schedule", "14 avril → 14/15 juin 2025"),
            ("interval_or_timing", "≥3 mois après dernière injection ou infection"),
        ),
        unmapped=(
            "immunodéprimés, résidents EHPAD/USLD, personnes à très haut risque (non structurés)",
            "infection Covid-19 récente (non renseignée dans l'entrée)",
        ),
    ),
    "PNEUMO_PCV20": _Reading(
        vaccine="pneumocoque",
        kind="once",
        age_min=65,
        # The conduct for adults already vaccinated (PCV13/PPV23) was not transcribed (SOURCE.md):
        # with any recorded pneumococcal dose the rule stays undecided.
        prior_dose="undecided",
        quotes=(
            ("age_min", "65"),
            ("schedule", "1 dose unique"),
            ("schedule", "non antérieurement vacciné"),
            ("note", "NON vérifiée ici"),
        ),
        unmapped=(
            "adultes de 18 à 64 ans à risque (conditions listées en prose, non associées à la CIM-10)",
        ),
    ),
    "ZONA_RZV": _Reading(
        vaccine="zona",
        kind="series",
        age_min=65,
        doses=2,
        dose_interval_months=2,
        prior_dose_caveat=(
            "une dose 'zona' enregistrée peut être du Zostavax (vaccin vivant retiré le 30 juin 2024) : "
            "le vaccin recombinant reste recommandé après Zostavax"
        ),
        caveat_if_dose_before=dt.date(2024, 6, 30),
        quotes=(
            ("age_min", "65"),
            ("schedule", "2 doses IM à 2 mois d'intervalle"),
            ("schedule", "ne pas recommencer si délai dépassé"),
            ("interval_or_timing", "rappel non établi"),
            ("alt_condition", "vaccination antérieure par Zostavax"),
            ("note", "Zostavax retiré du marché FR 30 juin 2024"),
        ),
        unmapped=("immunodéprimés de 18 à 64 ans (non structurés)",),
    ),
    "VRS_OLDER": _Reading(
        vaccine="vrs",
        kind="once",
        age_min=75,
        alt_age_min=65,
        # The source names BPCO and heart failure as examples ("notamment"); only those two are read.
        alt_conditions=("J44", "I50"),
        quotes=(
            ("age_min", "75"),
            ("population", "pathologie respiratoire chronique (notamment BPCO)"),
            ("population", "cardiaque chronique (notamment IC)"),
            ("schedule", "1 dose"),
            ("interval_or_timing", "HAS ne se prononce pas sur un rappel"),
        ),
        unmapped=(
            "65-74 ans : autres pathologies respiratoires ou cardiaques chroniques que BPCO (J44) et "
            "insuffisance cardiaque (I50) non évaluées",
        ),
    ),
}


def _read_sources(path: Path) -> dict[str, str]:
    rows = csv.DictReader(io.StringIO(read_text(path)))
    return {row["key"].strip(): row["url"].strip() for row in rows}


def load_vaccine_rules(path: Path = RULES_CSV) -> list[VaccineRule]:
    """Parse the transcribed CSV (and its ``sources.csv`` beside it) into checked rules."""
    sources = _read_sources(path.parent / "sources.csv")
    rows = list(csv.DictReader(io.StringIO(read_text(path))))
    seen: set[str] = set()
    rules: list[VaccineRule] = []
    for row in rows:
        rule_id = row["rule_id"].strip()
        reading = _READINGS.get(rule_id)
        if reading is None:
            raise SourceError(f"{path}: rule {rule_id} has no structured reading in {__name__}")
        for column, fragment in reading.quotes:
            if fragment not in row[column]:
                raise SourceError(
                    f"{path}: {rule_id}: {column} no longer says {fragment!r} — re-read the rule before use"
                )
        keys = [k.strip() for k in row["source_keys"].split(";") if k.strip()]
        unknown = [k for k in keys if k not in sources]
        if unknown:
            raise SourceError(f"{path}: {rule_id}: source keys {unknown} are not in sources.csv")
        seen.add(rule_id)
        rules.append(
            VaccineRule(
                rule_id=RULE_PREFIX + rule_id,
                vaccine=reading.vaccine,
                disease=row["disease"].strip(),
                product=row["vaccine"].strip(),
                schedule=row["schedule"].strip(),
                kind=reading.kind,
                source=f"{SOURCE_TITLE} — pages: {'; '.join(sources[k] for k in keys)}",
                edition=row["valid_from"].strip(),
                valid_from=row["valid_from"].strip(),
                age_min=reading.age_min,
                alt_age_min=reading.alt_age_min,
                alt_conditions=reading.alt_conditions,
                interval_months=reading.interval_months,
                reduced_interval_months=reading.reduced_interval_months,
                reduced_from_age=reading.reduced_from_age,
                doses=reading.doses,
                dose_interval_months=reading.dose_interval_months,
                campaigns=reading.campaigns,
                prior_dose=reading.prior_dose,
                prior_dose_caveat=reading.prior_dose_caveat,
                caveat_if_dose_before=reading.caveat_if_dose_before,
                unmapped=reading.unmapped,
                notes=tuple(n for n in (row["note"].strip(),) if n),
            )
        )
    unread = sorted(set(_READINGS) - seen)
    if unread:
        raise SourceError(f"{path}: readings without a rule in the CSV: {unread}")
    return rules
