"""Vaccinations due for an older adult, from rules given by the caller (:class:`VaccineRule`).

The engine does not read the transcribed calendar itself (``iatro`` never depends on
``knowledge_base`` files): the build side parses it (``knowledge_base.builder.vaccines``) and the
caller passes the rules to :class:`VaccineCheck`.

What "due" means, per rule kind:

- ``interval`` — due when no dose was recorded or the last one is older than ``interval_months``
  (``reduced_interval_months`` from ``reduced_from_age``): dTP boosters, Covid-19 boosters.
- ``seasonal`` — one dose per campaign: due when no dose was recorded since the campaign opened.
- ``series`` — ``doses`` doses ``dose_interval_months`` apart: the next dose is due once the interval
  has passed since the previous one (a late dose is given, the series is not restarted).
- ``once`` — a single dose: due when none was recorded; after a recorded dose the rule is complete
  or, when the source leaves the conduct open (``prior_dose="undecided"``), undecided.

Campaign-bound rules (``campaigns`` non-empty) are due only inside a campaign window; outside, the
report gives the windows instead. A window whose end the source does not give is treated as open
from its start, and the alert says the end is unknown — for at most twelve months: a campaign named
for one season cannot run into the next year's, and past that the transcription is stale, not the
patient due (a staleness guard of Iatro's, not a clinical value).

Inputs. Without the analysis date nothing can be due (reported missing, no recommendation); without
age no rule applies (reported missing). Conditions are closed-world as everywhere in Iatro. The
vaccinations list is what the caller knows: "no dose recorded" is what the alert says, never "not
vaccinated". Parts of a rule's population that are not structured (risk groups the source lists in
prose) are reported under ``unmapped``, never guessed.

Severity. Every vaccine alert is ``low``: a prevention reminder, not a hazard of the prescription.
That is Iatro's display choice; no source grades it.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from functools import partial
from typing import Literal

from pydantic import TypeAdapter

from iatro.checks.context import CheckContext
from iatro.checks.result import AlertMemo, CheckResult, compiled_table
from iatro.kb.store import KnowledgeBase
from iatro.model.prescription import Vaccination
from iatro.model.report import Alert

VaccineKey = Literal["grippe", "covid-19", "pneumocoque", "zona", "vrs", "dtp"]
RuleKind = Literal["interval", "seasonal", "series", "once"]
Status = Literal["due", "up_to_date", "not_yet", "outside_campaign", "undecided", "not_applicable"]
SEVERITY = "low"


VACCINE_RULES = "vaccine_rules.json"  # the rules as the KB build compiles them
OPEN_END_MONTHS = 12  # staleness guard for campaigns without an end date (see the module docstring)
_MEMO_SIZE = 50_000  # remembered rule outcomes (a long-running server sees ever new patients)


@dataclass(frozen=True, slots=True)
class Campaign:
    label: str
    start: dt.date
    end: dt.date | None = None  # None: the source gives no end date

    def contains(self, day: dt.date) -> bool:
        if self.end is None:
            return self.start <= day < add_months(self.start, OPEN_END_MONTHS)
        return self.start <= day <= self.end

    def describe(self) -> str:
        end = self.end.isoformat() if self.end else "end not given by the source"
        return f"{self.label}: {self.start.isoformat()} → {end}"


@dataclass(frozen=True, slots=True)
class VaccineRule:
    rule_id: str
    vaccine: VaccineKey
    disease: str
    product: str
    schedule: str
    kind: RuleKind
    source: str
    edition: str
    valid_from: str
    age_min: int | None = None
    # Alternative population: from ``alt_age_min`` with one of the CIM-10 prefixes ``alt_conditions``.
    alt_age_min: int | None = None
    alt_conditions: tuple[str, ...] = ()
    interval_months: int | None = None
    reduced_interval_months: int | None = None
    reduced_from_age: int | None = None
    doses: int = 1
    dose_interval_months: int | None = None
    campaigns: tuple[Campaign, ...] = ()
    prior_dose: Literal["complete", "undecided"] = "complete"
    # Shown when a dose recorded before ``caveat_if_dose_before`` could have been another vaccine.
    prior_dose_caveat: str | None = None
    caveat_if_dose_before: dt.date | None = None
    unmapped: tuple[str, ...] = ()  # population or conditions of the source the rule does not read
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Outcome:
    status: Status
    why: str
    next_due: dt.date | None = None
    campaign: Campaign | None = None


def add_months(day: dt.date, months: int) -> dt.date:
    """Calendar months ("≥ 6 mois"), clamped to the month's last day (31 Aug + 6 months = 28/29 Feb)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


