"""OCR fixtures: the pipeline on the real KB, and a fixed, seeded subset of generated ordonnances.

The subset is read once per session; every accuracy test looks at the same readings.
"""

from __future__ import annotations

import pytest

from iatro.analysis import Engine
from ocr.evaluate import Metrics, run
from ocr.generator import LAYOUTS, VARIANTS, DrugPool, GeneratedPage, generate_page
from ocr.pipeline import OcrPipeline

SEED = 7001
PAGES_PER_VARIANT = 3  # one page of each layout: under 30 s for the nine pages on two cores


@pytest.fixture(scope="session")
def pool(engine: Engine) -> DrugPool:
    return DrugPool(engine.kb, engine.resolver)


@pytest.fixture(scope="session")
def pipeline(engine: Engine) -> OcrPipeline:
    return OcrPipeline(engine)


@pytest.fixture(scope="session")
def subset(pool: DrugPool) -> list[GeneratedPage]:
    return [
        generate_page(pool, SEED + i, LAYOUTS[i % len(LAYOUTS)], variant)
        for variant in VARIANTS
        for i in range(PAGES_PER_VARIANT)
    ]


@pytest.fixture(scope="session")
def subset_metrics(pipeline: OcrPipeline, subset: list[GeneratedPage]) -> dict[str, Metrics]:
    return run(pipeline, subset)
