"""The ranked risk score: a ranking device to decide whom to invite first, not a clinical value.

No published score combines these findings, so the weights below are Iatro's choice, stated here and
written into the output's metadata; a reviewer may change them without touching any check. They order
patients by the severity of what the engine found: a contre-indication outweighs an association
déconseillée, which outweighs one STOPP criterion; a high Tisdale band and an ACB total at or above the
scale's own threshold (3) add to it.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from iatro.checks.anticholinergic import ALERT_THRESHOLD as ACB_THRESHOLD

WEIGHTS: Final = {
    "contraindications": 3,
    "deconseillees": 2,
    "stopp": 1,
    "acb_at_threshold": 1,
    "qt_high": 2,
    "qt_moderate": 1,
}
FORMULA: Final = (
    "risk_score = 3 x contraindications + 2 x deconseillees + 1 x stopp "
    f"+ 1 x (acb_total >= {ACB_THRESHOLD}) + 2 x (qt_level == high) + 1 x (qt_level == moderate)"
)
# Bands of the score for the summary; like the weights, an ordering choice, not a clinical grading.
BANDS: Final = (("none", 0), ("low", 1), ("moderate", 3), ("high", 6))
DISCLAIMER: Final = (
    "The risk score ranks patients for a medication review; it is not a validated clinical score "
    "and says nothing a pharmacist's or physician's review would not confirm or refute."
)

Counts = npt.NDArray[np.integer]


def risk_scores(
    contraindications: Counts,
    deconseillees: Counts,
    stopp: Counts,
    acb_total: Counts,
    qt_level: npt.ArrayLike,
) -> npt.NDArray[np.int32]:
    """One score per patient; ``qt_level`` holds each patient's Tisdale level name."""
    level = np.asarray(qt_level)
    score: npt.NDArray[np.int32] = (
        WEIGHTS["contraindications"] * np.asarray(contraindications, dtype=np.int64)
        + WEIGHTS["deconseillees"] * np.asarray(deconseillees, dtype=np.int64)
        + WEIGHTS["stopp"] * np.asarray(stopp, dtype=np.int64)
        + WEIGHTS["acb_at_threshold"] * (np.asarray(acb_total) >= ACB_THRESHOLD)
        + WEIGHTS["qt_high"] * (level == "high")
        + WEIGHTS["qt_moderate"] * (level == "moderate")
    ).astype(np.int32)
    return score


def band(score: int) -> str:
    found = BANDS[0][0]
    for name, minimum in BANDS:
        if score >= minimum:
            found = name
    return found


def bands(scores: Counts) -> npt.NDArray[np.int64]:
    """Each score's band, as an index into :data:`BANDS` (the last band whose minimum it reaches)."""
    minimums = np.array([minimum for _, minimum in BANDS])
    return np.maximum(np.searchsorted(minimums, scores, side="right") - 1, 0).astype(np.int64)
