"""The explorer's graph reads (GET /v1/entities/..., /v1/ontology/classes): an entity's typed relations with
their provenance, one step of a neighbourhood walk, and instances per class, always inside one tenant.

Statements and the GraphStore methods that run them, shared by FalkorDB and Neo4j. Relation types and classes
to filter by are parameters compared as values (`type(r) IN $types`, `l IN $classes`), never spliced into the
text, so a filter needs no allow-list to be safe (the layer still refuses unknown names, to tell the caller).
"""
from __future__ import annotations

from typing import Sequence

from ..rows import EntityRelation, NeighbourhoodEdge
from .cypher_base import CypherBase, batches

ENTITY_RELATIONS = """
MATCH (e:Entity {id: $id})-[r]-(n:Entity) WHERE e.tenant = $tenant AND n.tenant = $tenant AND type(r) <> 'CO_OCCURS'
RETURN type(r) AS type, startNode(r).id = e.id AS outgoing, n.id AS id, n.name AS name, n.label AS label,
       r.chunk_ids AS chunk_ids
ORDER BY type, name, id LIMIT $limit
"""

# one step out from each of $ids (index lookups through UNWIND), both directions; an edge between two asked
# entities comes back once from each end (the caller keeps it once)
NEIGHBOURHOOD_EDGES = """
UNWIND $ids AS id
MATCH (a:Entity {id: id})
WITH a
MATCH (a)-[r]-(b:Entity)
WHERE a.tenant = $tenant AND b.tenant = $tenant AND ($types IS NULL OR type(r) IN $types)
  AND ($classes IS NULL OR any(l IN labels(b) WHERE l IN $classes))
RETURN a.id AS from_id, startNode(r).id AS source_id, endNode(r).id AS target_id, type(r) AS type,
       r.weight AS weight, b.id AS other_id, b.name AS other_name, b.label AS other_label
ORDER BY coalesce(r.weight, 0) DESC, other_id LIMIT $limit
"""

CHUNK_DOCUMENTS = """
UNWIND $ids AS id
MATCH (c:Chunk {id: id}) WHERE c.tenant = $tenant
RETURN c.id AS id, c.doc_id AS doc_id
"""

CLASS_COUNTS = "MATCH (e:Entity) WHERE e.tenant = $tenant RETURN e.label AS label, count(e) AS n"


class ExploreOps(CypherBase):
    def entity_relations(self, entity_id: str, tenant: str, limit: int = 200) -> list[EntityRelation]:
        """Typed relations of one entity of `tenant` to others of `tenant`, with their supporting chunk ids."""
        rows = self._rows(ENTITY_RELATIONS, {"id": entity_id, "tenant": tenant, "limit": int(limit)})
        return [EntityRelation(**r) for r in rows]

    def neighbourhood_edges(self, entity_ids: Sequence[str], tenant: str, types: Sequence[str] | None = None,
                            classes: Sequence[str] | None = None, limit: int = 1000) -> list[NeighbourhoodEdge]:
        """Edges from `entity_ids` to entities of `tenant` (of a type in `types`, reaching an entity with a node
        label in `classes`; None: any), heaviest first, at most `limit` rows."""
        params = {"ids": sorted(set(entity_ids)), "tenant": tenant, "limit": int(limit),
                  "types": None if types is None else list(types), "classes": None if classes is None else list(classes)}
        return [NeighbourhoodEdge(**r) for r in self._rows(NEIGHBOURHOOD_EDGES, params)]

    def chunk_documents(self, chunk_ids: Sequence[str], tenant: str) -> dict[str, str]:
        """chunk id -> document id for those of `chunk_ids` that are chunks of `tenant` (provenance links)."""
        ids = sorted(set(chunk_ids))
        return {r["id"]: r["doc_id"] for b in batches(ids)
                for r in self._rows(CHUNK_DOCUMENTS, {"ids": list(b), "tenant": tenant})}

    def class_counts(self, tenant: str) -> dict[str, int]:
        """Entities of `tenant` per class (their `label`, the class they were typed with)."""
        return {r["label"]: int(r["n"]) for r in self._rows(CLASS_COUNTS, {"tenant": tenant}) if r["label"]}