class VaccineCheck:
    def __init__(self, rules: list[VaccineRule]) -> None:
        ids = [r.rule_id for r in rules]
        if len(ids) != len(set(ids)):
            raise ValueError("vaccine rule ids must be unique")
        self.rules = tuple(rules)
        # An alert reads its rule (one per id) and the outcome's text and campaign.
        self._alerts = AlertMemo()
        # (rule id, age, conditions, doses, date) -> the rule's outcome and report entry (``_assess``).
        self._outcomes: dict[
            tuple[str, int, tuple[str, ...], tuple[dt.date, ...], dt.date], tuple[Outcome, dict[str, object]]
        ] = {}

    def run(self, ctx: CheckContext) -> CheckResult:
        patient = ctx.patient
        missing: list[str] = []
        if ctx.date is None:
            missing.append("date")
        if patient.age is None:
            missing.append("age")
        if ctx.date is None or patient.age is None:
            # Nothing can be due without both: say so rather than recommend at an unknown time.
            scores: dict[str, object] = {
                "date": ctx.date.isoformat() if ctx.date else None,
                "rules": {},
                "not_assessed": "no analysis date" if ctx.date is None else "no age",
            }
            return CheckResult(scores={"vaccines": scores}, missing_inputs=tuple(missing))
        today, age = ctx.date, patient.age
        alerts: list[Alert] = []
        report: dict[str, object] = {}
        for rule in self.rules:
            doses = tuple(
                sorted(v.date for v in patient.vaccinations if v.vaccine == rule.vaccine and v.date <= today)
            )
            # A rule's outcome reads the patient's age, conditions and doses of its vaccine, and the date.
            key = (rule.rule_id, age, patient.conditions, doses, today)
            found = self._outcomes.get(key)
            if found is None:
                if len(self._outcomes) >= _MEMO_SIZE:
                    self._outcomes.clear()
                found = self._outcomes[key] = self._assess(rule, age, patient.conditions, doses, today)
            outcome, entry = found
            report[rule.rule_id] = {k: list(v) if isinstance(v, tuple) else v for k, v in entry.items()}
            if outcome.status == "due":
                alert_key = (rule.rule_id, outcome.why, outcome.campaign)
                alerts.append(self._alerts.get(alert_key, (), partial(self._alert, rule, outcome)))
        ignored = [v for v in patient.vaccinations if v.date > today]
        scores = {"date": today.isoformat(), "rules": report}
        if ignored:
            scores["ignored_future_vaccinations"] = [_vaccination(v) for v in ignored]
        return CheckResult(alerts=tuple(alerts), scores={"vaccines": scores}, missing_inputs=tuple(missing))

    # -- evaluation --------------------------------------------------------------------------------

    def _assess(
        self,
        rule: VaccineRule,
        age: int,
        conditions: tuple[str, ...],
        doses: tuple[dt.date, ...],
        today: dt.date,
    ) -> tuple[Outcome, dict[str, object]]:
        """The rule's outcome and its report entry (lists kept as tuples: each report gets its own)."""
        outcome = self._evaluate(rule, age, conditions, list(doses), today)
        entry: dict[str, object] = {
            "vaccine": rule.vaccine,
            "status": outcome.status,
            "why": outcome.why,
            "valid_from": rule.valid_from,
        }
        if outcome.next_due:
            entry["next_due"] = outcome.next_due.isoformat()
        if rule.campaigns:
            entry["campaigns"] = tuple(c.describe() for c in rule.campaigns)
        if rule.unmapped:
            entry["unmapped"] = tuple(rule.unmapped)
        if rule.prior_dose_caveat and any(
            rule.caveat_if_dose_before is None or d <= rule.caveat_if_dose_before for d in doses
        ):
            entry["caveat"] = rule.prior_dose_caveat
        return outcome, entry

    @staticmethod
    def _population(rule: VaccineRule, age: int, conditions: tuple[str, ...]) -> str | None:
        """Why the patient is in the rule's population, or None."""
        if rule.age_min is not None and age >= rule.age_min:
            return f"age {age} >= {rule.age_min}"
        if rule.alt_age_min is not None and age >= rule.alt_age_min:
            codes = [c for c in conditions if c.startswith(rule.alt_conditions)]
            if codes:
                return f"age {age} >= {rule.alt_age_min} with {', '.join(codes)}"
        return None

    def _evaluate(
        self, rule: VaccineRule, age: int, conditions: tuple[str, ...], doses: list[dt.date], today: dt.date
    ) -> Outcome:
        population = self._population(rule, age, conditions)
        if population is None:
            return Outcome("not_applicable", f"age {age} and conditions outside the rule's population")
        last = f"last {rule.vaccine} dose recorded {doses[-1].isoformat()}" if doses else None
        recorded = last or f"no {rule.vaccine} dose recorded"
        campaign = next((c for c in rule.campaigns if c.contains(today)), None)
        if rule.kind == "once":
            if not doses:
                return Outcome("due", f"{population}; {recorded}")
            if rule.prior_dose == "undecided":
                return Outcome("undecided", f"{population}; {recorded}: the source does not give the conduct")
            return Outcome("up_to_date", f"{population}; {recorded} (single dose)")
        if rule.kind == "series":
            return self._series(rule, population, doses, today)
        if rule.kind == "seasonal":
            if campaign is None:
                return self._outside(rule, population)
            if any(campaign.start <= d for d in doses):
                return Outcome(
                    "up_to_date", f"{population}; dose recorded in {campaign.label}", campaign=campaign
                )
            return Outcome(
                "due", f"{population}; no dose recorded since {campaign.start.isoformat()}", campaign=campaign
            )
        # interval
        months = rule.interval_months
        reduced_from = rule.reduced_from_age
        if rule.reduced_interval_months is not None and reduced_from is not None and age >= reduced_from:
            months = rule.reduced_interval_months
        next_due = add_months(doses[-1], months) if doses and months is not None else None
        if next_due is not None and today < next_due:
            return Outcome("up_to_date", f"{population}; {recorded}, interval {months} months", next_due)
        if rule.campaigns and campaign is None:
            return self._outside(rule, population)
        spacing = f", interval {months} months passed" if doses else ""
        return Outcome("due", f"{population}; {recorded}{spacing}", campaign=campaign)

    @staticmethod
    def _series(rule: VaccineRule, population: str, doses: list[dt.date], today: dt.date) -> Outcome:
        if len(doses) >= rule.doses:
            return Outcome("up_to_date", f"{population}; {len(doses)} of {rule.doses} doses recorded")
        if not doses:
            return Outcome("due", f"{population}; no {rule.vaccine} dose recorded (dose 1 of {rule.doses})")
        gap = rule.dose_interval_months or 0
        next_due = add_months(doses[-1], gap)
        step = f"dose {len(doses) + 1} of {rule.doses}, {gap} months after {doses[-1].isoformat()}"
        if today < next_due:
            return Outcome("not_yet", f"{population}; {step}", next_due)
        return Outcome("due", f"{population}; {step}", next_due)

    @staticmethod
    def _outside(rule: VaccineRule, population: str) -> Outcome:
        windows = "; ".join(c.describe() for c in rule.campaigns)
        return Outcome("outside_campaign", f"{population}; outside the campaign windows known ({windows})")

    @staticmethod
    def _alert(rule: VaccineRule, outcome: Outcome) -> Alert:
        why = f"{outcome.why}; rule {rule.rule_id} ({rule.valid_from})"
        if outcome.campaign is not None:
            why += f"; campaign {outcome.campaign.describe()}"
            if outcome.campaign.end is None:
                why += " — check the campaign is still open"
        return Alert(
            type="vaccine",
            severity=SEVERITY,
            source=rule.source,
            edition=rule.edition,
            rule_id=rule.rule_id,
            message=f"Vaccination à proposer ({rule.disease}) : {rule.product}",
            recommendation=rule.schedule,
            why=why,
            vaccine=rule.vaccine,
        )


def _vaccination(v: Vaccination) -> dict[str, str]:
    return {"vaccine": v.vaccine, "date": v.date.isoformat()}


def compiled_vaccine_rules(kb: KnowledgeBase) -> list[VaccineRule]:
    """The vaccine rules compiled into the KB (the engine never reads knowledge_base/ itself)."""
    path = compiled_table(kb, VACCINE_RULES)
    return TypeAdapter(list[VaccineRule]).validate_json(path.read_bytes())
