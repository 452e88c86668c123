"""The kernel's vocabulary: lines, the exposures they stand for, and the signatures of those.

A line is encoded once, as the engine reads it (:class:`iatro.resolve.lines.Resolver` and
:func:`iatro.checks.exposures.build_exposures`, or the exposures a caller built so already), into a
compact id: its exposures (numbered line 0) get ids of their own, and each exposure the id of its
*signature*, the set of (rule, side) it meets in the thesaurus (:meth:`InteractionIndex.entries`).
Ids are stable for the kernel's lifetime; encoding new lines extends the registries (not
thread-safe while encoding). :class:`iatro.batch.interactions.BatchInteractions` pairs them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np
from pydantic import ValidationError

from iatro.batch.hits import I32
from iatro.checks.context import Exposure
from iatro.checks.exposures import build_exposures
from iatro.checks.interactions import InteractionIndex
from iatro.errors import FieldError
from iatro.model.prescription import LineInput
from iatro.resolve.lines import Resolver

KeyKind = Literal["substance", "cis", "cip13", "text"]


class LineEncoder:
    """Lines, exposures and signatures met so far, each with a compact id."""

    def __init__(self, index: InteractionIndex, resolver: Resolver | None = None) -> None:
        self.index = index
        self.kb = index.kb
        self.resolver = resolver or Resolver(index.kb)
        # Exposure templates (line 0) -> id; id -> KB substance id and signature id.
        self._exposures: list[Exposure] = []
        self._exposure_ids: dict[Exposure, int] = {}
        self._exposure_sid: list[int] = []
        self._exposure_sig: list[int] = []
        # Signature: the (rule, side) pairs an exposure meets; id 0 is the empty signature.
        self._signatures: list[tuple[tuple[int, int], ...]] = [()]
        self._signature_ids: dict[tuple[tuple[int, int], ...], int] = {(): 0}
        # Lines: id -> exposure ids; id 0 takes no part (unresolved, ambiguous).
        self._lines: list[tuple[int, ...]] = [()]
        self._line_ids: dict[tuple[int, ...], int] = {(): 0}
        self._key_cache: dict[str, dict[str, int]] = {}
        self._input_cache: dict[LineInput, int] = {}

    def encode_lines(self, keys: Iterable[str], kind: KeyKind = "substance") -> I32:
        """Line ids of ``keys`` read as ``kind`` (a DCI name, a CIS, a CIP13, or a free-text line)."""
        if kind not in ("substance", "cis", "cip13", "text"):
            raise FieldError("kind", f"unknown key kind {kind!r}: substance, cis, cip13 or text")
        cache = self._key_cache.setdefault(kind, {})
        keys = keys if isinstance(keys, list) else list(keys)
        try:
            return np.fromiter(map(cache.__getitem__, keys), dtype=np.int32, count=len(keys))
        except KeyError:
            pass  # some keys are new: resolve them once, then read them from the cache
        for i, key in enumerate(keys):
            if key not in cache:
                try:
                    line = LineInput.model_validate({kind: key})
                except ValidationError as exc:
                    raise FieldError(f"keys.{i}", exc.errors()[0]["msg"]) from None
                cache[key] = self._encode(line)
        return np.fromiter(map(cache.__getitem__, keys), dtype=np.int32, count=len(keys))

    def encode_line_inputs(self, lines: Iterable[LineInput]) -> I32:
        """Line ids of contract line inputs (with posology, dose and route when given)."""
        out = []
        for line in lines:
            found = self._input_cache.get(line)
            if found is None:
                found = self._input_cache[line] = self._encode(line)
            out.append(found)
        return np.array(out, dtype=np.int32)

    def encode_exposures(self, lines: Iterable[Sequence[Exposure]]) -> I32:
        """Line ids of lines given as the exposures the engine builds for them.

        Each line is what :func:`iatro.checks.exposures.build_exposures` gives for one line resolved
        by the engine's resolver, numbered line 0 (empty for a line that is not resolved): the id
        ``encode_line_inputs`` gives the same line, for a caller that has resolved its lines already
        (population screening's line catalog) and need not resolve them twice.
        """
        out = []
        for i, exposures in enumerate(lines):
            if any(e.line != 0 for e in exposures):
                raise FieldError(f"lines.{i}", "exposures of one line are numbered line 0")
            out.append(self._line_id(exposures))
        return np.array(out, dtype=np.int32)

    def line_exposures(self, line_id: int) -> tuple[Exposure, ...]:
        """The exposures (with line 0) a line id stands for: what the engine's checks would see."""
        return tuple(self._exposures[e] for e in self._lines[line_id])

    def _encode(self, line: LineInput) -> int:
        report = self.resolver.resolve(line, 0)
        if report.status != "resolved":
            return 0
        return self._line_id(build_exposures(self.kb, (report,), (line,)))

    def _line_id(self, exposures: Iterable[Exposure]) -> int:
        key = tuple(self._exposure_id(e) for e in exposures)
        found = self._line_ids.get(key)
        if found is None:
            found = self._line_ids[key] = len(self._lines)
            self._lines.append(key)
        return found

    def _exposure_id(self, exposure: Exposure) -> int:
        found = self._exposure_ids.get(exposure)
        if found is None:
            found = self._exposure_ids[exposure] = len(self._exposures)
            self._exposures.append(exposure)
            self._exposure_sid.append(exposure.substance_id)
            self._exposure_sig.append(self._signature(exposure))
        return found

    def _signature(self, exposure: Exposure) -> int:
        key = tuple(sorted({(rule, side) for rule, side, _via in self.index.entries(exposure)}))
        found = self._signature_ids.get(key)
        if found is None:
            found = self._signature_ids[key] = len(self._signatures)
            self._signatures.append(key)
        return found
