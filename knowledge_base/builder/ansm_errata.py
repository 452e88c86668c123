"""Level corrections of the ANSM thesaurus JSON, taken from the official PDF of the same edition.

The structured JSON we build from lost a level in a few rules (the condition landed in the mechanism
column). A lost contre-indication is the worst defect the engine can have, so these rules are
corrected from the PDF (``curated/ansm_errata.yaml``) rather than left to the qualification data.
The file is versioned curation: each entry says why, and the issue 9 tests check its text against
the PDF import.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from iatro.errors import SourceError
from iatro.kb.thesaurus import LEVEL_RANK, InteractionRule, Level, LevelEntry

from .files import CURATED_DIR

ERRATA_PATH = CURATED_DIR / "ansm_errata.yaml"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ErratumLevel(_Frozen):
    level: Level
    condition: str = ""


class Erratum(_Frozen):
    rule_id: str = Field(pattern=r"^ansm:.+\+.+$")
    why: str = Field(min_length=20)
    levels: tuple[ErratumLevel, ...] = Field(min_length=1)
    mechanism: str

    @field_validator("levels")
    @classmethod
    def _worst_first(cls, levels: tuple[ErratumLevel, ...]) -> tuple[ErratumLevel, ...]:
        ranks = [LEVEL_RANK[entry.level] for entry in levels]
        if ranks != sorted(ranks, reverse=True) or len(set(ranks)) != len(ranks):
            raise ValueError("levels must be distinct and listed worst first")
        return levels


def load_errata(edition: str, path: Path = ERRATA_PATH) -> tuple[Erratum, ...]:
    """The errata of ``edition`` (none when the file's ``editions`` do not list it)."""
    if not path.is_file():
        return ()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SourceError(f"{path}: cannot read errata: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("errata"), list):
        raise SourceError(f"{path}: expected a mapping with an 'errata' list")
    if edition not in [str(e) for e in raw.get("editions", ())]:
        return ()
    errata = []
    for position, entry in enumerate(raw["errata"]):
        try:
            errata.append(Erratum.model_validate(entry))
        except ValidationError as exc:
            where = entry.get("rule_id", f"#{position}") if isinstance(entry, dict) else f"#{position}"
            details = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise SourceError(f"{path}: {where}: {details}") from exc
    return tuple(errata)


def apply_errata(rules: Sequence[InteractionRule], errata: Sequence[Erratum]) -> list[InteractionRule]:
    """``rules`` with each erratum's levels and mechanism; an erratum naming no rule is an error
    (a renamed rule must not silently drop its correction)."""
    by_id = {erratum.rule_id: erratum for erratum in errata}
    known = {rule.rule_id for rule in rules}
    missing = sorted(set(by_id) - known)
    if missing:
        raise SourceError(f"{ERRATA_PATH.name}: no such rule in the edition: {missing}")
    out = []
    for rule in rules:
        erratum = by_id.get(rule.rule_id)
        if erratum is not None:
            rule = rule.model_copy(
                update={
                    "levels": tuple(LevelEntry(level=e.level, condition=e.condition) for e in erratum.levels),
                    "mechanism": erratum.mechanism,
                }
            )
        out.append(rule)
    return out
