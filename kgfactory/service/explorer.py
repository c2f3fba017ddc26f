"""The analysts' explorer, for one tenant: entity type-ahead, an entity's page (class and superclasses,
aliases, typed relations with provenance, mentions with their text), its neighbourhood as a graph to draw,
the ontology's classes with this tenant's instance counts, and the quarantine.

Type-ahead reads an in-memory name table built from the retriever's graph index (retrieval/name_search.py),
which the ingest listener keeps at the graph's revision; the rest reads the graph through named GraphStore
methods (graph/cypher_explore.py) that always carry the caller's tenant. Filters (relation types, classes) are
checked against the ontology here and reach the store as parameters, never as query text.
"""
from __future__ import annotations

import threading
from typing import Any, Sequence

from ..errors import InvalidParameterError, NotFoundError
from . import limits as L
from .results import (EntityDetail, EntityGraph, EntityHit, EntityRelationInfo, EntitySearchResult, GraphEdge,
                      GraphNode, OntologyClasses, OntologyClassInfo, OntologyPropertyInfo, QuarantineList)
from .status import NotAvailableError

CO_OCCURS = "CO_OCCURS"
_names_lock = threading.Lock()


def _bounded_int(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidParameterError(f"{name} {value!r}: a whole number from {low} to {high}", name)
    return value


def _names(value: Any, field: str, allowed: set[str], what: str) -> list[str] | None:
    """A filter list (a list, or one comma-separated string) checked against an allow-list; None/empty: none."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(x, str) for x in items):
        raise InvalidParameterError(f"{field}: a list of {what} names (or one comma-separated string)", field)
    names = list(dict.fromkeys(x.strip() for x in items if x.strip()))
    if len(names) > L.MAX_GRAPH_FILTERS:
        raise InvalidParameterError(f"{field}: at most {L.MAX_GRAPH_FILTERS} {what} names", field)
    unknown = [n for n in names if n not in allowed]
    if unknown:
        shown = ", ".join(repr(n[:50]) for n in unknown[:3])
        raise InvalidParameterError(f"{field}: unknown {what} {shown} (see GET /v1/ontology/classes)", field)
    return names or None


class Explorer:
    """Mixin of KnowledgeService: needs `services` and `tenant`."""

    services: Any
    tenant: str

    # -- type-ahead --------------------------------------------------------------------------------------
    def entity_search(self, q: str, *, limit: int = L.ENTITY_SEARCH_DEFAULT, label: str | None = None) -> EntitySearchResult:
        """Entities of this tenant whose name or an alias matches `q`: exact matches, then prefixes (of the name,
        then of a word in it), then near spellings (typos); case, accents and punctuation do not matter.
        `label`: only entities of that ontology class or a subclass."""
        from ..retrieval.name_search import fold

        if not isinstance(q, str) or not q.strip():
            raise InvalidParameterError("q: give 1 to 200 characters of an entity name", "q")
        if len(q) > L.MAX_ENTITY_QUERY_CHARS:
            raise InvalidParameterError(f"q: at most {L.MAX_ENTITY_QUERY_CHARS} characters (got {len(q)})", "q")
        limit = _bounded_int("limit", limit, 1, L.ENTITY_SEARCH_MAX)
        onto = self.services.ontology
        if label is not None and (not isinstance(label, str) or label not in onto.classes):
            raise InvalidParameterError(f"label: unknown ontology class {str(label)[:50]!r} "
                                        "(see GET /v1/ontology/classes)", "label")
        retriever = self.services.retriever
        if retriever is None:
            raise NotAvailableError("entity search needs the retriever's graph index")
        key = fold(q)
        if not key:  # punctuation alone names nothing (and must not prefix-match everything)
            return EntitySearchResult(q=q, items=[])
        idx = retriever.index()
        table = self._name_search().table(idx, self.tenant)
        labels, df = idx.entity_labels, idx.entity_df

        def mentions(pos: int) -> int:
            return int(df[pos]) if pos < len(df) else 0

        def keep(pos: int) -> bool:
            return label is None or onto.is_a(labels[pos], label)

        hits = table.search(key, limit, keep=keep, rank=lambda pos: (-mentions(pos), len(idx.entity_names[pos])))
        items = [EntityHit(id=idx.entity_ids[h.pos], name=idx.entity_names[h.pos], label=labels[h.pos],
                           aliases=list(idx.entity_aliases[h.pos]), mentions=mentions(h.pos), match=h.match,
                           score=h.score) for h in hits]
        return EntitySearchResult(q=q, items=items)

    def _name_search(self) -> Any:
        """The services' per-tenant name tables (made on first use; they outlive requests, not the services)."""
        from ..retrieval.name_search import NameSearch

        with _names_lock:
            names = getattr(self.services, "entity_names", None)
            if names is None:
                names = NameSearch()
                setattr(self.services, "entity_names", names)
            return names

    # -- an entity's page ------------------------------------------------------------------------------------
    def entity(self, entity_id: str, *, limit: int = L.ENTITY_NEIGHBOURS_DEFAULT) -> EntityDetail:
        """An entity of this tenant: its class and superclasses, aliases, typed relations with the chunks and
        documents that state them, its neighbours (typed edges and co-occurrence) and the chunks that mention it
        (with document title and text); `limit` caps each list. Another tenant's entity is NotFoundError."""
        limit = _bounded_int("limit", limit, 1, L.ENTITY_NEIGHBOURS_MAX)
        graph, onto = self.services.graph, self.services.ontology
        ok = isinstance(entity_id, str) and 0 < len(entity_id) <= L.MAX_ID_CHARS
        row = graph.entity(entity_id, self.tenant) if ok else None
        if row is None:
            raise NotFoundError(f"no entity {entity_id!r} (entity ids appear in ask/search seeds and in documents)")
        classes = [row.label, *onto.ancestors(row.label)] if row.label in onto.classes else [row.label or ""]
        rels = graph.entity_relations(entity_id, self.tenant, limit)
        mentions = graph.entity_mentions(entity_id, self.tenant, limit)
        doc_of = graph.chunk_documents([c for r in rels for c in (r.chunk_ids or [])][:20_000], self.tenant)
        chunks = {c.id: c for c in graph.get_chunks([m.chunk_id for m in mentions]) if c.tenant == self.tenant}
        relations = []
        for r in rels:
            cids = sorted(r.chunk_ids or [])
            relations.append(EntityRelationInfo(
                type=r.type, direction="out" if r.outgoing else "in", other=GraphNode(id=r.id, name=r.name, label=r.label),
                chunk_ids=cids[:L.RELATION_CHUNKS_MAX],
                doc_ids=sorted({doc_of[c] for c in cids if c in doc_of})))
        return EntityDetail(
            id=row.id, name=row.name, label=row.label, classes=[c for c in classes if c], aliases=list(row.aliases or []),
            relations=relations,
            neighbours=[{"type": n.type, "outgoing": n.outgoing, "id": n.id, "name": n.name, "label": n.label,
                         "weight": n.weight} for n in graph.entity_neighbours(entity_id, self.tenant, limit)],
            mentions=[{"chunk_id": m.chunk_id, "doc_id": m.doc_id, "count": m.count,
                       "title": getattr(chunks.get(m.chunk_id), "title", None),
                       "text": getattr(chunks.get(m.chunk_id), "text", None),
                       "start": getattr(chunks.get(m.chunk_id), "start", None),
                       "end": getattr(chunks.get(m.chunk_id), "end", None)} for m in mentions])

    # -- the neighbourhood graph -------------------------------------------------------------------------------
    def entity_graph(self, entity_id: str, *, depth: int = 1, limit: int = L.GRAPH_NODES_DEFAULT,
                     types: Sequence[str] | str | None = None, classes: Sequence[str] | str | None = None) -> EntityGraph:
        """The entity and the entities `depth` (1 or 2) steps from it, at most `limit` nodes (the strongest edges
        first), with the edges between them; `types` keeps edges of those relation types (ontology object
        properties, or CO_OCCURS), `classes` nodes of those classes (or subclasses). `truncated`: the node cap or
        the per-step edge budget left some out. Expanding a node is this call on that node."""
        if isinstance(depth, bool) or depth not in L.GRAPH_DEPTHS:
            raise InvalidParameterError(f"depth {depth!r}: 1 or 2", "depth")
        limit = _bounded_int("limit", limit, 1, L.GRAPH_NODES_MAX)
        onto = self.services.ontology
        type_list = _names(types, "types", onto.relation_types() | {CO_OCCURS}, "relation type")
        class_list = _names(classes, "classes", onto.entity_labels(), "class")
        graph = self.services.graph
        ok = isinstance(entity_id, str) and 0 < len(entity_id) <= L.MAX_ID_CHARS
        row = graph.entity(entity_id, self.tenant) if ok else None
        if row is None:
            raise NotFoundError(f"no entity {entity_id!r}")
        nodes = {row.id: GraphNode(id=row.id, name=row.name, label=row.label)}
        edges: dict[tuple[str, str, str], GraphEdge] = {}
        frontier, truncated = [row.id], False
        budget = L.GRAPH_EDGES_PER_NODE * limit
        for _ in range(depth):
            found = graph.neighbourhood_edges(frontier, self.tenant, type_list, class_list, budget + 1)
            if len(found) > budget:
                truncated, found = True, found[:budget]
            frontier = []
            for e in found:
                if e.other_id not in nodes:
                    if len(nodes) >= limit:
                        truncated = True
                        continue
                    nodes[e.other_id] = GraphNode(id=e.other_id, name=e.other_name, label=e.other_label)
                    frontier.append(e.other_id)
                edges.setdefault((e.source_id, e.target_id, e.type),
                                 GraphEdge(source=e.source_id, target=e.target_id, type=e.type))
            if not frontier:
                break
        return EntityGraph(nodes=list(nodes.values()), edges=list(edges.values()), truncated=truncated)

    # -- the ontology as this tenant fills it ------------------------------------------------------------------
    def ontology_classes(self) -> OntologyClasses:
        """Every class with its parent, comment and this tenant's entities of it (`count`; `total` with its
        subclasses'), and every object and datatype property with domain and range."""
        onto = self.services.ontology
        counts = self.services.graph.class_counts(self.tenant)
        totals: dict[str, int] = {}
        for cls, n in counts.items():
            for c in ([cls, *onto.ancestors(cls)] if cls in onto.classes else [cls]):
                totals[c] = totals.get(c, 0) + n
        classes = [OntologyClassInfo(name=c.name, parent=c.parents[0] if c.parents else None, parents=list(c.parents),
                                     count=counts.get(c.name, 0), total=totals.get(c.name, 0), label=c.label,
                                     comment=c.comment)
                   for c in sorted(onto.classes.values(), key=lambda c: c.name)]
        props = [OntologyPropertyInfo(name=p.name, kind="object", domain=list(p.domain), range=list(p.range),
                                      label=p.label) for p in sorted(onto.object_properties.values(), key=lambda p: p.name)]
        props += [OntologyPropertyInfo(name=p.name, kind="datatype", domain=list(p.domain),
                                       range=[p.range_datatype] if p.range_datatype else [], label=p.label)
                  for p in sorted(onto.datatype_properties.values(), key=lambda p: p.name)]
        return OntologyClasses(classes=classes, properties=props)

    def quarantine(self, *, limit: int = L.QUARANTINE_DEFAULT) -> QuarantineList:
        """This tenant's quarantined facts (edges the ontology refused; nodes an ontology change retyped), oldest
        first, and their total."""
        limit = _bounded_int("limit", limit, 1, L.QUARANTINE_MAX)
        q = self.services.quarantine
        if q is None:
            raise NotAvailableError("the quarantine is not configured in this build")
        return QuarantineList(items=q.list(tenant=self.tenant, limit=limit), total=q.count(tenant=self.tenant))
