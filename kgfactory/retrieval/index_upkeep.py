"""The retriever's derived data, kept at the graph's revision: the in-memory graph index and, when exact vector
search is on, the chunk and entity vectors resident in memory (or on the GPU) in the index's order.

Loading the index whole costs seconds to minutes on large graphs. Every completed write and delete, by any
process, logs which documents it touched in the graph store's change log (GraphStore.changes_since), so when
the revision moves the index is patched from the log (graph_refresh.py) whether this process wrote or another
replica did; it reloads whole only when the log no longer reaches back (or holds an ontology change), and says
why. `follow()` polls the revision in the background, so a replica catches up before a query asks. The
revision check, the one-builder-at-a-time rule and the whole-copy swap are the shared derived-view helper's
(derived_view.py).
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
from ..rows import ChangeRow
from .compute import ExactIndex
from .graph_index import GraphIndex

log = logging.getLogger(__name__)


class IndexUpkeep:
    """Loads, patches and hands out the graph index and the resident vectors at the store's revision."""

    def __init__(self, graph: GraphStore, vectors: VectorStore, dim: Callable[[], int], device: str = "cpu",
                 incremental: bool = True):
        self.graph, self.vectors = graph, vectors
        self.dim = dim  # the embedder's dimension: the resident matrix's width while no vector is stored
        self.device = device
        self.incremental = incremental
        self._exact: _Exact | None = None
        self._lock = threading.Lock()  # the builder lock: index builds, resident vectors
        self._view: DerivedView[int, GraphIndex] = DerivedView(self._build, builder_lock=self._lock)
        self.last_refresh: dict[str, Any] = {}  # how the index was last brought up to date, for stats and benches
        self._stop = threading.Event()
        self._follower: threading.Thread | None = None

    def index(self) -> GraphIndex:
        """The graph index at the store's current revision: patched from the change log when it moved, reloaded
        whole when the log does not reach back."""
        return self._view.get(self.graph.revision())

    def _build(self, rev: int, cur: GraphIndex | None) -> tuple[GraphIndex, int]:
        why = "first load" if cur is None else "incremental refresh is off"
        if self.incremental and cur is not None:
            changes = self.graph.changes_since(cur.revision)
            if changes is None:
                why = (f"the change log does not reach back to revision {cur.revision} "
                       f"(kept: the last {getattr(self.graph, 'change_retention', '?')} changes)")
            elif any(c.kind not in ("write", "delete") for c in changes):
                why = "an ontology change or RDF import (change kind 'all')"
            elif not changes:  # nothing logged past the held index: it is current
                return cur, cur.revision
            else:
                try:
                    return self._patch(cur, changes), changes[-1].revision
                except Exception as e:  # the store is the truth: a failed patch costs a full load, not an error
                    why = f"incremental refresh failed ({e})"
                    log.warning("%s; reloading the graph index", why)
        if cur is not None:
            log.info("graph index reloads whole at revision %d (held %d): %s", rev, cur.revision, why)
        idx = GraphIndex.load(self.graph, device=self.device)
        self._exact = None
        self.last_refresh = {"kind": "full", "catch_up": "reload", "reason": why, "revision": idx.revision,
                             "seconds": idx.load_seconds, "at": time.time()}
        return idx, idx.revision

    def _patch(self, cur: GraphIndex, changes: list[ChangeRow]) -> GraphIndex:
        from .graph_refresh import refresh

        rev = changes[-1].revision
        written: set[str] = set()
        deleted: set[str] = set()
        for c in changes:  # in order: a document written then deleted ends up deleted
            for d in c.doc_ids:
                (written if c.kind == "write" else deleted).add(d)
                (deleted if c.kind == "write" else written).discard(d)
        new, delta = refresh(cur, self.graph, written, deleted, rev)
        exact = None  # resident vectors follow only when they lined up with the old index
        if self._exact is not None and self._exact.revision == cur.revision:
            try:
                exact = self._patch_exact(self._exact, delta, new)
            except Exception as e:
                log.warning("resident vectors not patched (%s); they reload on next use", e)
        self._exact = exact
        self.last_refresh = {"kind": "incremental", "catch_up": "patch", "revision": rev, "seconds": new.load_seconds,
                             "at": time.time(), "changes": len(changes), "written_at": changes[-1].at,
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

    # -- following other processes' writes ---------------------------------------------------------------
    def catch_up(self) -> int | None:
        """Bring a loaded index to the store's revision now (patch or reload); the revision held after, or None
        while nothing is loaded (an idle replica does not load its index before its first query)."""
        held = self._view.held_key()
        if held is None:
            return None
        rev = self.graph.revision()
        if rev != held:
            self._view.get(rev)
        return self._view.held_key()

    def _oldest_unapplied(self, held: int) -> float | None:
        try:
            changes = self.graph.changes_since(held)
        except Exception:
            return None
        return changes[0].at if changes else None

    def follow(self, interval_s: float) -> None:
        """Poll the revision every `interval_s` seconds on a daemon thread (one revision read when nothing moved)."""
        if interval_s <= 0 or self._follower is not None:
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(interval_s):
                try:
                    self.catch_up()
                except Exception as e:  # a store that does not answer: try again next tick, queries report it
                    log.warning("replica catch-up failed: %s", e)

        self._follower = threading.Thread(target=loop, name="kgf-index-follow", daemon=True)
        self._follower.start()

    def stop_following(self) -> None:
        self._stop.set()
        if self._follower is not None:
            self._follower.join(timeout=30)
            self._follower = None

    def replica_status(self) -> dict[str, Any]:
        """For /readyz: the revision this process's index holds, the store's, the lag in revisions and in seconds
        (since the oldest change not yet applied), and how it last caught up (patch or reload)."""
        held = self._view.held_key()
        store = self.graph.revision()
        lag = 0 if held is None else max(0, store - held)
        since = self._oldest_unapplied(held) if lag and held is not None else None
        return {"revision": held, "store_revision": store, "lag_revisions": lag,
                "lag_seconds": round(max(0.0, time.time() - since), 3) if since else 0.0,
                "last_catch_up": self.last_refresh.get("catch_up"), "reason": self.last_refresh.get("reason"),
                "following": self._follower is not None}

    def invalidate(self) -> None:
        with self._lock:
            self._view.drop()
            self._exact = None

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
