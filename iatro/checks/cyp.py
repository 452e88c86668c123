"""Metabolic (CYP) interactions, quantified with a static model from the FDA categories.

For each victim (an FDA substrate of an enzyme) and each of its enzymes, every perpetrator on that
enzyme prescribed on another line is combined into one predicted AUC ratio (Ohno et al. 2007 CR/IR
framework; the algebra and the category priors are in ``knowledge_base/curated/cyp_parameters.yaml``):

    IR = 1 - prod(1 - IR_i)        inhibitors act on what activity the others left
    IC = sum(IC_i)                 inducers add enzyme
    AUCR = 1 / (CR (1 - IR)(1 + IC) + 1 - CR)

so inhibitors alone give 1 / (1 - CR IR), inducers alone 1 / (1 + CR IC), and both together act on
the same remaining activity (the multiplicative "net effect" form of mechanistic static models).
When both are present the net ratio can look harmless while each side alone is not, so the
severity is the worst of the net ratio and of each side alone (``auc_ratio`` stays the net one).

Each victim pathway is computed alone: category CRs of two pathways are not fractions of one
clearance (two "moderately sensitive" pathways would sum to 1.5).

A perpetrator counts unless given by a local route (skin, eye, ear, nose, lung, vagina): the
categories come from oral or intravenous dosing, and ketoconazole shampoo does not inhibit CYP3A.
A victim counts unless applied to skin, eye or ear; inhaled or nasal corticoids stay in, their
systemic exposure is what an inhibitor raises. Unknown routes count as systemic.

A combination row of the FDA ("lopinavir and ritonavir") applies when all its components are
prescribed, and then replaces the roles of its components on that enzyme (keeping the largest
value), so that ritonavir is not counted twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from math import prod
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from iatro.checks.context import CheckContext, Exposure
from iatro.errors import KnowledgeBaseCorrupt, SourceError
from iatro.kb.store import KnowledgeBase, SubstanceInfo
from iatro.kb.yaml_tables import read_yaml
from iatro.model.report import Alert, SubstanceRef, replaced
from iatro.text import fold

PARAMETERS = "cyp_parameters.yaml"
ROLES_KEY = "cyp_roles"  # key of the mapped FDA rows in tables.json
Enzyme = Literal["CYP1A2", "CYP2B6", "CYP2C8", "CYP2C9", "CYP2C19", "CYP2D6", "CYP3A"]
ENZYMES: tuple[str, ...] = get_args(Enzyme)
SUBSTRATE_CLASSES = ("sensitive", "moderate_sensitive")
PERPETRATOR_CLASSES = ("strong", "moderate", "weak")

# Local routes (Exposure.route values): too little reaches the blood for FDA categories, measured
# after oral or intravenous dosing, to apply. Any other route, unknown ones included, counts as
# systemic: an alert too many rather than a missed one.
_LOCAL_FOR_VICTIM = frozenset({"cutanee", "ophtalmique", "auriculaire"})
_LOCAL_FOR_PERPETRATOR = _LOCAL_FOR_VICTIM | {"nasale", "inhalee", "vaginale"}
_LABEL = {"sensitive": "sensitive", "moderate_sensitive": "moderately sensitive"}
_FR_STRENGTH = {"strong": "puissant", "moderate": "modéré", "weak": "faible", "curated": "valeur publiée"}
_FR_ROLE = {"inhibitor": "inhibiteur", "inducer": "inducteur"}
_RANK = {"high": 3, "moderate": 2, "low": 1}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Priors(_Frozen):
    """One value per FDA category: CR per substrate class, IR / IC per perpetrator strength."""

    substrate_cr: dict[str, float]
    inhibitor_ir: dict[str, float]
    inducer_ic: dict[str, float]

    @model_validator(mode="after")
    def _every_class(self) -> Priors:
        for table, classes in (
            (self.substrate_cr, SUBSTRATE_CLASSES),
            (self.inhibitor_ir, PERPETRATOR_CLASSES),
            (self.inducer_ic, PERPETRATOR_CLASSES),
        ):
            if set(table) != set(classes):
                raise ValueError(f"expected exactly the classes {classes}, got {sorted(table)}")
        if not all(0 < v <= 1 for v in self.substrate_cr.values()):
            raise ValueError("a contribution ratio is in (0, 1]")
        if not all(0 <= v < 1 for v in self.inhibitor_ir.values()):
            raise ValueError("an inhibition ratio is in [0, 1)")
        if not all(v >= 0 for v in self.inducer_ic.values()):
            raise ValueError("an induction increase is >= 0")
        return self


class Display(_Frozen):
    """Iatro's severity bands on the predicted AUC ratio (not FDA's)."""

    no_alert_above: float = Field(gt=0, lt=1)
    no_alert_below: float = Field(gt=1)
    high_at_least: float
    high_at_most: float
    moderate_at_least: float
    moderate_at_most: float

    @model_validator(mode="after")
    def _ordered(self) -> Display:
        bounds = (
            self.high_at_most,
            self.moderate_at_most,
            self.no_alert_above,
            1.0,
            self.no_alert_below,
            self.moderate_at_least,
            self.high_at_least,
        )
        if any(a >= b for a, b in pairwise(bounds)):
            raise ValueError(f"display bands out of order: {bounds}")
        return self

    def severity(self, aucr: float) -> str | None:
        if self.no_alert_above < aucr < self.no_alert_below:
            return None
        if aucr >= self.high_at_least or aucr <= self.high_at_most:
            return "high"
        if aucr >= self.moderate_at_least or aucr <= self.moderate_at_most:
            return "moderate"
        return "low"


class Override(_Frozen):
    substance: str
    enzyme: Enzyme
    parameter: Literal["cr", "ir", "ic"]
    value: float = Field(ge=0)
    citation: str = Field(min_length=20)

    @model_validator(mode="after")
    def _in_range(self) -> Override:
        if self.parameter == "cr" and not 0 < self.value <= 1:
            raise ValueError("a contribution ratio is in (0, 1]")
        if self.parameter == "ir" and not self.value < 1:
            raise ValueError("an inhibition ratio is in [0, 1)")
        return self


class Source(_Frozen):
    title: str
    edition: str


class CypParameters(_Frozen):
    source: Source
    priors: Priors
    display: Display
    overrides: tuple[Override, ...] = ()

    @model_validator(mode="after")
    def _reproduce_fda_definitions(self) -> CypParameters:
        wrong = [label for label, _aucr, ok in fda_definition_checks(self.priors) if not ok]
        if wrong:
            raise ValueError(f"category priors break the FDA definitions: {wrong}")
        return self


def auc_ratio(cr: float, ir: float = 0.0, ic: float = 0.0) -> float:
    """Predicted AUC ratio for a pathway of contribution ``cr`` under combined ``ir`` and ``ic``."""
    remaining = cr * (1.0 - ir) * (1.0 + ic) + (1.0 - cr)
    # Only an ideal index pair (CR = IR = 1) removes all clearance; the loaded values cannot.
    return 1.0 / remaining if remaining > 0 else float("inf")


def fda_definition_checks(priors: Priors) -> list[tuple[str, float, bool]]:
    """Each FDA category definition, evaluated with the priors: (what, AUC ratio, inside its band).

    Index drugs are ideal (index inhibitor IR = 1, index substrate CR = 1); the priors must also
    keep category-by-category pairings inside the bands (see cyp_parameters.yaml for the algebra).
    """
    cr, ir, ic = priors.substrate_cr, priors.inhibitor_ir, priors.inducer_ic
    inhibitor_band = {"strong": (5.0, float("inf")), "moderate": (2.0, 5.0), "weak": (1.25, 2.0)}
    # Decrease >= 80 % / 50-80 % / 20-50 %: the AUC ratio is <= 0.2 / in (0.2, 0.5] / in (0.5, 0.8].
    inducer_band = {"strong": (0.0, 0.2), "moderate": (0.2, 0.5), "weak": (0.5, 0.8)}
    out: list[tuple[str, float, bool]] = []
    for partner, c in (("index substrate", 1.0), ("sensitive substrate", cr["sensitive"])):
        for strength, (lo, hi) in inhibitor_band.items():
            r = auc_ratio(c, ir=ir[strength])
            out.append((f"{strength} inhibitor x {partner}", r, lo <= r < hi))
        for strength, (lo, hi) in inducer_band.items():
            r = auc_ratio(c, ic=ic[strength])
            out.append((f"{strength} inducer x {partner}", r, lo < r <= hi))
    substrate_band = {"sensitive": (5.0, float("inf")), "moderate_sensitive": (2.0, 5.0)}
    for partner, i in (("index inhibitor", 1.0), ("strong inhibitor", ir["strong"])):
        for klass, (lo, hi) in substrate_band.items():
            r = auc_ratio(cr[klass], ir=i)
            out.append((f"{_LABEL[klass]} substrate x {partner}", r, lo <= r < hi))
    return out


def load_parameters(path: Path) -> CypParameters:
    try:
        raw = read_yaml(path.read_text(encoding="utf-8"))
        return CypParameters.model_validate(raw)
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise SourceError(f"{path}: invalid CYP parameters: {exc}") from exc


@dataclass(frozen=True, slots=True)
class Value:
    """A model parameter and where it comes from."""

    value: float
    strength: str  # the FDA category, or "curated"
    citation: str | None = None


@dataclass(frozen=True, slots=True)
class Perpetrator:
    requires: frozenset[int]  # every id that must be prescribed (several for a combination row)
    enzyme: str
    role: str  # inhibitor | inducer
    value: Value
    fda_name: str


@dataclass(frozen=True, slots=True)
class _Active:
    perpetrator: Perpetrator
    value: float  # the perpetrator's, or a larger one of a component it replaces
    exposures: tuple[Exposure, ...]

    @property
    def names(self) -> list[str]:
        return sorted({e.name for e in self.exposures})


def _prior(table: Mapping[str, float], strength: str, row: Mapping[str, Any]) -> float:
    if strength not in table:
        raise SourceError(f"CYP role with an unknown strength {strength!r}: {dict(row)}")
    return table[strength]


# Alerts remembered per (victim, perpetrators) combination; beyond, the memo starts afresh.
_ALERT_MEMO = 50_000
# What an alert reads but line numbers: the victim (name, ATC codes), its parameters, the enzyme,
# and each active perpetrator with its value and the (id, name, ATC codes) of its substances.
_AlertKey = tuple[
    tuple[str, tuple[str, ...]],
    tuple[Value, str],
    str,
    tuple[tuple[Perpetrator, float, tuple[tuple[int, str, tuple[str, ...]], ...]], ...],
]


class CypModel:
    """The FDA roles with their parameters, indexed by substance id; built once per KB."""

    def __init__(
        self,
        roles: Iterable[Mapping[str, Any]],
        parameters: CypParameters,
        substances: Sequence[SubstanceInfo],
    ) -> None:
        self.parameters = parameters
        self.source = f"{parameters.source.title}, {parameters.source.edition}"
        priors = parameters.priors
        substrate: dict[tuple[int, str], tuple[Value, str]] = {}
        perpetrators: dict[tuple[frozenset[int], str, str], Perpetrator] = {}
        for row in roles:
            enzyme, role, strength = str(row["enzyme"]), str(row["role"]), str(row["strength"])
            if enzyme not in ENZYMES:
                continue  # transporters are kept in the data, not modelled (the FDA gives no strength)
            name = str(row["fda_name"])
            if role == "substrate":
                key = (int(row["substance_id"]), enzyme)
                value = Value(_prior(priors.substrate_cr, strength, row), strength)
                # Two FDA rows for one KB substance (salt forms): the more sensitive class wins.
                if key not in substrate or value.value > substrate[key][0].value:
                    substrate[key] = (value, name)
            else:
                table = priors.inhibitor_ir if role == "inhibitor" else priors.inducer_ic
                requires = frozenset(int(i) for i in row["requires"])
                value = Value(_prior(table, strength, row), strength)
                pkey = (requires, enzyme, role)
                if pkey not in perpetrators or value.value > perpetrators[pkey].value.value:
                    perpetrators[pkey] = Perpetrator(requires, enzyme, role, value, name)
        for (sid, enzyme, parameter), value in _resolve_overrides(parameters.overrides, substances).items():
            if parameter == "cr":
                substrate[(sid, enzyme)] = (value, substrate.get((sid, enzyme), (value, ""))[1])
            else:
                role = "inhibitor" if parameter == "ir" else "inducer"
                pkey = (frozenset({sid}), enzyme, role)
                name = perpetrators[pkey].fda_name if pkey in perpetrators else ""
                perpetrators[pkey] = Perpetrator(frozenset({sid}), enzyme, role, value, name)
        self.substrate = substrate
        self.by_substance: dict[int, list[Perpetrator]] = defaultdict(list)
        for p in perpetrators.values():
            for sid in p.requires:
                self.by_substance[sid].append(p)
        self._alerts: dict[_AlertKey, Alert | None] = {}
        # Substance id -> the enzymes it is a substrate of, in ``ENZYMES`` order, with its parameters.
        self._substrate_of: dict[int, tuple[tuple[str, tuple[Value, str]], ...]] = {}
        for sid in sorted({sid for sid, _ in substrate}):
            self._substrate_of[sid] = tuple(
                (enzyme, substrate[sid, enzyme]) for enzyme in ENZYMES if (sid, enzyme) in substrate
            )

    @classmethod
    def from_kb(cls, kb: KnowledgeBase) -> CypModel:
        """The model of a KB whose build compiled the FDA roles (``tables.json``) and the parameters."""
        roles = kb.raw.get(ROLES_KEY)
        if roles is None or kb.directory is None or not (kb.directory / PARAMETERS).exists():
            raise KnowledgeBaseCorrupt(
                "the CYP roles and parameters are not compiled into this knowledge base"
            )
        return cls(roles, load_parameters(kb.directory / PARAMETERS), kb.substances)

    def check(self, ctx: CheckContext) -> list[Alert]:
        systemic: dict[int, list[Exposure]] = defaultdict(list)
        victims: dict[int, list[Exposure]] = defaultdict(list)
        for e in sorted(ctx.exposures, key=lambda e: (e.line, e.substance_id)):
            if e.route not in _LOCAL_FOR_PERPETRATOR:
                systemic[e.substance_id].append(e)
            if e.route not in _LOCAL_FOR_VICTIM:
                victims[e.substance_id].append(e)
        # The perpetrators present, per enzyme, each set filled in the order the prescription lists
        # them (a set's iteration order depends on it).
        present: dict[str, set[Perpetrator]] = defaultdict(set)
        for sid in systemic:
            for p in self.by_substance.get(sid, ()):
                present[p.enzyme].add(p)
        alerts = []
        for sid, exposures in victims.items():
            for enzyme, found in self._substrate_of.get(sid, ()):
                active = self._active(sid, enzyme, frozenset(e.line for e in exposures), systemic, present)
                alert = self._alert(exposures, found, enzyme, active) if active else None
                if alert is not None:
                    alerts.append(alert)
        return sorted(alerts, key=lambda a: (-_RANK[a.severity], a.rule_id))

    def _active(
        self,
        victim: int,
        enzyme: str,
        victim_lines: frozenset[int],
        systemic: Mapping[int, list[Exposure]],
        present: Mapping[str, set[Perpetrator]],
    ) -> list[_Active]:
        """Perpetrators on ``enzyme`` prescribed on other lines; a combination replaces its parts."""
        found: list[tuple[Perpetrator, tuple[Exposure, ...]]] = []
        for p in present.get(enzyme, ()):
            if victim in p.requires:
                continue  # a drug's effect on its own metabolism is already in its usual exposure
            # A perpetrator in the victim's own product is part of that product's usual exposure.
            parts = [[e for e in systemic.get(i, ()) if e.line not in victim_lines] for i in p.requires]
            if all(parts):
                found.append((p, tuple(e for part in parts for e in part)))
        active = []
        for p, exposures in found:
            inside = [q for q, _ in found if q.role == p.role and q.requires < p.requires]
            if any(p.requires < q.requires and q.role == p.role for q, _ in found):
                continue  # counted through the combination that holds it
            value = max([p.value.value, *(q.value.value for q in inside)])
            active.append(_Active(p, value, exposures))
        return sorted(active, key=lambda a: (a.names, a.perpetrator.role))

    def _alert(
        self, victim: list[Exposure], found: tuple[Value, str], enzyme: str, active: list[_Active]
    ) -> Alert | None:
        """The victim's alert: a pure function of its arguments, so each combination is built once.

        Remembered on what it reads but the line numbers (the victim's name and ATC code, each
        perpetrator with its substances), and copied onto this prescription's lines: the same
        combination on other lines is the same alert but for its ``lines``.
        """
        first = victim[0]
        perpetrators = tuple(
            (a.perpetrator, a.value, tuple((e.substance_id, e.name, e.atc) for e in a.exposures))
            for a in active
        )
        key = ((first.name, first.atc), found, enzyme, perpetrators)
        try:
            alert = self._alerts[key]
        except KeyError:
            if len(self._alerts) >= _ALERT_MEMO:
                self._alerts.clear()
            alert = self._alerts[key] = self._build_alert(victim, found, enzyme, active)
        if alert is None:
            return None
        lines = tuple(sorted({e.line for e in victim} | {e.line for a in active for e in a.exposures}))
        return alert if alert.lines == lines else replaced(alert, lines=lines)

    def _build_alert(
        self, victim: list[Exposure], found: tuple[Value, str], enzyme: str, active: list[_Active]
    ) -> Alert | None:
        cr, victim_fda = found
        ir = 1.0 - prod(1.0 - a.value for a in active if a.perpetrator.role == "inhibitor")
        ic = sum(a.value for a in active if a.perpetrator.role == "inducer")
        aucr = round(auc_ratio(cr.value, ir, ic), 2)
        display = self.parameters.display
        severity = display.severity(aucr)
        mixed: tuple[float, float] | None = None
        if ir > 0 and ic > 0:
            # Opposite effects may cancel in the net ratio, but stopping either perpetrator unmasks
            # the other, and induction sets in and wears off over days to weeks while inhibition
            # is immediate: the alert takes the worst of the net and of each side alone.
            mixed = (round(auc_ratio(cr.value, ir=ir), 2), round(auc_ratio(cr.value, ic=ic), 2))
            severity = max((display.severity(r) for r in (aucr, *mixed)), key=lambda v: _RANK.get(v or "", 0))
        if severity is None:
            return None
        first = victim[0]
        others: dict[int, SubstanceRef] = {}
        for a in active:
            for e in a.exposures:
                others.setdefault(e.substance_id, _ref(e))
        perpetrators = sorted(others.values(), key=lambda s: s.name)
        lines = {e.line for e in victim} | {e.line for a in active for e in a.exposures}
        # Folded names, like the ANSM rule ids: an id should not depend on accents.
        names = "+".join([fold(first.name), *sorted(fold(s.name) for s in perpetrators)])
        rule = f"cyp:{enzyme.removeprefix('CYP')}:{names}"
        via = [_via(victim_fda, f"{enzyme} {_LABEL.get(cr.strength, cr.strength)} substrate")]
        via += [
            _via(a.perpetrator.fda_name, f"{enzyme} {a.perpetrator.value.strength} {a.perpetrator.role}")
            for a in active
        ]
        return Alert(
            type="cyp",
            severity=severity,
            substances=(_ref(first), *perpetrators),
            lines=tuple(sorted(lines)),
            source=self.source,
            edition=self.parameters.source.edition,
            rule_id=rule,
            via=tuple(via),
            message=_message(first.name, enzyme, aucr, active, mixed),
            recommendation=_recommendation(first.name, enzyme, aucr, severity, mixed),
            why=_why(cr, enzyme, active, ir, ic, aucr, mixed),
            auc_ratio=aucr,
            enzyme=enzyme,
        )


def _via(fda_name: str, role: str) -> str:
    # A curated value with no FDA row behind it has no FDA name to show.
    return f"FDA {fda_name}: {role}" if fda_name else f"curated: {role}"


def _ref(e: Exposure) -> SubstanceRef:
    return SubstanceRef(name=e.name, atc=e.atc[0] if e.atc else None)


def _resolve_overrides(
    overrides: Sequence[Override], substances: Sequence[SubstanceInfo]
) -> dict[tuple[int, str, str], Value]:
    by_name: dict[str, list[int]] = defaultdict(list)
    for s in substances:
        by_name[fold(s.name)].append(s.id)
    out: dict[tuple[int, str, str], Value] = {}
    for o in overrides:
        ids = by_name.get(fold(o.substance))
        if not ids:
            raise SourceError(f"CYP override names no KB substance: {o.substance!r}")
        for sid in ids:
            out[(sid, o.enzyme, o.parameter)] = Value(o.value, "curated", o.citation)
    return out


def _fr(x: float) -> str:
    return f"{x:.2f}".replace(".", ",")


def _message(
    name: str, enzyme: str, aucr: float, active: list[_Active], mixed: tuple[float, float] | None
) -> str:
    by = ", ".join(
        f"{' + '.join(a.names)} ({_FR_ROLE[a.perpetrator.role]} {_FR_STRENGTH[a.perpetrator.value.strength]})"
        for a in active
    )
    change = f"×{_fr(aucr)}" if aucr >= 1 else f"×{_fr(aucr)} (−{round(100 * (1 - aucr))} %)"
    text = f"Interaction métabolique {enzyme} : exposition (AUC) à {name} prédite {change} avec {by}"
    if mixed:
        text += (
            f" (effets opposés : ×{_fr(mixed[0])} par les inhibiteurs seuls, "
            f"×{_fr(mixed[1])} par les inducteurs seuls)"
        )
    return text + "."


def _recommendation(
    name: str, enzyme: str, aucr: float, severity: str, mixed: tuple[float, float] | None
) -> str:
    if mixed:
        return (
            f"Inhibition et induction du {enzyme} associées : l'exposition nette à {name} (~×{_fr(aucr)}) "
            "dépend de la chronologie (l'induction s'installe et disparaît en jours à semaines, "
            "l'inhibition est immédiate). L'arrêt ou l'ajout de l'un des médicaments démasque l'effet "
            "de l'autre : surveiller efficacité et effets indésirables à chaque modification."
        )
    if aucr < 1:
        return (
            f"Exposition à {name} diminuée (~×{_fr(aucr)}) : risque de perte d'efficacité. Surveiller "
            "l'efficacité, adapter la dose ou choisir une alternative non métabolisée par le "
            f"{enzyme}. À l'arrêt de l'inducteur, l'exposition remonte progressivement : réévaluer la dose."
        )
    if severity == "high":
        return (
            f"Exposition à {name} fortement augmentée (~×{_fr(aucr)}) : éviter l'association ou choisir "
            f"une alternative non métabolisée par le {enzyme} ; à défaut, réduction de dose importante "
            "et surveillance des effets indésirables (voir le RCP)."
        )
    # Same AUC at dose / AUCR: a hint of the order of the reduction, not a posology.
    return (
        f"Exposition à {name} augmentée (~×{_fr(aucr)}) : envisager une réduction de dose (environ "
        f"{_fr(1 / aucr)} fois la dose habituelle maintiendrait l'exposition ; estimation à confronter "
        "au RCP) et surveiller les effets indésirables."
    )


def _why(
    cr: Value,
    enzyme: str,
    active: list[_Active],
    ir: float,
    ic: float,
    aucr: float,
    mixed: tuple[float, float] | None,
) -> str:
    values = [cr, *(a.perpetrator.value for a in active)]
    citations = list(dict.fromkeys(v.citation for v in values if v.citation))
    if not citations:
        basis = "FDA category estimate"
    elif all(v.citation for v in values):
        basis = "curated CR/IR"
    else:
        basis = "FDA category estimate with curated values"
    victim = f"{_LABEL.get(cr.strength, cr.strength)} substrate (CR {cr.value:g})"
    parts = [
        f"{a.perpetrator.value.strength} {a.perpetrator.role} {'+'.join(a.names)} "
        f"({'IR' if a.perpetrator.role == 'inhibitor' else 'IC'} {a.value:g})"
        for a in active
    ]
    text = (
        f"{basis}: {enzyme} {victim} × {' + '.join(parts)}; combined IR {ir:.3g}, IC {ic:.3g}; "
        f"AUCR = 1/(CR·(1−IR)·(1+IC) + 1−CR) = {aucr:g}"
    )
    if mixed:
        text += (
            f"; opposite effects: inhibitors alone {mixed[0]:g}, inducers alone {mixed[1]:g}, "
            "severity is the worst of the three"
        )
    return text + (f"; sources: {'; '.join(c for c in citations if c)}" if citations else "")
