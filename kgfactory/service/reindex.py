"""`kgf reindex`: re-embed every stored chunk and entity with the configured embedder, without re-extracting.

Why: the vector collections record the embedder that filled them and refuse another's vectors (a different
model or backend: vector/milvus_embedding.py). Reindex reads the stored vector rows (ids and metadata kept as
they are), takes their texts from the graph (chunk text, entity name: what ingest embedded), embeds them again
and writes new collections, swapped in only when complete: a failure midway leaves the old ones in use."""
from __future__ import annotations

import logging
from typing import Any, Callable

from ..errors import ConfigError, EmbeddingError
from ..ingest.embedder import embedding_identity
from .results import ReindexResult

log = logging.getLogger(__name__)

BATCH = 1000  # rows read, embedded and written at a time


class Reindexing:
    """Mixin of KnowledgeService: needs `services`. Acts on every tenant (the collections are shared)."""

    services: Any

    def reindex(self, progress: Callable[[str, int, int], None] | None = None) -> ReindexResult:
        """Rebuild both vector collections with the configured embedder. `progress(kind, done, total)`."""
        svc = self.services
        store = svc.vector_reindex
        if store is None:
            raise ConfigError("this vector store does not record its embedder; nothing to reindex")
        embedder = svc.embedder
        identity = embedding_identity(embedder)
        before = store.embedding_record()
        totals = {kind: svc.vectors.count(kind) for kind in ("chunks", "entities")}
        done = {"chunks": 0, "entities": 0}
        store.start_rebuild(identity)
        try:
            for kind in ("chunks", "entities"):
                for rows in store.export_rows(kind, batch_size=BATCH):
                    texts = self._texts(kind, [r["id"] for r in rows])
                    keep = [r for r in rows if r["id"] in texts]
                    if len(keep) != len(rows):
                        missing = sorted({r["id"] for r in rows} - set(texts))
                        raise EmbeddingError(f"reindex: {len(missing)} stored {kind} have no text in the graph "
                                             f"(e.g. {missing[:3]}); re-ingest their documents first")
                    vectors = embedder.embed([texts[r["id"]] for r in keep],
                                             batch_size=256 if kind == "entities" else None)
                    for r, v in zip(keep, vectors):
                        r["vector"] = v.tolist()
                    store.write_rebuild(kind, keep)
                    done[kind] += len(keep)
                    if progress:
                        progress(kind, done[kind], max(totals[kind], done[kind]))
            store.finish_rebuild(identity)
        except BaseException:
            try:
                store.abort_rebuild()
            except Exception as e:  # the original error matters more
                log.warning("reindex: could not drop the unfinished collections: %s", e)
            raise
        svc.vectors.refresh()
        if svc.retriever is not None:
            svc.retriever.invalidate()  # an exact (resident) index reloads the new vectors
        return ReindexResult(chunks=done["chunks"], entities=done["entities"], embedder=identity,
                             previous=before)

    def _texts(self, kind: str, ids: list[str]) -> dict[str, str]:
        graph = self.services.graph
        if kind == "chunks":
            return {c.id: c.text for c in graph.get_chunks(ids)}
        return {e.id: e.name for e in graph.export_entities_by_id(ids)}
