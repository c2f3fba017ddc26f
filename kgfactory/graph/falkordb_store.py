"""FalkorDB adapter for the GraphStore port (the embedded default, or a FalkorDB server by socket/host)."""
from __future__ import annotations

import json
import logging
from typing import Any, Iterable, Sequence

from ..errors import GraphStoreError
from ..types import Chunk, Document, Entity, IngestRun, Mention, Relation
from . import cypher as Q

log = logging.getLogger(__name__)

_BATCH = 2000
ENTITY_NS = "urn:kgf:entity:"
CHUNK_NS = "urn:kgf:chunk:"
DOC_NS = "urn:kgf:doc:"


def _batches(rows: list, size: int = _BATCH):
    for i in range(0, len(rows), size):
        yield rows[i:i + size]


class FalkorDBGraphStore:
    """Talks to FalkorDB with the `falkordb` client. `labels_for(cls)` gives a class plus its superclasses."""

    dialect = "falkordb"

    def __init__(self, graph_name: str = "kgf", unix_socket_path: str | None = None, host: str = "localhost",
                 port: int = 6379, labels_for=None, on_close=None):
        try:
            from falkordb import FalkorDB

            self._db = FalkorDB(unix_socket_path=unix_socket_path) if unix_socket_path else FalkorDB(host=host, port=port)
            self._g = self._db.select_graph(graph_name)
        except Exception as e:
            raise GraphStoreError(f"cannot connect to FalkorDB ({unix_socket_path or f'{host}:{port}'}): {e}") from e
        self._labels_for = labels_for or (lambda cls: [cls])
        self._on_close = on_close

    # -- plumbing ---------------------------------------------------------------------------------
    def _run(self, cypher: str, params: dict[str, Any] | None = None, read_only: bool = False):
        try:
            if read_only:
                return self._g.ro_query(cypher, params or {})
            return self._g.query(cypher, params or {})
        except Exception as e:
            raise GraphStoreError(f"FalkorDB query failed: {e}") from e

    def _rows(self, cypher: str, params: dict[str, Any] | None = None, read_only: bool = True) -> list[dict[str, Any]]:
        try:
            res = self._run(cypher, params, read_only=read_only)
        except GraphStoreError as e:
            if read_only and "empty key" in str(e):
                return []  # FalkorDB creates a graph on its first write; before that it is simply empty
            raise
        names = [h[1] if isinstance(h, (list, tuple)) else h for h in (res.header or [])]
        return [dict(zip(names, [_plain(v) for v in row])) for row in res.result_set]

    def ensure_schema(self, entity_labels: Iterable[str] = ()) -> None:
        for stmt in Q.DIALECTS[self.dialect]["indexes"]:
            try:
                self._g.query(stmt)
            except Exception as e:  # already exists
                if "already" not in str(e).lower():
                    raise GraphStoreError(f"creating index failed ({stmt}): {e}") from e

    # -- documents --------------------------------------------------------------------------------
    def get_document(self, doc_id: str) -> dict[str, Any] | None:
        rows = self._rows(Q.GET_DOCUMENT, {"id": doc_id})
        return _doc(rows[0]) if rows else None

    def documents_by_source(self, source: str, tenant: str) -> list[dict[str, Any]]:
        return [_doc(r) for r in self._rows(Q.DOCUMENTS_BY_SOURCE, {"source": source, "tenant": tenant})]

    def list_documents(self, tenant: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        return [_doc(r) for r in self._rows(Q.LIST_DOCUMENTS, {"tenant": tenant, "status": status})]

    def begin_documents(self, docs: Sequence[Document]) -> None:
        rows = [{"id": d.id, "source": d.source, "title": d.title, "mime": d.mime, "tenant": d.tenant,
                 "tags": list(d.tags), "metadata": json.dumps(d.metadata, default=str, sort_keys=True),
                 "ingested_at": d.ingested_at.isoformat(), "uri": DOC_NS + d.id} for d in docs]
        for batch in _batches(rows):
            self._run(Q.BEGIN_DOCUMENTS, {"rows": batch})

    def write_chunks(self, chunks: Sequence[Chunk]) -> None:
        rows = [{"id": c.id, "doc_id": c.doc_id, "tenant": c.tenant, "index": c.index, "text": c.text,
                 "start": c.start, "end": c.end, "page": c.page, "uri": CHUNK_NS + c.id} for c in chunks]
        for batch in _batches(rows):
            self._run(Q.WRITE_CHUNKS, {"rows": batch})
        pairs = [[a.id, b.id] for a, b in zip(chunks, chunks[1:]) if a.doc_id == b.doc_id and b.index == a.index + 1]
        for batch in _batches(pairs):
            self._run(Q.LINK_NEXT, {"pairs": batch})

    def write_extraction(self, entities: Sequence[Entity], mentions: Sequence[Mention], relations: Sequence[Relation]) -> None:
        rows = [{"id": e.id, "name": e.name, "label": e.label, "tenant": e.tenant, "aliases": list(e.aliases),
                 "uri": ENTITY_NS + e.id, "source": e.source} for e in entities]
        for batch in _batches(rows):
            self._run(Q.MERGE_ENTITIES, {"rows": batch})
        by_class: dict[str, list[str]] = {}
        for e in entities:
            by_class.setdefault(e.label, []).append(e.id)
        for cls, ids in by_class.items():
            stmt = Q.SET_ENTITY_LABELS.format(labels=Q.label_clause(self._labels_for(cls)))
            for batch in _batches(ids):
                self._run(stmt, {"ids": batch})
        mrows = [m.model_dump() for m in mentions]
        for batch in _batches(mrows):
            self._run(Q.MERGE_MENTIONS, {"rows": batch})
        by_type: dict[str, list[dict]] = {}
        for r in relations:
            by_type.setdefault(r.type, []).append({"source_id": r.source_id, "target_id": r.target_id,
                                                   "chunk_ids": list(r.chunk_ids)})
        for rtype, rrows in by_type.items():
            stmt = Q.MERGE_RELATIONS.format(rel=Q.rel_type(rtype))
            for batch in _batches(rrows):
                self._run(stmt, {"rows": batch})

    def complete_documents(self, rows: Sequence[dict[str, Any]]) -> None:
        """rows: {id, chunks, entities, run_id}; flips status to 'complete' as the last write of a document."""
        for batch in _batches([dict(r) for r in rows]):
            self._run(Q.COMPLETE_DOCUMENTS, {"rows": batch})
        self._run(Q.BUMP_REVISION)

    def set_status(self, doc_id: str, status: str) -> None:
        self._run(Q.SET_DOCUMENT_STATUS, {"id": doc_id, "status": status})

    def chunk_ids(self, doc_id: str) -> list[str]:
        return [r["id"] for r in self._rows(Q.DOC_CHUNK_IDS, {"id": doc_id})]

    def delete_document(self, doc_id: str) -> list[str]:
        """Provenance first, then chunks, then the document node last: an interrupted delete re-runs cleanly."""
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
        self._run(Q.BUMP_REVISION)
        return removed

    # -- reads for the retriever ----------------------------------------------------------------
    def revision(self) -> int:
        rows = self._rows(Q.GET_REVISION)
        return int(rows[0]["value"]) if rows else 0

    def export_chunks(self, tenant: str | None = None) -> list[dict[str, Any]]:
        return self._rows(Q.EXPORT_CHUNKS, {"tenant": tenant})

    def export_entities(self, tenant: str | None = None) -> list[dict[str, Any]]:
        return self._rows(Q.EXPORT_ENTITIES, {"tenant": tenant})

    def export_mentions(self, tenant: str | None = None) -> list[dict[str, Any]]:
        return self._rows(Q.EXPORT_MENTIONS, {"tenant": tenant})

    def export_entity_edges(self, tenant: str | None = None) -> list[dict[str, Any]]:
        return self._rows(Q.EXPORT_ENTITY_EDGES, {"tenant": tenant})

    def get_chunks(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        return self._rows(Q.GET_CHUNKS, {"ids": list(ids)})

    def chunk_entities(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        return self._rows(Q.CHUNK_ENTITIES, {"ids": list(ids)})

    def neighbour_chunks(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        return self._rows(Q.NEIGHBOUR_CHUNKS, {"ids": list(ids)})

    # -- runs, stats, analyst queries -------------------------------------------------------------
    def record_run(self, run: IngestRun) -> None:
        self._run(Q.RECORD_RUN, {"id": run.id, "started_at": run.started_at.isoformat(),
                                 "finished_at": run.finished_at.isoformat() if run.finished_at else None,
                                 "body": run.model_dump_json()})

    def list_runs(self, limit: int = 20) -> list[dict[str, Any]]:
        return [json.loads(r["body"]) for r in self._rows(Q.LIST_RUNS, {"limit": int(limit)})]

    def stats(self) -> dict[str, int]:
        out = {}
        for label in ("Document", "Chunk", "Entity"):  # KGMeta/IngestRun are bookkeeping, not knowledge
            rows = self._rows(Q.COUNT_LABEL.format(label=Q.label_clause([label])[1:]))
            out[label] = int(rows[0]["n"]) if rows else 0
        for r in self._rows(Q.COUNT_REL_TYPES):
            out[r["type"]] = int(r["n"])
        return out

    def query(self, cypher: str, params: dict[str, Any] | None = None, read_only: bool = True) -> list[dict[str, Any]]:
        if read_only and Q.is_write(cypher):
            raise GraphStoreError("write clauses are not allowed in a read-only query")
        return self._rows(cypher, params, read_only=read_only)

    def close(self) -> None:
        try:
            self._db.connection.close()
        except Exception as e:
            log.debug("closing FalkorDB connection: %s", e)
        if self._on_close:
            self._on_close()


def _plain(v: Any) -> Any:
    """FalkorDB nodes/edges -> plain dicts so callers never see vendor types."""
    props = getattr(v, "properties", None)
    if isinstance(props, dict):
        out = dict(props)
        labels = getattr(v, "labels", None)
        if labels is not None:
            out["_labels"] = list(labels)
        rel = getattr(v, "relation", None)
        if rel is not None:
            out["_type"] = rel
        return out
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


def _doc(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    if isinstance(row.get("metadata"), str):
        try:
            row["metadata"] = json.loads(row["metadata"])
        except ValueError:
            pass
    return row
