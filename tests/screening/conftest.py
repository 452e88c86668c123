"""Fixtures of the screening tests: seeded synthetic claims and a screener on the real KB."""

from __future__ import annotations

import pyarrow as pa
import pytest

from benchmarks.claims_generator import claims
from iatro.analysis import Engine
from iatro.kb.store import KnowledgeBase
from screening.batch import Screener
from screening.derive import last_date
from screening.options import ScreeningOptions


def generated(
    kb: KnowledgeBase, patients: int, seed: int, codes: str = "cip13", unknown: float = 0.0
) -> pa.Table:
    return pa.concat_tables(claims(kb, patients, seed=seed, codes=codes, unknown_rate=unknown))  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def cip13_claims(kb: KnowledgeBase) -> pa.Table:
    return generated(kb, 300, seed=11, unknown=0.01)


@pytest.fixture(scope="session")
def mixed_claims(kb: KnowledgeBase) -> pa.Table:
    return generated(kb, 150, seed=12, codes="mixed", unknown=0.02)


@pytest.fixture(scope="session")
def options(cip13_claims: pa.Table) -> ScreeningOptions:
    as_of = last_date(cip13_claims)
    assert as_of is not None
    return ScreeningOptions(as_of=as_of)


@pytest.fixture(scope="session")
def screener(engine: Engine, options: ScreeningOptions) -> Screener:
    return Screener(engine, options)
