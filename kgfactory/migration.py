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
from typing import Any, Callable

from .errors import KGFError
from .graph import cypher as Q

log = logging.getLogger(__name__)

Progress = Callable[[str, int], None]


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


def counts(graph, vectors) -> dict[str, dict[str, int]]:
    return {"graph": dict(graph.stats()), "vectors": {k: vectors.count(k) for k in ("chunks", "entities")}}


def is_empty(c: dict[str, dict[str, int]]) -> bool:
    return not any(c["graph"].values()) and not any(c["vectors"].values())


def migrate(src_graph, src_vectors, dst_graph, dst_vectors, *, batch: int = 1000, resume: bool = False,
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
    for label in Q.MIGRATE_LABELS:
        copied[label] = _copy_nodes(src_graph, dst_graph, label, batch, tick)
    for ids in _id_pages(src_graph, "Chunk", batch):
        next_pairs = [[r["a"], r["b"]] for r in src_graph.query(Q.MIGRATE_EXPORT_NEXT, {"ids": ids})]
        if next_pairs:
            dst_graph.query(Q.LINK_NEXT, {"pairs": next_pairs}, read_only=False)
        mentions = src_graph.query(Q.MIGRATE_EXPORT_MENTIONS, {"ids": ids})
        if mentions:
            dst_graph.query(Q.MERGE_MENTIONS, {"rows": mentions}, read_only=False)
        tick("chunk edges", len(ids))
    for ids in _id_pages(src_graph, "Entity", batch):
        _copy_relations(src_graph, dst_graph, ids)
        tick("entity edges", len(ids))
    rev = src_graph.revision()
    dst_graph.query(Q.MIGRATE_SET_REVISION, {"value": max(rev, dst_graph.revision()) + 1}, read_only=False)

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


def _copy_nodes(src, dst, label: str, batch: int, tick: Progress) -> int:
    """Nodes of one label, page by page (keyset on id), with their properties and (entities) class labels."""
    lab = Q.label_clause([label])[1:]
    page_q, write_q = Q.MIGRATE_PAGE.format(label=lab), Q.MIGRATE_NODES.format(label=lab)
    after, n = "", 0
    while True:
        nodes = [r["n"] for r in src.query(page_q, {"after": after, "limit": int(batch)})]
        if not nodes:
            return n
        rows = [{"id": p["id"], "props": {k: v for k, v in p.items() if not k.startswith("_")}} for p in nodes]
        dst.query(write_q, {"rows": rows}, read_only=False)
        if label == "Entity":
            _copy_entity_labels(dst, nodes)
        elif label == "Chunk":
            dst.query(Q.MIGRATE_HAS_CHUNK, {"rows": [{"id": r["id"], "doc_id": r["props"].get("doc_id")} for r in rows]},
                      read_only=False)
        n += len(rows)
        after = rows[-1]["id"]
        tick(label, len(rows))


def _id_pages(src, label: str, batch: int):
    q = Q.MIGRATE_PAGE_IDS.format(label=Q.label_clause([label])[1:])
    after = ""
    while True:
        ids = [r["id"] for r in src.query(q, {"after": after, "limit": int(batch)})]
        if not ids:
            return
        yield ids
        after = ids[-1]


def _copy_entity_labels(dst, nodes: list[dict[str, Any]]) -> None:
    by_labels: dict[tuple[str, ...], list[str]] = {}
    for p in nodes:
        extra = tuple(sorted(l for l in p.get("_labels", []) if l != "Entity"))
        if extra:
            by_labels.setdefault(extra, []).append(p["id"])
    for labels, ids in by_labels.items():
        dst.query(Q.SET_ENTITY_LABELS.format(labels=Q.label_clause(list(labels))), {"ids": ids}, read_only=False)


def _copy_relations(src, dst, entity_ids: list[str]) -> None:
    by_type: dict[str, list[dict[str, Any]]] = {}
    for r in src.query(Q.MIGRATE_EXPORT_RELATIONS, {"ids": entity_ids}):
        props = {k: v for k, v in r["r"].items() if not k.startswith("_")}
        by_type.setdefault(r["r"]["_type"], []).append({"source_id": r["source_id"], "target_id": r["target_id"],
                                                        "props": props})
    for rtype, rows in by_type.items():
        dst.query(Q.MIGRATE_RELATIONS.format(rel=Q.rel_type(rtype)), {"rows": rows}, read_only=False)


def _summary(c: dict[str, dict[str, int]]) -> str:
    g = ", ".join(f"{k} {v}" for k, v in c["graph"].items() if v)
    v = ", ".join(f"{k} vectors {n}" for k, n in c["vectors"].items() if n)
    return "; ".join(x for x in (g, v) if x) or "empty"
