"""Coverage figures of a loaded KB, computed from its content (not stored at build time)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from iatro.kb.store import KnowledgeBase


def _ratio(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def coverage(kb: KnowledgeBase) -> dict[str, Any]:
    marketed = [p for p in kb.products if p.marketed]
    with_substance = [p for p in marketed if p.components]
    single = [p for p in marketed if len(p.components) == 1]
    single_drugs = [p for p in single if not p.homeopathic]
    atc5 = [p for p in single_drugs if p.atc and len(p.atc) == 7]

    index = kb.ansm_index
    linked = {name for name, e in index.items() if e["exception"] is None and e["substances"]}
    excepted = {name for name, e in index.items() if e["exception"]}
    unexplained = sorted(set(index) - linked - excepted)

    acb = kb.raw["acb"]
    acb_mapped = [row for row in acb if row["substances"]]
    acb_drugs = [row for row in acb if not row.get("not_single_drug")]
    acb_drugs_mapped = [row for row in acb_drugs if row["substances"]]
    return {
        "kb_version": kb.version,
        "products": {
            "total": len(kb.products),
            "marketed": len(marketed),
            "marketed_with_substance": len(with_substance),
            "marketed_with_substance_ratio": _ratio(len(with_substance), len(marketed)),
            "composition_sources": dict(Counter(c.source for p in marketed for c in p.components[:1])),
            "marketed_without_substance": sorted(p.name for p in marketed if not p.components),
        },
        "atc": {
            "marketed_single_substance": len(single),
            "marketed_single_substance_homeopathic": len(single) - len(single_drugs),
            "marketed_single_substance_non_homeopathic": len(single_drugs),
            "with_atc5": len(atc5),
            "with_atc5_ratio": _ratio(len(atc5), len(single_drugs)),
            "with_atc5_ratio_including_homeopathic": _ratio(len(atc5), len(single)),
            "basis": dict(Counter(p.atc_basis for p in atc5)),
        },
        "ansm_index": {
            "substances": len(index),
            "linked_to_bdpm": len(linked),
            "ansm_only_with_reason": len(excepted),
            "unexplained": unexplained,
            "link_rules": dict(Counter(how for e in index.values() for how in e["how"])),
        },
        "anticholinergic_table": {
            "drugs": len(acb),
            "mapped": len(acb_mapped),
            "mapped_ratio": _ratio(len(acb_mapped), len(acb)),
            "single_drug_entries": len(acb_drugs),
            "single_drug_entries_mapped_ratio": _ratio(len(acb_drugs_mapped), len(acb_drugs)),
            "by": dict(Counter(row["how"] for row in acb)),
            "unmapped": sorted(row["name"] for row in acb if not row["substances"]),
        },
        "substances": {
            "total": len(kb.substances),
            "by_origin": dict(Counter(s.origin for s in kb.substances)),
            "with_atc": sum(1 for s in kb.substances if s.atc),
        },
    }
