"""GraphStore methods for `kgf migrate` (migration.py): read a graph page by page (keyset on id) and write it
into another engine as stored (properties, labels, provenance), every write a MERGE so a re-run repairs."""
from __future__ import annotations

from typing import Any, Sequence

from ..rows import MentionRow, NodeRecord, RelationRecord
from . import cypher as Q
from .cypher_base import CypherBase, batches

COPY_LABELS = Q.MIGRATE_LABELS  # Document before Chunk: a chunk's HAS_CHUNK edge needs its document


def _label(label: str) -> str:
    if label not in COPY_LABELS:
        raise ValueError(f"{label!r} is not a label kgf migrate copies")
    return Q.label_clause([label])[1:]


class CopyOps(CypherBase):
    def page_nodes(self, label: str, after: str, limit: int) -> list[NodeRecord]:
        """Nodes of `label` (one of COPY_LABELS) with id > `after`, by id, at most `limit`."""
        out = []
        for r in self._rows(Q.MIGRATE_PAGE.format(label=_label(label)), {"after": after, "limit": int(limit)}):
            n = r["n"]
            out.append(NodeRecord(id=n["id"], labels=list(n.get("_labels") or []),
                                  props={k: v for k, v in n.items() if not k.startswith("_")}))
        return out

    def page_node_ids(self, label: str, after: str, limit: int) -> list[str]:
        """Ids of nodes of `label` with id > `after`, in order, at most `limit`."""
        q = Q.MIGRATE_PAGE_IDS.format(label=_label(label))
        return [r["id"] for r in self._rows(q, {"after": after, "limit": int(limit)})]

    def import_nodes(self, label: str, nodes: Sequence[NodeRecord]) -> None:
        """MERGE the nodes with their properties; entities also take their class labels, chunks their
        document's HAS_CHUNK edge (the document must be there already)."""
        rows = [{"id": n.id, "props": n.props} for n in nodes]
        for batch in batches(rows):
            self._run(Q.MIGRATE_NODES.format(label=_label(label)), {"rows": list(batch)})
        if label == "Entity":
            by_labels: dict[tuple[str, ...], list[str]] = {}
            for n in nodes:
                extra = tuple(sorted(lb for lb in n.labels if lb != "Entity"))
                if extra:
                    by_labels.setdefault(extra, []).append(n.id)
            self._set_labels(by_labels)
        elif label == "Chunk":
            links = [{"id": n.id, "doc_id": n.props.get("doc_id")} for n in nodes]
            for link_batch in batches(links):
                self._run(Q.MIGRATE_HAS_CHUNK, {"rows": list(link_batch)})

    def next_links(self, chunk_ids: Sequence[str]) -> list[tuple[str, str]]:
        """(chunk, next chunk) pairs starting at these chunks."""
        return [(r["a"], r["b"]) for r in self._rows(Q.MIGRATE_EXPORT_NEXT, {"ids": list(chunk_ids)})]

    def link_next(self, pairs: Sequence[tuple[str, str]]) -> None:
        for batch in batches([[a, b] for a, b in pairs]):
            self._run(Q.LINK_NEXT, {"pairs": list(batch)})

    def import_mentions(self, rows: Sequence[MentionRow]) -> None:
        """MERGE MENTIONS edges as stored (count and subject as they were)."""
        plain = [{"chunk_id": m.chunk_id, "entity_id": m.entity_id, "count": m.count, "subject": m.subject}
                 for m in rows]
        for batch in batches(plain):
            self._run(Q.MERGE_MENTIONS, {"rows": list(batch)})

    def relations_of(self, entity_ids: Sequence[str]) -> list[RelationRecord]:
        """Every entity-entity relationship starting at these entities, with its properties."""
        out = []
        for r in self._rows(Q.MIGRATE_EXPORT_RELATIONS, {"ids": list(entity_ids)}):
            props: dict[str, Any] = {k: v for k, v in r["r"].items() if not k.startswith("_")}
            out.append(RelationRecord(r["source_id"], r["target_id"], r["r"]["_type"], props))
        return out

    def import_relations(self, rows: Sequence[RelationRecord]) -> None:
        """MERGE relationships with their properties (types are checked names, see cypher.rel_type)."""
        by_type: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            by_type.setdefault(r.type, []).append({"source_id": r.source_id, "target_id": r.target_id,
                                                   "props": r.props})
        for rtype, plain in by_type.items():
            for batch in batches(plain):
                self._run(Q.MIGRATE_RELATIONS.format(rel=Q.rel_type(rtype)), {"rows": list(batch)})

    def set_revision(self, value: int) -> None:
        """Set the global revision (a copied graph starts past both its source's and its own, so caches reload)."""
        self._run(Q.MIGRATE_SET_REVISION, {"value": int(value)})
