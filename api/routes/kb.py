"""The loaded knowledge base: version, sources with editions and licences, coverage figures."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import LoadedDep
from api.schemas import KbInfo, KbSource, errors
from iatro.analysis import CHECKS

router = APIRouter(prefix="/v1", tags=["knowledge base"])


@router.get("/kb", summary="Knowledge base version, sources and coverage", responses=errors(503))
async def kb_info(loaded: LoadedDep) -> KbInfo:
    manifest = loaded.kb.manifest
    return KbInfo(
        kb_version=manifest.kb_version,
        built_at=manifest.built_at,
        schema_version=manifest.schema_version,
        sources={
            key: KbSource(title=src.title, edition=src.edition, licence=src.licence)
            for key, src in manifest.sources.items()
        },
        coverage=loaded.coverage,
        checks=list(CHECKS),
    )
