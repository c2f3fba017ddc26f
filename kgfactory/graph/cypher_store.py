"""The GraphStore methods both Cypher engines share (FalkorDB, Neo4j): rows in, parameterised Cypher from
`cypher.py` out, typed rows (rows.py) back. An adapter supplies `_run` (a write, or a read whose rows it ignores),
`_rows` (rows as plain dicts), `ensure_schema` and `close`; what differs between engines stays in the adapter and
cypher.DIALECTS. The ontology's and the RDF view's statements are in cypher_semantic.py, `kgf migrate`'s in
cypher_copy.py."""
from __future__ import annotations

import json
from typing import Any, Sequence

from ..errors import CypherQueryError, GraphInputError, GraphStoreError, GraphUnavailableError
from ..rows import (ChunkEntity, ChunkLinks, ChunkRef, ChunkRow, DocumentRow, EdgeRow, EntityMention, EntityRecord,
                    EntityRow, MentionRow, Neighbour)
from ..types import Chunk, Document, Entity, IngestRun, Mention, Relation
from . import cypher as Q
from .cypher_base import BATCH, batches
from .cypher_copy import CopyOps
from .cypher_explore import ExploreOps
from .cypher_semantic import SemanticOps

ENTITY_NS = "urn:kgf:entity:"
CHUNK_NS = "urn:kgf:chunk:"
DOC_NS = "urn:kgf:doc:"
__all__ = ["BATCH", "batches", "check_params", "CypherGraphStore", "ENTITY_NS", "CHUNK_NS", "DOC_NS"]


def check_params(params: Any, engine: str, nul: bool) -> None:
    """Refuse, before sending, a parameter string the engine cannot take: an unpaired surrogate (no engine can
    encode it) and, where `nul`, a NUL character (FalkorDB's protocol cuts the query text at it and answers a
    syntax error). Raises GraphInputError, so the caller sees bad input rather than a store that is down."""
    stack = [params]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if nul and "\x00" in v:
                raise GraphInputError(f"{engine} cannot store text holding a NUL character")
            if not v.isascii():
                try:
                    v.encode("utf-8")
                except UnicodeEncodeError as e:
                    raise GraphInputError(f"{engine} cannot store text holding an unpaired surrogate") from e
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, (list, tuple)):
            stack.extend(v)


