"""The analysis report as JSON bytes, assembled from remembered pieces: what ``POST /v1/analyses`` sends.

The bytes are exactly ``orjson.dumps(report_document(report))`` (``tests/api/test_report_json.py``
checks it on hundreds of real reports); building them that way costs a pydantic dump of every alert
and line, their SFPC proposals, then orjson: about a fifth of an analysis.

Why pieces can be remembered. Most alerts and lines of a report are shallow copies of objects the
engine memoises: an interaction alert is its pair's alert with this prescription's line numbers, a
resolved line is its text's resolution with this prescription's index. Every field but that one is
the *same object* as in the memoised original, so the JSON of every field but that one is the same.
It is kept, split around that field, under a key made of the identities of the other fields' values.
Each entry holds those values, so while it is remembered no other object can have one of their
identities: an equal key means the very same values, hence the same JSON (the models are frozen and
their values immutable: strings, numbers, tuples, frozen models; an instance of a subclass, which
could have more fields, takes the plain path). Any other object (built afresh, or with a new value)
misses and is dumped as before, then remembered; the memo is bounded (a long-running server sees
ever new combinations).

Anything this module cannot render exactly (a value orjson would render differently from pydantic's
JSON mode, e.g. a dataclass or a datetime in ``scores``) makes it fall back to the plain path.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, cast

import orjson
from pydantic import BaseModel

from api import sfpc
from iatro.model.report import Alert, LineReport, Report

# Values orjson would render unlike pydantic's JSON mode raise TypeError instead (then: plain path).
_STRICT = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS
_HOLE = b"\x00"  # never in orjson's output: JSON strings escape control characters
_MEMO_LIMIT = 10_000  # pieces per generation and kind of object (a 15-line report: ~30 alerts, 15 lines)
# (the field values the key names, the JSON before the varying field's value, the JSON after it)
_Piece = tuple[tuple[object, ...], bytes, bytes]


def report_document(report: Report) -> dict[str, Any]:
    """The contract's report as JSON data, each alert with its proposed SFPC codes."""
    document = report.model_dump(mode="json", exclude_none=True)
    for alert, data in zip(report.alerts, document["alerts"], strict=True):
        data["sfpc"] = sfpc.propose_json(alert)
    return document


def _alert_document(alert: BaseModel) -> dict[str, Any]:
    document = alert.model_dump(mode="json", exclude_none=True)
    document["sfpc"] = sfpc.propose_json(cast(Alert, alert))
    return document


def _line_document(line: BaseModel) -> dict[str, Any]:
    return line.model_dump(mode="json", exclude_none=True)


class _Pieces:
    """The JSON of instances of one model, remembered around its one field that changes (see above).

    Two generations, so that filling up forgets what stopped recurring, not what recurs: new pieces go
    to the young one; when it is full it becomes the old one (the previous old one is dropped), and a
    piece found in the old one is moved back to the young one.
    """

    def __init__(
        self,
        model: type[BaseModel],
        varying: str,
        document: Callable[[BaseModel], dict[str, Any]],
        limit: int = _MEMO_LIMIT,
    ) -> None:
        self._model = model
        self._varying = varying
        self._document = document
        self._others = operator.itemgetter(*(name for name in model.model_fields if name != varying))
        self._limit = limit
        self._young: dict[tuple[int, ...], _Piece] = {}
        self._old: dict[tuple[int, ...], _Piece] = {}

    def array(self, items: tuple[BaseModel, ...]) -> bytes:
        """The JSON array of ``items``. (One loop with local names: it runs for every alert and line.)"""
        model, others, young, varying, dumps = (
            self._model,
            self._others,
            self._young,
            self._varying,
            orjson.dumps,
        )
        parts: list[bytes] = []
        for item in items:
            if type(item) is not model:
                # A subclass has more fields than the key reads, and the report's own dump writes only
                # the declared model's: the plain path renders it (TypeError, see ReportJson.__call__).
                raise TypeError(f"{type(item).__name__} is not {model.__name__}")
            fields = item.__dict__
            values = others(fields)
            key = tuple(map(id, values))
            found = young.get(key)
            if found is None:
                found = self._remember(item, key, values)
                young = self._young  # a new generation may have begun
                if found is None:
                    parts += (b",", dumps(self._document(item)))
                    continue
            parts += (b",", found[1], dumps(fields[varying]), found[2])
        if not parts:
            return b"[]"
        parts[0] = b"["
        parts.append(b"]")
        return b"".join(parts)

    def _remember(self, item: BaseModel, key: tuple[int, ...], values: tuple[object, ...]) -> _Piece | None:
        found = self._old.pop(key, None)
        if found is None:
            document = self._document(item)
            if self._varying not in document:  # excluded (None): its place is unknown, keep nothing
                return None
            document[self._varying] = orjson.Fragment(_HOLE)
            head, tail = orjson.dumps(document).split(_HOLE)
            # ``values`` is kept with the pieces: it keeps the identities in the key unique.
            found = (values, head, tail)
        if len(self._young) >= self._limit:
            self._old, self._young = self._young, {}
        self._young[key] = found
        return found

    def __len__(self) -> int:
        return len(self._young) + len(self._old)


class ReportJson:
    """Renders reports to JSON bytes; one per server process (its memo is shared between requests)."""

    def __init__(self) -> None:
        self.alerts = _Pieces(Alert, "lines", _alert_document)
        self.lines = _Pieces(LineReport, "index", _line_document)
        self._fields = tuple(Report.model_fields)

    def __call__(self, report: Report) -> bytes:
        if type(report) is not Report:
            return orjson.dumps(report_document(report))
        try:
            return self._render(report)
        except TypeError:  # a value orjson would not render as pydantic does, or a subclass of a piece
            return orjson.dumps(report_document(report))

    def _render(self, report: Report) -> bytes:
        fields = report.__dict__
        out: list[bytes] = []
        for name in self._fields:
            value = fields[name]
            if value is None:  # exclude_none
                continue
            if name == "lines":
                rendered = self.lines.array(value)
            elif name == "alerts":
                rendered = self.alerts.array(value)
            else:  # a pydantic model (no such field today) would raise TypeError too: the plain path
                rendered = orjson.dumps(value, option=_STRICT)
            out.append(b'"' + name.encode() + b'":' + rendered)
        return b"{" + b",".join(out) + b"}"
