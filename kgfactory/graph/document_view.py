"""One document as the API and the in-process SDK show it: its chunks in order and the entities they mention.

Written once over the GraphStore port so `GET /v1/documents/{id}` and `KnowledgeBase.document()` cannot drift.
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ..ports import GraphStore
from ..rows import DocumentRow

CHUNK_FIELDS = ("id", "index", "text", "start", "end", "page")


def document_detail(graph: GraphStore, doc: DocumentRow) -> dict[str, Any]:
    """`doc` is the stored document row (already checked to belong to the caller's tenant)."""
    ids = graph.chunk_ids(doc.id)
    chunks = sorted(graph.get_chunks(ids), key=lambda c: c.index or 0) if ids else []
    ents: dict[str, dict[str, Any]] = {}
    for r in graph.chunk_entities(ids) if ids else []:
        e = ents.setdefault(r.id, {"id": r.id, "name": r.name, "label": r.label, "chunks": []})
        e["chunks"].append(r.chunk_id)
    return {**asdict(doc), "chunks": [{k: getattr(c, k) for k in CHUNK_FIELDS} for c in chunks],
            "entities": sorted(ents.values(), key=lambda e: e["name"] or "")}
