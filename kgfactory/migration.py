"""Copy a knowledge base between backends (embedded FalkorDB + Milvus Lite <-> Neo4j + Milvus server, or any
mix), then check that every count matches.

Everything is copied as stored: node and relationship properties, labels, provenance (chunk_ids), ingest runs
and vectors with their metadata, so nothing is re-embedded or re-extracted. Writes are MERGE/upsert on the
content-hash ids, so an interrupted copy is repaired by running it again (`resume=True`).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol

from .errors import KGFError
from .ports import GraphStore, VectorStore

COPY_LABELS = ("Document", "Chunk", "Entity", "IngestRun")  # documents before their chunks (HAS_CHUNK needs both)

log = logging.getLogger(__name__)

Progress = Callable[[str, int], None]


class CopyableVectorStore(VectorStore, Protocol):
    """A vector store that can hand over and take in its rows as stored (vectors with their metadata)."""

    def vector_dim(self) -> int | None: ...

    def export_rows(self, kind: str, batch_size: int = 1000) -> Iterator[list[dict[str, Any]]]: ...

    def import_rows(self, kind: str, rows: list[dict[str, Any]]) -> None: ...


class MigrationError(KGFError):
    """The target is not empty (and this is not a resume), or the copy's counts do not match."""


@dataclass
class MigrationReport:
    source: dict[str, dict[str, int]]
    target: dict[str, dict[str, int]]
    copied: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def mismatches(self) -> list[str]:
        out = []
        for store in ("graph", "vectors"):
            for k in sorted(set(self.source[store]) | set(self.target[store])):
                a, b = self.source[store].get(k, 0), self.target[store].get(k, 0)
                if a != b:
                    out.append(f"{store} {k}: source {a}, target {b}")
        return out

    @property
    def ok(self) -> bool:
        return not self.mismatches


def counts(graph: GraphStore, vectors: VectorStore) -> dict[str, dict[str, int]]:
    return {"graph": dict(graph.stats()), "vectors": {k: vectors.count(k) for k in ("chunks", "entities")}}


def is_empty(c: dict[str, dict[str, int]]) -> bool:
    return not any(c["graph"].values()) and not any(c["vectors"].values())


def migrate(src_graph: GraphStore, src_vectors: CopyableVectorStore, dst_graph: GraphStore,
            dst_vectors: CopyableVectorStore, *, batch: int = 1000, resume: bool = False,
            progress: Progress | None = None) -> MigrationReport:
    """Copy everything from the source stores into the target stores and return both sides' counts.

    Raises MigrationError when the target already holds data and `resume` is False (a copy into a live
    knowledge base would mix the two and make the count check meaningless)."""
    t0 = time.perf_counter()
    tick = progress or (lambda kind, n: None)
    before = counts(dst_graph, dst_vectors)
    if not resume and not is_empty(before):
        raise MigrationError(f"the target is not empty ({_summary(before)}); use an empty target, or --resume to "
                             "finish an interrupted migration into it")
    source = counts(src_graph, src_vectors)
    copied: dict[str, int] = {}

    dim = src_vectors.vector_dim()
    dst_graph.ensure_schema()
    if dim:
        dst_vectors.ensure(dim)

    # nodes first (documents before their chunks), then the edges whose both ends now exist
    for label in COPY_LABELS:
        copied[label] = _copy_nodes(src_graph, dst_graph, label, batch, tick)
    for ids in _id_pages(src_graph, "Chunk", batch):
        next_pairs = src_graph.next_links(ids)
        if next_pairs:
            dst_graph.link_next(next_pairs)
        mentions = src_graph.export_mentions_of_chunks(ids)
        if mentions:
            dst_graph.import_mentions(mentions)
        tick("chunk edges", len(ids))
    for ids in _id_pages(src_graph, "Entity", batch):
        rels = src_graph.relations_of(ids)
        if rels:
            dst_graph.import_relations(rels)
        tick("entity edges", len(ids))
    rev = src_graph.revision()
    dst_graph.set_revision(max(rev, dst_graph.revision()) + 1)

    if dim:
        for kind in ("chunks", "entities"):
            n = 0
            for rows in src_vectors.export_rows(kind, batch_size=batch):
                dst_vectors.import_rows(kind, rows)
                n += len(rows)
                tick(f"{kind} vectors", len(rows))
            copied[f"{kind} vectors"] = n
        dst_vectors.refresh()
    return MigrationReport(source=source, target=counts(dst_graph, dst_vectors), copied=copied,
                           seconds=time.perf_counter() - t0)


def _copy_nodes(src: GraphStore, dst: GraphStore, label: str, batch: int, tick: Progress) -> int:
    """Nodes of one label, page by page (keyset on id), with their properties and (entities) class labels."""
    after, n = "", 0
    while True:
        nodes = src.page_nodes(label, after, batch)
        if not nodes:
            return n
        dst.import_nodes(label, nodes)
        n += len(nodes)
        after = nodes[-1].id
        tick(label, len(nodes))


def _id_pages(src: GraphStore, label: str, batch: int) -> Iterator[list[str]]:
    after = ""
    while True:
        ids = src.page_node_ids(label, after, batch)
        if not ids:
            return
        yield ids
        after = ids[-1]


def _summary(c: dict[str, dict[str, int]]) -> str:
    g = ", ".join(f"{k} {v}" for k, v in c["graph"].items() if v)
    v = ", ".join(f"{k} vectors {n}" for k, n in c["vectors"].items() if n)
    return "; ".join(x for x in (g, v) if x) or "empty"
