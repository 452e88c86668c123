"""Issue 6: the report's JSON assembled from remembered pieces (``api.report_json``) is byte for byte
what ``orjson.dumps(report_document(report))`` gives, on real reports (the real KB, the benchmark's
generator, odd inputs), whatever the pieces' memo saw before."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from api.report_json import ReportJson, report_document
from benchmarks.generator import prescriptions
from iatro.analysis import CHECKS, Engine
from iatro.model.prescription import Prescription
from iatro.model.report import Alert, LineReport, Report, SubstanceRef, replaced

WITHOUT_ALTERNATIVES = frozenset(CHECKS) - {"alternatives"}
PATIENTS: tuple[dict[str, Any], ...] = (
    {},
    {"age": 84, "sex": "F", "weight_kg": 52, "creatinine_umol_l": 130, "conditions": ["I48", "I10", "F03"]},
    {"age": 91, "sex": "M", "egfr_ml_min": 25, "labs": {"potassium_mmol_l": 3.2, "qtc_ms": 480}},
    {"age": 70, "vaccinations": [{"vaccine": "grippe", "date": "2026-10-20"}], "conditions": ["N18"]},
)
ODD_LINES: tuple[dict[str, Any], ...] = (
    {"text": "MIRACLOR 5 mg"},  # no such product: unresolved
    {"cip13": "3400900000000"},  # unknown code: unresolved
    {"text": "LAROXYL 25 mg cp, 1 le soir"},
    {"substance": "amiodarone", "dose_mg_per_day": 200, "route": "orale"},
    {"text": "DOLIPRANE 1000 mg, 1 cp 3 fois par jour"},
    {"substance": "paracetamol"},  # the same substance again: a duplicate
)


def _prescriptions(count: int, seed: int) -> list[Prescription]:
    rng = random.Random(seed)
    out = []
    for item in prescriptions(count, seed=seed, lines=(3, 16)):
        lines = list(item["lines"])  # type: ignore[call-overload]
        if rng.random() < 0.3:
            lines.insert(rng.randrange(len(lines) + 1), rng.choice(ODD_LINES))
        document = {"lines": lines, "patient": rng.choice(PATIENTS)}
        if rng.random() < 0.8:
            document["date"] = "2026-11-24"
        out.append(Prescription.model_validate(document))
    return out


@pytest.fixture(scope="module")
def reports(engine: Engine) -> list[Report]:
    batch = _prescriptions(240, seed=61)
    out = [engine.analyze(p, WITHOUT_ALTERNATIVES) for p in batch]
    out += [engine.analyze(p) for p in batch[:12]]  # proven alternatives change the alerts
    out += [engine.analyze(p, frozenset({"interactions", "qt"})) for p in batch[12:24]]
    out.append(engine.analyze(Prescription()))
    return out


def _plain(report: Report) -> bytes:
    return orjson.dumps(report_document(report))


def test_the_reports_cover_what_the_pieces_are_made_of(reports: list[Report]) -> None:
    kinds = {alert.type for report in reports for alert in report.alerts}
    assert {"interaction", "cyp", "pim", "omission", "qt", "anticholinergic", "renal", "vaccine"} <= kinds
    assert "duplicate" in kinds
    assert any(alert.alternatives for report in reports for alert in report.alerts)
    statuses = {line.status for report in reports for line in report.lines}
    assert {"resolved", "unresolved"} <= statuses
    assert any(line.posology for report in reports for line in report.lines)


def test_same_bytes_as_the_plain_path_cold_and_warm(reports: list[Report]) -> None:
    render = ReportJson()
    cold = [render(report) for report in reports]
    assert cold == [_plain(report) for report in reports]
    # Again, from the memo; and in reverse order, so that each piece was remembered from another report.
    assert [render(report) for report in reports] == cold
    assert [ReportJson()(report) for report in reversed(reports)] == cold[::-1]
    assert len(render.alerts) > 0 and len(render.lines) > 0


def test_a_copy_with_other_lines_reuses_the_pieces_and_gets_its_own_lines(reports: list[Report]) -> None:
    render = ReportJson()
    report = next(r for r in reports if len(r.alerts) >= 3 and len(r.lines) >= 3)
    render(report)
    remembered = len(render.alerts), len(render.lines)
    moved = report.model_copy(
        update={
            "alerts": tuple(replaced(a, lines=tuple(n + 7 for n in a.lines)) for a in report.alerts),
            "lines": tuple(replaced(line, index=line.index + 7) for line in report.lines),
        }
    )
    assert render(moved) == _plain(moved) != _plain(report)
    assert (len(render.alerts), len(render.lines)) == remembered  # nothing new was dumped


def test_an_equal_alert_made_of_other_objects_is_not_taken_for_a_remembered_one() -> None:
    """The key is the identity of the values, held alive by the memo: equal values of another object
    are a miss (dumped afresh), never a wrong hit."""
    render = ReportJson()
    first = Alert(type="qt", severity="high", source="s", rule_id="r", message="m" * 3, lines=(1,))
    again = Alert(type="qt", severity="high", source="s", rule_id="r", message="".join("mmm"), lines=(2,))
    for alert in (first, again):
        report = Report(kb_version="v", complete=True, alerts=(alert,))
        assert render(report) == _plain(report)
    assert len(render.alerts) == 2


def test_the_memo_is_bounded() -> None:
    render = ReportJson()
    render.alerts._limit = 50
    for n in range(400):
        alert = Alert(type="qt", severity="high", source="s", rule_id=f"r{n}", message=f"m{n}", lines=(n,))
        report = Report(kb_version="v", complete=True, alerts=(alert,))
        assert render(report) == _plain(report)
    assert len(render.alerts) <= 100  # two generations of 50


@dataclass(frozen=True)
class _Odd:
    value: int | None = None


@pytest.mark.parametrize(
    "scores",
    [
        {"when": dt.date(2026, 11, 24)},  # pydantic writes an ISO date: orjson is not asked
        {"odd": _Odd()},  # a dataclass: pydantic drops None fields, orjson would not
        {"when": dt.datetime(2026, 11, 24, 8, 30, tzinfo=dt.UTC)},
        {"set": {3, 1, 2}},
        {"tuple": (1, 2.5, None), "nested": {"a": [True, None, "é"]}},
    ],
)
def test_values_orjson_would_render_otherwise_take_the_plain_path(scores: dict[str, Any]) -> None:
    report = Report(kb_version="v", complete=True, scores=scores)
    assert ReportJson()(report) == _plain(report)


def test_subclasses_take_the_plain_path() -> None:
    class Wider(Alert):
        extra_field: str = "x"

    alert = Wider(type="qt", severity="high", source="s", rule_id="r", message="m", lines=(1,))
    report = Report(
        kb_version="v",
        complete=True,
        alerts=(alert,),
        lines=(LineReport(index=0, input="x", status="unresolved"),),
    )
    assert ReportJson()(report) == _plain(report)
    line = LineReport(index=0, input="x", status="resolved", substances=(SubstanceRef(name="x"),))
    assert ReportJson()(Report(kb_version="v", complete=True, lines=(line,))) == _plain(
        Report(kb_version="v", complete=True, lines=(line,))
    )
