"""What one check returns, and how checks find and read the curated tables compiled beside the KB.

Every check of this family (anticholinergic burden, QT risk, renal function, vaccines, eligibility)
returns a :class:`CheckResult`; the engine merges them into the report. ``missing_inputs`` names the
inputs the check needed and did not get, so that the report can say what would settle a finding
instead of guessing.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from iatro.errors import KnowledgeBaseCorrupt, KnowledgeBaseMissing, SourceError
from iatro.kb.store import KnowledgeBase
from iatro.kb.yaml_tables import read_yaml
from iatro.model.report import Alert, replaced

TableT = TypeVar("TableT", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class CheckResult:
    alerts: tuple[Alert, ...] = ()
    # Keyed by the report's ``scores`` / ``eligibility`` entry the check fills ("anticholinergic",
    # "qt", ...); plain JSON-ready values so that the report serialises them as they are.
    scores: dict[str, object] = field(default_factory=dict)
    eligibility: dict[str, object] = field(default_factory=dict)
    missing_inputs: tuple[str, ...] = ()


class AlertMemo:
    """Alerts remembered on everything they are built from but their line numbers.

    A check builds an alert from a few facts (the rule, the substances, a score) that prescriptions
    repeat, on other lines. :meth:`get` returns the alert built the first time, copied with this
    prescription's ``lines`` when they differ. So ``key`` must hold every fact ``build`` reads but
    the lines, and nothing of the alert but ``lines`` may depend on the lines (a text quoting line
    numbers puts them in the key). Sharing alerts also lets the API reuse their JSON
    (``api/report_json.py``). Bounded: a long-running server meets ever new combinations.
    ``limit=0`` remembers nothing (the tests compare both ways).
    """

    def __init__(self, limit: int = 20_000) -> None:
        self.limit = limit
        self._alerts: dict[Hashable, Alert] = {}

    def get(self, key: Hashable, lines: tuple[int, ...], build: Callable[[], Alert]) -> Alert:
        alert = self._alerts.get(key)
        if alert is None:
            alert = build()
            if self.limit <= 0:
                return alert
            if len(self._alerts) >= self.limit:
                self._alerts.clear()
            self._alerts[key] = alert
        return alert if alert.lines == lines else replaced(alert, lines=lines)


def compiled_table(kb: KnowledgeBase, name: str) -> Path:
    """The path of a curated table the KB build copies into the compiled directory.

    The engine never reads ``knowledge_base/`` itself (dependencies point one way): a check whose
    table is absent from the compiled KB refuses to start rather than run without its rules.
    """
    if kb.directory is None or not (kb.directory / name).exists():
        raise KnowledgeBaseMissing(
            f"{name} is not in the compiled knowledge base ({kb.directory}): rebuild the KB with a "
            "build that copies knowledge_base/curated/" + name
        )
    return kb.directory / name


def read_table(path: Path, model: type[TableT]) -> TableT:
    """Parse and validate a curated YAML table; errors name the file and the offending field."""
    try:
        raw = read_yaml(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SourceError(f"{path}: cannot read: {exc}") from exc
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(part) for part in err['loc']) or '(top)'}: {err['msg']}" for err in exc.errors()
        )
        raise SourceError(f"{path}: {details}") from exc


def substance_ids(kb: KnowledgeBase, names: Iterable[str], where: str) -> frozenset[int]:
    """KB ids of the substances a curated table names; an unknown name is refused, because a
    misspelt substance would make its rule silently inert."""
    ids: set[int] = set()
    for name in names:
        found = kb.find_substances(name)
        if not found:
            raise KnowledgeBaseCorrupt(f"{where}: substance {name!r} is not in the KB")
        ids.update(s.id for s in found)
    return frozenset(ids)
