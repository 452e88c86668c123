"""The French posology parser: the annotated set, each construct, and robustness."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from iatro.model.report import Posology
from iatro.resolve.posology import UNITS, daily_mass_mg, parse_posology

CASES_FILE = Path(__file__).resolve().parents[1] / "data" / "posology_cases.yaml"
FIELDS = ("dose_per_intake", "unit", "intakes_per_day", "as_needed", "max_intakes_per_day", "duration_days")
NUMERIC = ("dose_per_intake", "intakes_per_day", "max_intakes_per_day", "duration_days", "mg_per_day")


def load_cases() -> list[dict[str, Any]]:
    with CASES_FILE.open(encoding="utf-8") as handle:
        cases = yaml.safe_load(handle)
    assert isinstance(cases, list)
    return cases


def _same(field: str, got: Any, expected: Any) -> bool:
    if expected is None or got is None:
        return got is None and expected is None
    if field == "intakes_per_day":
        return math.isclose(float(got), float(expected), rel_tol=0, abs_tol=1e-6)
    if field in NUMERIC:
        return math.isclose(float(got), float(expected), rel_tol=1e-9, abs_tol=1e-9)
    return bool(got == expected)


def mismatches(case: dict[str, Any], got: Posology) -> list[str]:
    out: list[str] = []
    if got.parsed != case["parsed"]:
        out.append(f"parsed={got.parsed} (expected {case['parsed']}; note: {got.note})")
        return out
    if not case["parsed"]:
        return out
    for name in FIELDS:
        value = getattr(got, name)
        if not _same(name, value, case[name]):
            out.append(f"{name}={value!r} (expected {case[name]!r})")
    return out


# ---------------------------------------------------------------------------------------- (a) the set


def test_case_file_is_large_and_complete() -> None:
    cases = load_cases()
    assert len(cases) >= 170
    texts = [c["text"] for c in cases]
    assert len(texts) == len(set(texts)), "duplicate posology strings"
    unparsed = [c for c in cases if not c["parsed"]]
    assert len(unparsed) >= 10
    for case in cases:
        if case["parsed"]:
            missing = [name for name in FIELDS if name not in case]
            assert not missing, (case["text"], missing)
            assert case["unit"] is None or case["unit"] in UNITS, case


def test_field_exact_rate() -> None:
    cases = load_cases()
    failures: list[str] = []
    for case in cases:
        problems = mismatches(case, parse_posology(case["text"]))
        if problems:
            failures.append(f"{case['text']!r}: " + "; ".join(problems))
    rate = 1 - len(failures) / len(cases)
    print(f"\nposology field-exact rate: {rate:.3f} ({len(cases) - len(failures)}/{len(cases)})")
    for failure in failures:
        print("  FAIL", failure)
    assert rate >= 0.95


def test_moments_of_the_set() -> None:
    cases = [c for c in load_cases() if c["parsed"] and "moments" in c]
    wrong = [
        (c["text"], parse_posology(c["text"]).moments)
        for c in cases
        if parse_posology(c["text"]).moments != tuple(c["moments"])
    ]
    assert len(wrong) <= 0.05 * len(cases), wrong


# ---------------------------------------------------------------------------------------- (b) constructs


def fields(text: str) -> tuple[Any, ...]:
    p = parse_posology(text)
    assert p.parsed, (text, p.note)
    return (p.dose_per_intake, p.unit, p.intakes_per_day, p.as_needed, p.max_intakes_per_day, p.duration_days)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 cp matin et soir", (1, "comprimé", 2, False, None, None)),
        ("1-0-1", (1, None, 2, False, None, None)),
        ("1/2-0-1", (0.75, None, 2, False, None, None)),
        ("3/4 cp le soir", (0.75, "comprimé", 1, False, None, None)),
        ("1 sachet par jour", (1, "sachet", 1, False, None, None)),
        ("2 gélules le soir pendant 10 jours", (2, "gélule", 1, False, None, 10)),
        ("si douleur, max 3/j", (None, None, None, True, 3, None)),
        ("1 cp 3 fois par jour", (1, "comprimé", 3, False, None, None)),
        ("1 cp x 3/j", (1, "comprimé", 3, False, None, None)),
        ("500 mg 2 fois par jour", (500, "mg", 2, False, None, None)),
        ("1 gélule le matin à jeun", (1, "gélule", 1, False, None, None)),
        ("2 bouffées matin et soir", (2, "bouffée", 2, False, None, None)),
        ("10 gouttes le soir", (10, "goutte", 1, False, None, None)),
        ("1 cp tous les 2 jours", (1, "comprimé", 0.5, False, None, None)),
        ("1 cp par semaine", (1, "comprimé", 1 / 7, False, None, None)),
        ("1 cp le lundi", (1, "comprimé", 1 / 7, False, None, None)),
        ("1 injection par mois", (1, "injection", 1 / 30, False, None, None)),
        ("1 patch tous les 3 jours", (1, "patch", 1 / 3, False, None, None)),
        ("1 comprimé et demi le matin", (1.5, "comprimé", 1, False, None, None)),
        ("un demi cp le soir", (0.5, "comprimé", 1, False, None, None)),
        ("½ cp le soir", (0.5, "comprimé", 1, False, None, None)),
        ("0,5 cp le soir", (0.5, "comprimé", 1, False, None, None)),
        ("deux comprimés trois fois par jour", (2, "comprimé", 3, False, None, None)),
        ("quatre gouttes le soir", (4, "goutte", 1, False, None, None)),
        ("une gélule le matin", (1, "gélule", 1, False, None, None)),
        ("1 cp matin midi et soir", (1, "comprimé", 3, False, None, None)),
        ("1 cp au coucher", (1, "comprimé", 1, False, None, None)),
        ("1 cp toutes les 8 heures", (1, "comprimé", 3, False, None, None)),
        ("1 cp toutes les 6h si douleur", (1, "comprimé", 4, True, None, None)),
        ("1 cp/j pendant 1 mois", (1, "comprimé", 1, False, None, 30)),
        ("1 cp/j pendant 3 semaines", (1, "comprimé", 1, False, None, 21)),
        ("1 cp/j", (1, "comprimé", 1, False, None, None)),
        ("1cp/j", (1, "comprimé", 1, False, None, None)),
        ("1 cp le matin pendant 5 j", (1, "comprimé", 1, False, None, 5)),
        ("2 cp 3x/j", (2, "comprimé", 3, False, None, None)),
        ("1 càs 3 fois par jour", (1, "cuillère à soupe", 3, False, None, None)),
        ("1 càc le soir", (1, "cuillère à café", 1, False, None, None)),
        ("5 ml matin et soir", (5, "ml", 2, False, None, None)),
        ("1 le soir", (1, None, 1, False, None, None)),
        ("1 cp si besoin", (1, "comprimé", None, True, None, None)),
        ("1 cp SB", (1, "comprimé", None, True, None, None)),
        ("1 cp en cas de douleur", (1, "comprimé", None, True, None, None)),
        ("1 cp à la demande", (1, "comprimé", None, True, None, None)),
        ("1 cp si douleur, maximum 3 par jour", (1, "comprimé", None, True, 3, None)),
        ("1 cp si douleur sans dépasser 4 cp par jour", (1, "comprimé", None, True, 4, None)),
    ],
)
def test_construct(text: str, expected: tuple[Any, ...]) -> None:
    got = fields(text)
    for name, value, want in zip(FIELDS, got, expected, strict=True):
        assert _same(name, value, want), (text, name, value, want)


@pytest.mark.parametrize(
    ("text", "unit"),
    [
        ("1 cp le soir", "comprimé"),
        ("1 cpr le soir", "comprimé"),
        ("1 comp le soir", "comprimé"),
        ("1 gél le soir", "gélule"),
        ("1 gel le soir", "gélule"),
        ("1 sach le soir", "sachet"),
        ("1 amp le soir", "ampoule"),
        ("1 inj le soir", "injection"),
        ("2 gtt le soir", "goutte"),
        ("1 caps le soir", "capsule"),
        ("1 supp le soir", "suppositoire"),
        ("2 bouf le soir", "bouffée"),
        ("2 bouffées le soir", "bouffée"),
        ("10 UI le soir", "ui"),
        ("1 patch le soir", "patch"),
        ("1 dose le soir", "dose"),
        ("1 application le soir", "application"),
        ("1 cuillère à soupe le soir", "cuillère à soupe"),
        ("1 cuillère à café le soir", "cuillère à café"),
        ("5 mg le soir", "mg"),
        ("1 g le soir", "g"),
        ("50 µg le soir", "µg"),
        ("50 μg le soir", "µg"),
        ("10 ml le soir", "ml"),
    ],
)
def test_unit_abbreviations(text: str, unit: str) -> None:
    assert parse_posology(text).unit == unit
    assert unit in UNITS


@pytest.mark.parametrize(
    ("text", "moments"),
    [
        ("1-0-1", ("matin", "soir")),
        ("1-1-1-1", ("matin", "midi", "soir", "coucher")),
        ("0-0-0-1", ("coucher",)),
        ("1 cp matin midi et soir", ("matin", "midi", "soir")),
        ("1 cp au coucher", ("coucher",)),
        ("1 cp le soir au coucher", ("coucher",)),
        ("1 cp au petit déjeuner", ("matin",)),
        ("1 cp à chaque repas", ("matin", "midi", "soir")),
        ("1 cp 3 fois par jour", ()),
        ("1 cp le soir et le matin", ("matin", "soir")),
    ],
)
def test_moments(text: str, moments: tuple[str, ...]) -> None:
    assert parse_posology(text).moments == moments


def test_case_and_accents_do_not_matter() -> None:
    reference = fields("1 gélule le matin à jeun")
    for variant in ("1 GÉLULE LE MATIN À JEUN", "1 gelule le matin a jeun", "1  Gélule  le  Matin  à  Jeun"):
        assert fields(variant) == reference


def test_as_needed_without_schedule_has_no_intakes() -> None:
    p = parse_posology("1 cp si douleur")
    assert p.as_needed and p.intakes_per_day is None and p.max_intakes_per_day is None


def test_maximum_in_mass_is_counted_in_intakes() -> None:
    p = parse_posology("1 g si douleur, max 3 g/j")
    assert p.max_intakes_per_day == 3
    assert p.mg_per_day == 3000
    p = parse_posology("500 mg si douleur, sans dépasser 3 g par jour")
    assert p.max_intakes_per_day == 6


def test_maximum_that_cannot_be_converted_is_left_out() -> None:
    p = parse_posology("1 cp si douleur, max 3 g/j")
    assert p.parsed and p.max_intakes_per_day is None and p.note
    p = parse_posology("1 à 2 cp si douleur, max 6/j")  # 6 intakes or 6 cp: not said
    assert p.parsed and p.max_intakes_per_day is None and p.note


def test_maximum_without_schedule_is_as_needed() -> None:
    p = parse_posology("1 cp 3 fois par jour maximum")
    assert p.as_needed and p.intakes_per_day is None and p.max_intakes_per_day == 3


def test_mg_per_day_only_for_mass_doses() -> None:
    assert parse_posology("500 mg 2 fois par jour").mg_per_day == 1000
    assert parse_posology("1 g 3 fois par jour").mg_per_day == 3000
    assert parse_posology("100 µg le matin").mg_per_day == pytest.approx(0.1)
    assert parse_posology("1 cp 3 fois par jour").mg_per_day is None
    assert parse_posology("10 ml matin et soir").mg_per_day is None


def test_unequal_doses_keep_the_daily_total() -> None:
    p = parse_posology("1 cp le matin et 1/2 cp le soir")
    assert p.dose_per_intake is not None and p.intakes_per_day is not None
    assert p.dose_per_intake * p.intakes_per_day == pytest.approx(1.5)
    assert p.note and "unequal" in p.note


def test_ranges_keep_the_upper_bound() -> None:
    assert fields("1 à 2 cp 3 fois par jour")[:3] == (2, "comprimé", 3)
    assert fields("1 cp 2 à 3 fois par jour")[2] == 3
    assert fields("1 cp toutes les 4 à 6 heures si douleur")[2] == 6
    assert fields("1 cp/j pendant 5 à 7 jours")[5] == 7


def test_contradictions_are_not_parsed() -> None:
    for text in ("1 cp 3 fois par jour matin et soir", "1 cp/j pendant 5 jours pendant 7 jours"):
        assert not parse_posology(text).parsed, text


# ---------------------------------------------------------------------------------------- daily_mass_mg


def test_daily_mass_from_unit_dose() -> None:
    assert daily_mass_mg(parse_posology("1 cp matin et soir"), 500) == 1000
    assert daily_mass_mg(parse_posology("1/2-0-1"), 10) == pytest.approx(15)
    assert daily_mass_mg(parse_posology("1 cp par semaine"), 70) == pytest.approx(10)
    assert daily_mass_mg(parse_posology("5 ml matin et soir"), 20) == pytest.approx(200)


def test_daily_mass_when_dose_is_a_mass() -> None:
    p = parse_posology("500 mg 2 fois par jour")
    assert daily_mass_mg(p, None) == 1000
    assert daily_mass_mg(p, 250) == 1000  # the strength is not needed, nor used


def test_daily_mass_as_needed_uses_the_maximum() -> None:
    assert daily_mass_mg(parse_posology("1 cp si douleur, max 3/j"), 1000) == 3000
    assert daily_mass_mg(parse_posology("1 cp si douleur sans dépasser 4 cp par jour"), 500) == 2000
    assert daily_mass_mg(parse_posology("1 cp toutes les 6h si douleur"), 1000) == 4000


def test_daily_mass_missing_inputs() -> None:
    assert daily_mass_mg(parse_posology("1 cp matin et soir"), None) is None
    assert daily_mass_mg(parse_posology("1 cp si douleur"), 500) is None  # no schedule, no maximum
    assert daily_mass_mg(parse_posology("selon INR"), 5) is None
    assert daily_mass_mg(parse_posology("si douleur, max 3/j"), 500) is None  # no dose per intake


# ---------------------------------------------------------------------------------------- (c) robustness


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_never_raises_and_keeps_text(text: str) -> None:
    p = parse_posology(text)
    assert isinstance(p, Posology)
    assert p.text == text


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            ["1", "1/2", "½", "cp", "x", "3", "/j", "fois", "par", "jour", "matin", "et", "soir", "-", "0",
             "si", "douleur", "max", "pendant", "10", "jours", "toutes", "les", "h", "à", "2", "sem", ",",
             "puis", "mg", "g", "de", "demi", "un", "sur", "tous", "mois", "lundi"]
        ),
        max_size=12,
    ).map(" ".join)
)  # fmt: skip
def test_never_raises_on_posology_like_text(text: str) -> None:
    p = parse_posology(text)
    assert p.text == text
    if p.parsed:
        for name in ("dose_per_intake", "intakes_per_day", "max_intakes_per_day", "mg_per_day"):
            value = getattr(p, name)
            assert value is None or (math.isfinite(value) and value >= 0), (text, name, value)
    else:
        assert p.note


# ---------------------------------------------------------------------------------------- (d) unparsed


@pytest.mark.parametrize(
    "text",
    ["selon INR", "voir protocole", "à adapter", "1 cp", "1 cp/j pendant 5 j puis 1/2 cp/j", "15 mg/kg/j",
     "1 cp le soir selon INR", "1 ovule le soir"],
)  # fmt: skip
def test_unparseable_sets_no_numeric_field(text: str) -> None:
    p = parse_posology(text)
    assert p.parsed is False
    assert p.text == text
    assert p.note
    for name in NUMERIC:
        assert getattr(p, name) is None, name
    assert p.unit is None and p.moments == () and p.as_needed is False


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty(text: str) -> None:
    p = parse_posology(text)
    assert p == Posology(text=text, parsed=False, note="empty")
