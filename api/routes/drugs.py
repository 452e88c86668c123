"""Drug search by name, CIS or CIP (the in-memory index of :mod:`api.search`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import DrugIndexDep
from api.schemas import DrugResult, DrugSearchResponse, errors

router = APIRouter(prefix="/v1", tags=["drugs"])


@router.get(
    "/drugs",
    summary="Search products and substances by name, CIS, CIP13 or CIP7",
    description=(
        "Ranked: an existing code, then the exact name, names starting with the query, names with a "
        "word starting with it, then close spellings. Names are compared without case or accents."
    ),
    responses=errors(422, 503),
)
async def search_drugs(
    drugs: DrugIndexDep,
    q: Annotated[str, Query(min_length=1, max_length=100, description="Name, CIS, CIP13 or CIP7")],
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> DrugSearchResponse:
    # On the event loop, like POST /v1/analyses (see api/routes/analyses.py): the index is in memory
    # and a search is short (0.006 to 0.8 ms here, the close spellings the longest).
    hits = drugs.search(q, limit)
    return DrugSearchResponse(
        query=q,
        results=[
            DrugResult(
                kind=h.entry.kind,
                name=h.entry.name,
                cis=h.entry.cis,
                cip13=h.cip13,
                atc=h.entry.atc,
                marketed=h.entry.marketed,
                match=h.match,
                score=h.score,
            )
            for h in hits
        ],
    )
