"""Copy one tenant's Document/Chunk/Entity nodes and the edges between them into another graph: what the
per-tenant Cypher views of both engines are built from (graph/falkordb_views.py, graph/neo4j_views.py). Each
engine supplies only `write(statement, rows)`; the reads, grouping and batching are here, once."""
from __future__ import annotations

from typing import Callable

from .cypher_store import CypherGraphStore
from . import cypher as Q

Write = Callable[[str, list[dict]], None]


def copy_tenant(store: CypherGraphStore, tenant: str, write: Write, node_batch: int = 500,
                edge_batch: int = 2000) -> tuple[int, int]:
    """(nodes, edges) written. Nodes go in groups of one label set, edges in groups of one (source label, type,
    target label), each in UNWIND batches; an edge to a node outside the copied labels is left out."""
    nodes = edges = 0
    for label in Q.VIEW_LABELS:
        by_labels: dict[tuple[str, ...], list[dict]] = {}
        for node in store.export_view_nodes(label, tenant):
            by_labels.setdefault(tuple(node.labels), []).append(dict(node.props))
        for labels, rows in by_labels.items():
            stmt = Q.VIEW_CREATE_NODES.format(labels=Q.label_clause(list(labels)))
            for i in range(0, len(rows), node_batch):
                write(stmt, rows[i:i + node_batch])
            nodes += len(rows)
    for label in Q.VIEW_LABELS:
        by_kind: dict[tuple[str, str, str], list[dict]] = {}
        for edge in store.export_view_edges(label, tenant):
            dst = next((x for x in Q.VIEW_LABELS if x in (edge.b_labels or [])), None)
            if dst is None or edge.a is None or edge.b is None:
                continue  # the view holds VIEW_LABELS nodes only
            by_kind.setdefault((label, edge.type, dst), []).append(
                {"a": edge.a, "b": edge.b, "props": dict(edge.props or {})})
        for (src, rtype, dst), rows in by_kind.items():
            stmt = Q.VIEW_CREATE_EDGES.format(src=Q.rel_type(src), dst=Q.rel_type(dst), rel=Q.rel_type(rtype))
            for i in range(0, len(rows), edge_batch):
                write(stmt, rows[i:i + edge_batch])
            edges += len(rows)
    return nodes, edges