class CypherGraphStore(SemanticOps, CopyOps, ExploreOps):
    """Shared implementation of the GraphStore port over an adapter's `_run`/`_rows` (cypher_base.CypherBase)."""

    # -- documents --------------------------------------------------------------------------------
    def get_document(self, doc_id: str) -> DocumentRow | None:
        rows = self._rows(Q.GET_DOCUMENT, {"id": doc_id})
        return _doc(rows[0]) if rows else None

    def documents_by_source(self, source: str, tenant: str) -> list[DocumentRow]:
        return [_doc(r) for r in self._rows(Q.DOCUMENTS_BY_SOURCE, {"source": source, "tenant": tenant})]

    def list_documents(self, tenant: str | None = None, status: str | None = None) -> list[DocumentRow]:
        return [_doc(r) for r in self._rows(Q.LIST_DOCUMENTS, {"tenant": tenant, "status": status})]

    def begin_documents(self, docs: Sequence[Document]) -> None:
        rows = [{"id": d.id, "source": d.source, "title": d.title, "mime": d.mime, "tenant": d.tenant,
                 "tags": list(d.tags), "metadata": json.dumps(d.metadata, default=str, sort_keys=True),
                 "ingested_at": d.ingested_at.isoformat(), "uri": DOC_NS + d.id} for d in docs]
        for batch in batches(rows):
            self._run(Q.BEGIN_DOCUMENTS, {"rows": batch})

    def write_chunks(self, chunks: Sequence[Chunk]) -> None:
        rows = [{"id": c.id, "doc_id": c.doc_id, "tenant": c.tenant, "index": c.index, "text": c.text,
                 "start": c.start, "end": c.end, "page": c.page, "uri": CHUNK_NS + c.id} for c in chunks]
        for batch in batches(rows):
            self._run(Q.WRITE_CHUNKS, {"rows": batch})
        pairs = [[a.id, b.id] for a, b in zip(chunks, chunks[1:]) if a.doc_id == b.doc_id and b.index == a.index + 1]
        for pair_batch in batches(pairs):
            self._run(Q.LINK_NEXT, {"pairs": pair_batch})

    def write_extraction(self, entities: Sequence[Entity], mentions: Sequence[Mention], relations: Sequence[Relation]) -> None:
        rows = [{"id": e.id, "name": e.name, "label": e.label, "tenant": e.tenant, "aliases": list(e.aliases),
                 "uri": ENTITY_NS + e.id, "source": e.source} for e in entities]
        for batch in batches(rows):
            self._run(Q.MERGE_ENTITIES, {"rows": batch})
        by_class: dict[str, list[str]] = {}
        for e in entities:
            by_class.setdefault(e.label, []).append(e.id)
        self._set_labels({tuple(self._labels_for(cls)): ids for cls, ids in by_class.items()})
        mrows = [m.model_dump() for m in mentions]
        for batch in batches(mrows):
            self._run(Q.MERGE_MENTIONS, {"rows": batch})
        by_type: dict[str, list[dict]] = {}
        for r in relations:
            by_type.setdefault(r.type, []).append({"source_id": r.source_id, "target_id": r.target_id,
                                                   "chunk_ids": list(r.chunk_ids)})
        for rtype, rrows in by_type.items():
            stmt = Q.MERGE_RELATIONS.format(rel=Q.rel_type(rtype))
            for batch in batches(rrows):
                self._run(stmt, {"rows": batch})

    def complete_documents(self, rows: Sequence[dict[str, Any]]) -> None:
        """rows: {id, chunks, entities, run_id}; flips status to 'complete' as the last write of a document."""
        tenants: set[str] = set()
        for batch in batches([dict(r) for r in rows]):
            tenants.update(r["tenant"] for r in self._rows(Q.COMPLETE_DOCUMENTS, {"rows": batch}, read_only=False))
        self._bump(tenants)

    def set_status(self, doc_id: str, status: str) -> None:
        self._run(Q.SET_DOCUMENT_STATUS, {"id": doc_id, "status": status})

    def chunk_ids(self, doc_id: str) -> list[str]:
        return [r["id"] for r in self._rows(Q.DOC_CHUNK_IDS, {"id": doc_id})]

    def delete_document(self, doc_id: str) -> list[str]:
        """Provenance first, then chunks, then the document node last: an interrupted delete re-runs cleanly."""
        tenants = [r["tenant"] for r in self._rows(Q.TENANT_OF_DOCUMENT, {"id": doc_id})]
        cids = self.chunk_ids(doc_id)
        removed: list[str] = []
        if cids:
            eids = [r["id"] for r in self._rows(Q.ENTITIES_OF_CHUNKS, {"cids": cids})]
            if eids:
                self._run(Q.PRUNE_RELATION_PROVENANCE, {"eids": eids, "cids": cids})
                self._run(Q.DELETE_UNSUPPORTED_RELATIONS, {"eids": eids})
            self._run(Q.DELETE_CHUNKS, {"cids": cids})
            if eids:
                removed = [r["id"] for r in self._rows(Q.DELETE_ORPHAN_ENTITIES, {"eids": eids}, read_only=False)]
        self._run(Q.DELETE_DOCUMENT, {"id": doc_id})
        self._bump(tenants)
        return removed

    # -- reads for the retriever ----------------------------------------------------------------
    def revision(self) -> int:
        rows = self._rows(Q.GET_REVISION)
        return int(rows[0]["value"]) if rows else 0

    def tenant_revision(self, tenant: str) -> tuple[int, int]:
        """(this tenant's revision, the revision of writes not attributed to a tenant): what a cache of one
        tenant's data, such as an analyst view, must match."""
        rows = self._rows(Q.GET_REVISIONS, {"keys": [Q.REVISION_TENANT + tenant, Q.REVISION_ALL]})
        got = {r["key"]: int(r["value"] or 0) for r in rows}
        return got.get(Q.REVISION_TENANT + tenant, 0), got.get(Q.REVISION_ALL, 0)

    def export_chunks(self, tenant: str | None = None) -> list[ChunkRef]:
        return [ChunkRef(**r) for r in self._rows(Q.EXPORT_CHUNKS, {"tenant": tenant})]

    def export_entities(self, tenant: str | None = None) -> list[EntityRow]:
        return [EntityRow(**r) for r in self._rows(Q.EXPORT_ENTITIES, {"tenant": tenant})]

    def export_mentions(self, tenant: str | None = None) -> list[MentionRow]:
        return [MentionRow(**r) for r in self._rows(Q.EXPORT_MENTIONS, {"tenant": tenant})]

    def export_entity_edges(self, tenant: str | None = None) -> list[EdgeRow]:
        return [EdgeRow(**r) for r in self._rows(Q.EXPORT_ENTITY_EDGES, {"tenant": tenant})]

    # delta reads: the retriever refreshes its adjacency from these after an ingest or delete
    def _rows_by_ids(self, cypher: str, ids: Sequence[str]) -> list[dict[str, Any]]:
        ids = sorted(set(ids))
        return [r for batch in batches(ids) for r in self._rows(cypher, {"ids": list(batch)})]

    def export_chunks_of_documents(self, doc_ids: Sequence[str]) -> list[ChunkRef]:
        return [ChunkRef(**r) for r in self._rows_by_ids(Q.EXPORT_CHUNKS_OF_DOCUMENTS, doc_ids)]

    def export_mentions_of_chunks(self, chunk_ids: Sequence[str]) -> list[MentionRow]:
        return [MentionRow(**r) for r in self._rows_by_ids(Q.EXPORT_MENTIONS_OF_CHUNKS, chunk_ids)]

    def export_entities_by_id(self, entity_ids: Sequence[str]) -> list[EntityRow]:
        return [EntityRow(**r) for r in self._rows_by_ids(Q.EXPORT_ENTITIES_BY_ID, entity_ids)]

    def export_edges_of_entities(self, entity_ids: Sequence[str]) -> list[EdgeRow]:
        """Every entity-entity edge with at least one end in entity_ids, each once. Batched by source and by
        target separately, so an edge between two batches is returned by both `to` queries: deduplicated."""
        ids = sorted(set(entity_ids))
        if len(ids) <= BATCH:
            rows = self._rows(Q.EXPORT_EDGES_FROM, {"ids": ids}) + self._rows(Q.EXPORT_EDGES_TO, {"ids": ids})
            return [EdgeRow(**r) for r in rows]
        out = self._rows_by_ids(Q.EXPORT_EDGES_FROM, ids)
        wanted = set(ids)
        for batch in batches(ids):
            out += [r for r in self._rows(Q.EXPORT_EDGES_TO, {"ids": list(batch)}) if r["source_id"] not in wanted]
        return [EdgeRow(**r) for r in out]

    def get_chunks(self, ids: Sequence[str]) -> list[ChunkRow]:
        return [ChunkRow(**r) for r in self._rows(Q.GET_CHUNKS, {"ids": list(ids)})]

    def chunk_entities(self, ids: Sequence[str]) -> list[ChunkEntity]:
        return [ChunkEntity(**r) for r in self._rows(Q.CHUNK_ENTITIES, {"ids": list(ids)})]

    def neighbour_chunks(self, ids: Sequence[str]) -> list[ChunkLinks]:
        return [ChunkLinks(**r) for r in self._rows(Q.NEIGHBOUR_CHUNKS, {"ids": list(ids)})]

    # -- runs, stats, analyst queries -------------------------------------------------------------
    def record_run(self, run: IngestRun) -> None:
        self._run(Q.RECORD_RUN, {"id": run.id, "started_at": run.started_at.isoformat(),
                                 "finished_at": run.finished_at.isoformat() if run.finished_at else None,
                                 "body": run.model_dump_json()})

    def list_runs(self, limit: int = 20) -> list[IngestRun]:
        return [IngestRun.model_validate_json(r["body"]) for r in self._rows(Q.LIST_RUNS, {"limit": int(limit)})]

    def stats(self) -> dict[str, int]:
        """Node and relationship counts. Document and Chunk count complete documents only; documents a crash
        left 'pending' (or a delete 'deleting') and their chunks are counted apart, as "Document (pending)" and
        "Chunk (pending)", present only when there are some."""
        out: dict[str, int] = {}
        for label in ("Document", "Chunk", "Entity"):  # KGMeta/IngestRun are bookkeeping, not knowledge
            rows = self._rows(Q.COUNT_LABEL.format(label=Q.label_clause([label])[1:]))
            out[label] = int(rows[0]["n"]) if rows else 0
        for r in self._rows(Q.COUNT_UNFINISHED_DOCUMENTS):
            docs, chunks = int(r["documents"]), int(r["chunks"])
            out["Document"] -= docs
            out["Chunk"] -= chunks
            out[f"Document ({r['status']})"] = docs
            out[f"Chunk ({r['status']})"] = chunks
        for r in self._rows(Q.COUNT_REL_TYPES):
            out[r["type"]] = int(r["n"])
        return out

    # -- analysts' named reads (the API, the SDK and the CLI reach the graph through these, not raw Cypher) --
    def entity(self, entity_id: str, tenant: str) -> EntityRecord | None:
        """One entity of `tenant`; None when there is none."""
        rows = self._rows(Q.API_ENTITY, {"id": entity_id, "tenant": tenant})
        return EntityRecord(**rows[0]) if rows else None

    def entity_neighbours(self, entity_id: str, tenant: str, limit: int = 50) -> list[Neighbour]:
        """Related entities of the same tenant, heaviest edge first."""
        rows = self._rows(Q.API_ENTITY_NEIGHBOURS, {"id": entity_id, "tenant": tenant, "limit": int(limit)})
        return [Neighbour(**r) for r in rows]

    def entity_mentions(self, entity_id: str, tenant: str, limit: int = 50) -> list[EntityMention]:
        """Chunks of the same tenant that mention the entity, in document order."""
        rows = self._rows(Q.API_ENTITY_CHUNKS, {"id": entity_id, "tenant": tenant, "limit": int(limit)})
        return [EntityMention(**r) for r in rows]

    def schema_counts(self, tenant: str) -> tuple[dict[str, int], dict[str, int]]:
        """(node label -> count, relationship type -> count) within one tenant, each sorted by name."""
        labels: dict[str, int] = {}
        for r in self._rows(Q.API_SCHEMA_LABELS, {"tenant": tenant}):
            for lab in r["labels"] or []:
                labels[lab] = labels.get(lab, 0) + int(r["n"])
        rels = {r["type"]: int(r["n"]) for r in self._rows(Q.API_SCHEMA_RELS, {"tenant": tenant})}
        return dict(sorted(labels.items())), dict(sorted(rels.items()))

    def count_documents_from_file(self, tenant: str, path: str) -> int:
        """Documents of `tenant` read from one file: the file itself or its records (source "<path>#<i>")."""
        rows = self._rows(Q.COUNT_DOCUMENTS_FROM_FILE, {"tenant": tenant, "path": path, "prefix": path + "#"})
        return int(rows[0]["n"]) if rows else 0

    def query(self, cypher: str, params: dict[str, Any] | None = None, read_only: bool = True) -> list[dict[str, Any]]:
        """Analysts' Cypher, read-only unless `read_only=False` (kept for tests and tools; kgfactory's own
        writes go through the named methods). A query the engine refuses raises CypherQueryError."""
        if read_only and Q.is_write(cypher):
            raise CypherQueryError("write clauses are not allowed in a read-only query")
        try:
            return self._rows(cypher, params, read_only=read_only)
        except (GraphUnavailableError, GraphInputError, CypherQueryError):
            raise
        except GraphStoreError as e:  # the engine answered and refused the query: the query's fault
            raise CypherQueryError(str(e)) from e


def _doc(row: dict[str, Any]) -> DocumentRow:
    row = dict(row)
    if isinstance(row.get("metadata"), str):
        try:
            row["metadata"] = json.loads(row["metadata"])
        except ValueError:
            pass
    return DocumentRow(**row)
