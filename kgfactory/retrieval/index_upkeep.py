"""The retriever's derived data, kept at the graph's revision: the in-memory graph index and, when exact vector
search is on, the chunk and entity vectors resident in memory (or on the GPU) in the index's order.

Loading the index whole costs seconds to minutes on large graphs, so the changes this process made are
recorded as the ingest pipeline reports them (`documents_written` / `document_deleted`, the listener methods)
and patched in (graph_refresh.py); any other move of the revision reloads the index whole. The revision check,
the one-builder-at-a-time rule and the whole-copy swap are the shared derived-view helper's (derived_view.py).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..derived_view import DerivedView
from ..ports import GraphStore, VectorStore
from .compute import ExactIndex
from .graph_index import GraphIndex

log = logging.getLogger(__name__)

Pending = tuple[int | None, str, list[str]]  # (revision after, write|delete, doc ids)


class IndexUpkeep:
    """Loads, patches and hands out the graph index and the resident vectors at the store's revision."""

    def __init__(self, graph: GraphStore, vectors: VectorStore, dim: Callable[[], int], device: str = "cpu",
                 incremental: bool = True):
        self.graph, self.vectors = graph, vectors
        self.dim = dim  # the embedder's dimension: the resident matrix's width while no vector is stored
        self.device = device
        self.incremental = incremental
        self._exact: _Exact | None = None
        self._pending: list[Pending] = []
        self._lock = threading.Lock()  # the builder lock: index builds, pending events, resident vectors
        self._view: DerivedView[int, GraphIndex] = DerivedView(self._build, builder_lock=self._lock)
        self.last_refresh: dict[str, Any] = {}  # how the index was last brought up to date, for stats and benches

    def index(self) -> GraphIndex:
        """The graph index at the store's current revision. Changes this process made (the pipeline tells us,
        see documents_written) are patched in; any other move of the revision reloads it whole."""
        return self._view.get(self.graph.revision())

    def _build(self, rev: int, cur: GraphIndex | None) -> tuple[GraphIndex, int]:
        pending = [p for p in self._pending if cur is None or p[0] is None or p[0] > cur.revision]
        self._pending = [p for p in self._pending if p[0] is not None and p[0] > rev]
        if (self.incremental and cur is not None and pending
                and [p[0] for p in pending] == list(range(cur.revision + 1, rev + 1))):
            try:
                return self._patch(cur, pending, rev), rev
            except Exception as e:  # the store is the truth: a failed patch costs a full load, not an error
                log.warning("incremental refresh failed (%s); reloading the graph index", e)
        idx = GraphIndex.load(self.graph, device=self.device)
        self._exact = None
        self.last_refresh = {"kind": "full", "revision": idx.revision, "seconds": idx.load_seconds}
        return idx, idx.revision

    def _patch(self, cur: GraphIndex, pending, rev: int) -> GraphIndex:
        from .graph_refresh import refresh

        written: set[str] = set()
        deleted: set[str] = set()
        for _, kind, ids in pending:  # in order: a document written then deleted ends up deleted
            for d in ids:
                (written if kind == "write" else deleted).add(d)
                (deleted if kind == "write" else written).discard(d)
        new, delta = refresh(cur, self.graph, written, deleted, rev)
        exact = None  # resident vectors follow only when they lined up with the old index
        if self._exact is not None and self._exact.revision == cur.revision:
            try:
                exact = self._patch_exact(self._exact, delta, new)
            except Exception as e:
                log.warning("resident vectors not patched (%s); they reload on next use", e)
        self._exact = exact
        self.last_refresh = {"kind": "incremental", "revision": rev, "seconds": new.load_seconds,
                             "documents_written": len(written), "documents_deleted": len(deleted),
                             "chunks_added": len(delta.new_chunk_ids), "entities_added": len(delta.new_entity_ids),
                             "entities_removed": len(delta.removed_entities), "entities_touched": delta.touched_entities,
                             "edges_read": delta.edges_read}
        return new

    def _patch_exact(self, ex: "_Exact", delta, idx: GraphIndex) -> "_Exact":
        dim = ex.chunks.dim
        ids, vecs, _ = self.vectors.get_vectors("chunks", delta.new_chunk_ids) if delta.new_chunk_ids else ([], None, [])
        new_mat, have = _in_order(delta.new_chunk_ids, ids, vecs, dim)
        chunks = ex.chunks.patched(delta.keep_chunks, delta.new_chunk_ids, new_mat)
        present = np.concatenate([ex.chunk_present[delta.keep_chunks], have])
        known = set(ex.entities.ids)
        keep_e = np.asarray([i for i, e in enumerate(ex.entities.ids) if e not in delta.removed_entities], dtype=np.int64)
        fresh = [e for e in delta.new_entity_ids if e not in known]
        eids, evecs, etenants = self.vectors.get_vectors("entities", fresh) if fresh else ([], None, [])
        entities = ex.entities.patched(keep_e, eids, evecs if eids and evecs is not None else np.zeros((0, dim), dtype=np.float32))
        tenants = np.concatenate([ex.entity_tenants[keep_e], np.asarray(etenants, dtype=object)])
        return _Exact(chunks, present, entities, tenants, idx.revision)

    # -- pipeline listener: what this process changed, so index() can patch instead of reloading ----------
    def documents_written(self, docs, chunks, extraction) -> None:
        self._note("write", [d.id for d in docs])

    def document_deleted(self, doc_id: str) -> None:
        self._note("delete", [doc_id])

    def _note(self, kind: str, doc_ids: list[str]) -> None:
        """Each completed write or delete bumps the revision once; the revision read here, right after, lets
        index() check that the changes it knows of are all there is (no gap means no other writer)."""
        try:
            rev: int | None = self.graph.revision()
        except Exception as e:
            log.warning("revision not read after %s (%s); the graph index will reload whole", kind, e)
            rev = None
        with self._lock:
            self._pending.append((rev, kind, list(doc_ids)))

    def invalidate(self) -> None:
        with self._lock:
            self._view.drop()
            self._exact = None
            self._pending = []

    def exact_indexes(self, idx: GraphIndex) -> "_Exact":
        """Chunk and entity vectors resident in memory (or on the GPU), in the graph index's order; loaded
        with the index, patched with it after this process's ingests and deletes, dropped on a full reload."""
        with self._lock:
            if self._exact is not None and self._exact.revision == idx.revision:
                return self._exact
            t = time.perf_counter()
            ids, vecs, _ = self.vectors.export_vectors("chunks")
            dim = vecs.shape[1] if len(vecs) else self.dim()
            mat, have = _in_order(idx.chunk_ids, ids, vecs, dim)
            eids, evecs, etenants = self.vectors.export_vectors("entities")
            if not len(evecs):
                evecs = np.zeros((0, dim), dtype=np.float32)
            exact = _Exact(ExactIndex(list(idx.chunk_ids), mat, self.device), have,
                           ExactIndex(eids, evecs, self.device), np.asarray(etenants, dtype=object), idx.revision)
            log.info("exact index: %d chunk and %d entity vectors in %.2fs", int(have.sum()), len(eids),
                     time.perf_counter() - t)
            if idx is self._view.peek():  # a search still on an older index gets its own, uncached
                self._exact = exact
            return exact


@dataclass
class _Exact:
    """The resident vectors for one graph-index revision, chunks in the index's order."""

    chunks: ExactIndex
    chunk_present: np.ndarray  # False where a graph chunk has no vector (masked out of every search)
    entities: ExactIndex
    entity_tenants: np.ndarray
    revision: int = -1  # the graph index revision these rows line up with


def _in_order(wanted: list[str], ids: list[str], vecs, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """The vectors of `wanted`, in that order, from (ids, vecs) as a store returned them; a row without a vector
    stays zero and is marked absent."""
    pos = {cid: i for i, cid in enumerate(ids)}
    mat = np.zeros((len(wanted), dim), dtype=np.float32)
    have = np.zeros(len(wanted), dtype=bool)
    for j, cid in enumerate(wanted):
        i = pos.get(cid)
        if i is not None:
            mat[j], have[j] = vecs[i], True
    return mat, have
