"""Issue 4: qualification against the naive worst-level engine, over all pairs of the ANSM index."""

from __future__ import annotations

import pytest

from iatro.checks.qualification_report import compare


@pytest.fixture(scope="module")
def report(engine):
    return compare(engine.interactions)


def test_qualification_lowers_many_contre_indications(report):
    summary = report.summary()
    print(summary)
    assert report.pairs > 40000
    assert (
        summary["qualified_without_inputs"]["contre-indication"] < summary["naive"]["contre-indication"] / 3
    )


def test_every_lowering_is_justified_by_the_text(report):
    for low in report.lowered:
        # Without patient inputs a level can only drop through a case or default that quotes the
        # thesaurus: every rule that was lowered for the pair says so with the thesaurus words.
        # (A default may carry no words when the thesaurus prints that level without text, as for
        # "entre sacubitril et IEC" / otherwise association déconseillée.)
        reasons = low.why.split(" | ")
        justified = all("«" in reason or "no case applies: default" in reason for reason in reasons)
        assert reasons and justified, (low.first, low.second, low.why)
        assert "cannot be ruled out" not in low.why


@pytest.mark.parametrize(
    "pair",
    [
        ("clarithromycine", "simvastatine"),
        ("citalopram", "hydroxyzine"),
        ("escitalopram", "haloperidol"),
    ],
)
def test_known_contre_indications_are_not_lowered(report, pair):
    lowered = {(low.first, low.second) for low in report.lowered}
    assert tuple(sorted(pair)) not in lowered
