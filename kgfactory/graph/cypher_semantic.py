"""GraphStore methods for the semantic layer (ontology/): the RDF view's reads, an ontology change's relabels and
edge removals, the n10s-style graph config, and the analysts' tenant-view exports. Named methods, so no module
outside graph/ runs Cypher of its own."""
from __future__ import annotations

from typing import Any, Sequence

from ..rows import ChunkText, EntityClassRow, TypedRelationRow, ViewEdge, ViewNode
from . import cypher as Q
from .cypher_base import CypherBase, batches


class SemanticOps(CypherBase):
    # -- reads of the whole graph (every tenant): the RDF view's rebuild and an ontology change's check ----
    def export_chunk_texts(self) -> list[ChunkText]:
        """Every chunk of a complete document, with its text, offsets and tenant."""
        return [ChunkText(**r) for r in self._rows(Q.RDF_EXPORT_CHUNKS)]

    def export_entity_classes(self) -> list[EntityClassRow]:
        """Every entity with its class and node labels."""
        return [EntityClassRow(**r) for r in self._rows(Q.RDF_EXPORT_ENTITIES)]

    def export_typed_relations(self) -> list[TypedRelationRow]:
        """Every typed (not CO_OCCURS) entity-entity relation, with provenance and both ends' names and classes."""
        return [TypedRelationRow(**r) for r in self._rows(Q.RDF_EXPORT_RELATIONS)]

    # -- an ontology change ------------------------------------------------------------------------------
    def delete_relations(self, rtype: str, pairs: Sequence[tuple[str, str]]) -> None:
        """Remove the `rtype` edges between these (source_id, target_id) pairs (rtype: a checked name)."""
        stmt = Q.DELETE_RELATION.format(rel=Q.rel_type(rtype))
        rows = [{"source_id": a, "target_id": b} for a, b in pairs]
        for batch in batches(rows):
            self._run(stmt, {"rows": list(batch)})

    def relabel_entities(self, ids: Sequence[str], old_labels: Sequence[str], new_labels: Sequence[str],
                         label: str) -> None:
        """Entities `ids` lose the node labels `old_labels`, gain `new_labels` and take class `label`."""
        stmt = Q.RELABEL_ENTITIES.format(old=Q.label_clause(list(old_labels)) if old_labels else "",
                                         new=Q.label_clause(list(new_labels)))
        if not old_labels:
            stmt = stmt.replace(" REMOVE e", "", 1)
        for batch in batches(list(ids)):
            self._run(stmt, {"ids": list(batch), "label": label})

    def bump_revision(self) -> None:
        """Move the global revision and the one of writes no tenant owns (an ontology change, an RDF import):
        the retriever, the RDF view and every tenant's analyst view reload (logged as kind 'all')."""
        self.append_change("all", [])

    def write_graph_config(self, config: dict[str, Any], prefixes: dict[str, str]) -> None:
        """The n10s-style _GraphConfig node (merged into) and _NsPrefDef node (replaced)."""
        self._run(Q.SET_GRAPH_CONFIG, {"config": config})
        self._run(Q.SET_NS_PREFIXES, {"prefixes": {"_id": 1, **prefixes}})

    def graph_config(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(the _GraphConfig node's properties, the _NsPrefDef node's), each {} when absent."""
        cfg = self._rows(Q.GET_GRAPH_CONFIG)
        pre = self._rows(Q.GET_NS_PREFIXES)
        return (dict(cfg[0]["config"] or {}) if cfg else {}), (dict(pre[0]["prefixes"] or {}) if pre else {})

    # -- the analysts' tenant views (graph/falkordb_views.py) ----------------------------------------------
    def export_view_nodes(self, label: str, tenant: str) -> list[ViewNode]:
        """Nodes of `label` (one of cypher.VIEW_LABELS) that belong to `tenant`."""
        if label not in Q.VIEW_LABELS:
            raise ValueError(f"{label!r} is not a view label")
        return [ViewNode(**r) for r in self._rows(Q.VIEW_EXPORT_NODES.format(label=label), {"tenant": tenant})]

    def export_view_edges(self, label: str, tenant: str) -> list[ViewEdge]:
        """Edges from `tenant`'s nodes of `label` (one of cypher.VIEW_LABELS) to other nodes of `tenant`."""
        if label not in Q.VIEW_LABELS:
            raise ValueError(f"{label!r} is not a view label")
        return [ViewEdge(**r) for r in self._rows(Q.VIEW_EXPORT_EDGES.format(label=label), {"tenant": tenant})]
