"""Evidence paths: for each retrieved chunk, how the graph links an entity of the question to one the chunk
mentions, said with the relations worth showing.

Typed relations come first (a path over them only, when one exists), in the direction the relation was stored,
which the extractor fixed by the ontology's domain and range ("Marie Dubois -[founded]-> Helios Robotics"). A
co-occurrence hop is shown only between entities that name something (found by the vocabulary, NER, an LLM or
a title), never with a noun-phrase fragment such as "route data".
"""
from __future__ import annotations

import numpy as np

from .graph_index import GraphIndex
from .models import EvidencePath, RetrievedChunk

MAX_HOPS = 2
MAX_SOURCES = 5


def evidence_paths(idx: GraphIndex, seeds: list[int], chunks: list[RetrievedChunk],
                   scope: np.ndarray | None = None) -> list[EvidencePath]:
    if not seeds or not chunks:
        return []
    sources = [s for s in seeds[:MAX_SOURCES] if scope is None or scope[s]]
    named = _named(idx)
    typed = _bfs(idx, sources, scope, named, typed_only=True)
    mixed = _bfs(idx, sources, scope, named, typed_only=False)
    out = []
    for ch in chunks:
        best = None
        for parents in (typed, mixed):
            for ent in ch.entities:
                j = idx.e_pos.get(ent.id)
                path = GraphIndex.path_to(parents, j) if j is not None else None
                if path and len(path) > 1 and (best is None or len(path) < len(best)):
                    best = path
            if best:
                break
        if best:
            out.append(EvidencePath(chunk_id=ch.id, hops=[_hop(idx, a, b) for a, b in zip(best, best[1:])]))
    return out


def _named(idx: GraphIndex) -> np.ndarray:
    """Entities a co-occurrence hop may show: not a noun-phrase fragment (unless a page is about it)."""
    subject = np.asarray(idx.subjects.sum(axis=0)).ravel() > 0 if idx.subjects is not None else np.zeros(idx.n_entities, bool)
    np_ = np.fromiter((s == "noun_phrase" for s in idx.entity_source), dtype=bool, count=idx.n_entities)
    return ~np_ | subject


def _bfs(idx: GraphIndex, sources: list[int], scope, named: np.ndarray, typed_only: bool) -> dict[int, int | None]:
    parents: dict[int, int | None] = {s: None for s in sources}
    frontier = list(parents)
    indptr, indices = idx.adjacency.indptr, idx.adjacency.indices
    for _ in range(MAX_HOPS):
        nxt = []
        for u in frontier:
            cands = [v for v, _ in idx.typed_neighbours.get(u, ())]
            if not typed_only and named[u]:
                cands += [int(v) for v in indices[indptr[u]:indptr[u + 1]] if named[v]]
            for v in cands:
                if v not in parents and (scope is None or scope[v]):
                    parents[v] = u
                    nxt.append(v)
        frontier = nxt
    return parents


def _hop(idx: GraphIndex, a: int, b: int) -> tuple[str, str, str]:
    """(source, relation, target) in the relation's stored direction."""
    t = idx.edge_types.get((a, b))
    if t is not None:
        return idx.entity_names[a], t, idx.entity_names[b]
    t = idx.edge_types.get((b, a))
    if t is not None:
        return idx.entity_names[b], t, idx.entity_names[a]
    return idx.entity_names[a], idx.edge_type(a, b), idx.entity_names[b]
