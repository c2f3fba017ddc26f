"""Retriever.search(query, mode, top_k, filters): dense lookup, graph traversal, context enrichment.

- vector: HNSW top-k over chunk vectors (the baseline).
- graph: personalised PageRank from the query's seed entities (named in the question, or nearest by
  entity vector), ranked by the mass that reaches chunk nodes; `graph_algorithm="khop"` is the cheaper mode.
- hybrid (default): PageRank whose restart vector holds both the seed entities and the dense chunk scores
  (HippoRAG 2's recipe), fused with the dense ranking.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any, Literal

import numpy as np

from ..errors import RetrievalError
from ..ports import Embedder, GraphStore, VectorStore
from .graph_index import GraphIndex
from .models import MODES, EntityRef, EvidencePath, RetrievalResult, RetrievedChunk

log = logging.getLogger(__name__)

MAX_QUERY_CHARS = 2000
MAX_TOP_K = 100
FILTER_FIELDS = {"doc_id", "tenant", "tag"}
CANDIDATES = 50  # dense candidates fed to fusion
ENTITY_SEEDS = 5
ENTITY_MIN_SIM = 0.55  # chosen on MuSiQue (bench/results/retrieval.json)
_SENT_END = (".", "!", "?", "\"", "'", ")", "]", ":")


def validate(query: str, mode: str, top_k: int, filters: dict[str, Any] | None) -> str:
    if not isinstance(query, str) or not query.strip():
        raise RetrievalError("query is empty; ask a question")
    if len(query) > MAX_QUERY_CHARS:
        raise RetrievalError(f"query is {len(query)} characters; the limit is {MAX_QUERY_CHARS}")
    if mode not in MODES:
        raise RetrievalError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    if not isinstance(top_k, int) or not 1 <= top_k <= MAX_TOP_K:
        raise RetrievalError(f"top_k must be between 1 and {MAX_TOP_K}, not {top_k!r}")
    unknown = set(filters or {}) - FILTER_FIELDS
    if unknown:
        raise RetrievalError(f"unknown filter field(s) {sorted(unknown)}; allowed: {sorted(FILTER_FIELDS)}")
    return query.strip()


class Retriever:
    """Holds the graph index (reloaded when the store's revision moves) and answers searches."""

    def __init__(self, graph: GraphStore, vectors: VectorStore, embedder: Embedder, damping: float = 0.5,
                 class_cues: dict[str, set[str]] | None = None, answer_type_weight: float = 0.0,
                 relation_cues: dict[str, set[str]] | None = None,
                 passage_mass: float = 0.5, hybrid_dense_weight: float = 0.3,
                 graph_algorithm: Literal["ppr", "khop"] = "ppr", fusion: Literal["linear", "rrf"] = "linear"):
        self.graph, self.vectors, self.embedder = graph, vectors, embedder
        self.damping = damping
        self.passage_mass = passage_mass
        self.hybrid_dense_weight = hybrid_dense_weight
        self.graph_algorithm = graph_algorithm
        self.fusion = fusion
        self.class_cues = class_cues or {}
        self.answer_type_weight = answer_type_weight
        self.relation_cues = relation_cues or {}
        self._index: GraphIndex | None = None
        self._lock = threading.Lock()

    def index(self) -> GraphIndex:
        """The graph index, reloaded only when an ingest or delete has moved the store's revision."""
        rev = self.graph.revision()
        with self._lock:
            if self._index is None or self._index.revision != rev:
                self._index = GraphIndex.load(self.graph)
            return self._index

    def invalidate(self) -> None:
        with self._lock:
            self._index = None

    def search(self, query: str, mode: str = "hybrid", top_k: int = 5,
               filters: dict[str, Any] | None = None) -> RetrievalResult:
        query = validate(query, mode, top_k, filters)
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        idx = self.index()
        timings["graph_index"] = time.perf_counter() - t0
        result = RetrievalResult(query=query, mode=mode, top_k=top_k, filters=filters or {})
        if idx.n_chunks == 0:
            result.empty_store = True
            result.timings = _ms(timings)
            return result

        t = time.perf_counter()
        qvec = self.embedder.embed([query])[0]
        timings["embed"] = time.perf_counter() - t

        t = time.perf_counter()
        k = max(top_k, CANDIDATES) if mode != "vector" else top_k
        dense_hits = self.vectors.search_chunks(qvec, k, filters)
        timings["vector_search"] = time.perf_counter() - t
        dense = {cid: s for cid, s in dense_hits if cid in idx.c_pos}

        seeds: list[tuple[int, float]] = []
        primary: list[int] = []
        graph_scores: dict[str, float] = {}
        if mode != "vector":
            t = time.perf_counter()
            seeds = self._seeds(query, qvec, idx, filters)
            primary = [i for i, _ in seeds]
            cued = self.cued_relations(query)
            if cued and seeds:  # follow the relations the question names: the bridge entities become seeds too
                base = dict(seeds)
                for i, w in idx.follow(base, cued).items():
                    seeds.append((i, w))
            timings["seed_entities"] = time.perf_counter() - t
            t = time.perf_counter()
            graph_scores = self._traverse(idx, seeds, dense if mode == "hybrid" else {}, filters,
                                          self.answer_classes(query))
            timings["graph_traversal"] = time.perf_counter() - t

        t = time.perf_counter()
        ranked = self._rank(mode, dense, graph_scores, top_k)
        timings["fuse"] = time.perf_counter() - t

        t = time.perf_counter()
        result.chunks = self._enrich(ranked, dense, graph_scores)
        result.seeds = [EntityRef(id=idx.entity_ids[i], name=idx.entity_names[i], label=idx.entity_labels[i])
                        for i, _ in seeds]
        result.evidence = self._evidence(idx, primary, result.chunks)
        result.answer_classes = sorted(self.answer_classes(query))
        timings["enrich"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - t0
        result.timings = _ms(timings)
        return result

    # -- stages --------------------------------------------------------------------------------------
    def _seeds(self, query: str, qvec: np.ndarray, idx: GraphIndex, filters) -> list[tuple[int, float]]:
        """Entities named in the question (weight 1) and the nearest entity vectors above a similarity floor."""
        seeds: dict[int, float] = {i: 1.0 for i in idx.entities_in_text(query)}
        tenant = (filters or {}).get("tenant")
        for eid, sim in self.vectors.search_entities(qvec, ENTITY_SEEDS, {"tenant": tenant} if tenant else None):
            i = idx.e_pos.get(eid)
            if i is not None and sim >= ENTITY_MIN_SIM:
                seeds[i] = max(seeds.get(i, 0.0), float(sim))
        # an entity mentioned everywhere says little: weight seeds by inverse chunk frequency
        out = [(i, w / np.log(2.0 + idx.entity_df[i])) for i, w in seeds.items()]
        return sorted(out, key=lambda t: -t[1])

    def cued_relations(self, query: str) -> set[str]:
        """Relation types the question names through their trigger phrases ('works for', 'headquartered')."""
        q = " " + " ".join(re.findall(r"[a-z0-9-]+", query.lower())) + " "
        return {t for phrase, types in self.relation_cues.items() if f" {phrase} " in q for t in types}

    def answer_classes(self, query: str) -> set[str]:
        """Classes the question asks for ('which country', 'who'), from the ontology's class labels."""
        words = re.findall(r"[a-z]+", query.lower())
        out: set[str] = set()
        for w in words:
            out |= self.class_cues.get(w, set())
            if w.endswith("s"):
                out |= self.class_cues.get(w[:-1], set())
        return out

    def _traverse(self, idx: GraphIndex, seeds, dense: dict[str, float], filters,
                  answer_classes: set[str] = frozenset()) -> dict[str, float]:
        e = np.zeros(idx.n_entities)
        for i, w in seeds:
            e[i] = w
        if self.graph_algorithm == "khop":
            scores = idx.khop(e)
        else:
            if e.sum() > 0:
                e = e / e.sum()
            c = None
            if dense:  # passages enter the restart vector with their dense scores (HippoRAG 2)
                c = np.zeros(idx.n_chunks)
                for cid, s in dense.items():
                    c[idx.c_pos[cid]] = max(s, 0.0)
                if c.sum() > 0:
                    c = c / c.sum() * (self.passage_mass if e.sum() > 0 else 1.0)
            full = idx.ppr_full(e, c, damping=self.damping)
            scores = full[idx.n_entities:]
            if answer_classes and self.answer_type_weight > 0 and scores.max() > 0:
                # chunks that mention an entity of the asked-for class, weighted by the mass that entity got
                # from the seeds: the graph's way of saying "this passage holds a candidate answer"
                ent = full[:idx.n_entities] * idx.class_mask(answer_classes)
                if ent.max() > 0:
                    bonus = idx.mentions @ (ent / ent.max())
                    scores = scores / scores.max() + self.answer_type_weight * bonus / max(bonus.max(), 1e-12)
        allowed = _allowed(idx, filters)
        order = np.argsort(-scores)[:CANDIDATES * 2]
        return {idx.chunk_ids[j]: float(scores[j]) for j in order if scores[j] > 0 and allowed(j)}

    def _rank(self, mode: str, dense: dict[str, float], graph: dict[str, float], top_k: int) -> list[tuple[str, float]]:
        if mode == "vector" or not graph:
            if mode == "graph":
                return []
            return sorted(dense.items(), key=lambda t: -t[1])[:top_k]
        if mode == "graph":
            return sorted(graph.items(), key=lambda t: -t[1])[:top_k]
        w = self.hybrid_dense_weight
        if self.fusion == "rrf":  # reciprocal-rank fusion, weighted
            rg = {cid: r for r, (cid, _) in enumerate(sorted(graph.items(), key=lambda t: -t[1]))}
            rd = {cid: r for r, (cid, _) in enumerate(sorted(dense.items(), key=lambda t: -t[1]))}
            fused = {cid: w / (60 + rd.get(cid, 10**6)) + (1 - w) / (60 + rg.get(cid, 10**6)) for cid in set(rg) | set(rd)}
            return sorted(fused.items(), key=lambda t: -t[1])[:top_k]
        g = _minmax(graph)
        d = _minmax(dense)
        fused = {cid: w * d.get(cid, 0.0) + (1 - w) * g.get(cid, 0.0) for cid in set(g) | set(d)}
        return sorted(fused.items(), key=lambda t: -t[1])[:top_k]

    def _enrich(self, ranked, dense, graph) -> list[RetrievedChunk]:
        ids = [cid for cid, _ in ranked]
        if not ids:
            return []
        rows = {r["id"]: r for r in self.graph.get_chunks(ids)}
        ents: dict[str, list[EntityRef]] = {}
        for r in self.graph.chunk_entities(ids):
            ents.setdefault(r["chunk_id"], []).append(EntityRef(id=r["id"], name=r["name"], label=r["label"] or "Concept"))
        cut = [cid for cid in ids if cid in rows and not rows[cid]["text"].rstrip().endswith(_SENT_END)]
        neigh: dict[str, dict[str, str]] = {}
        if cut:
            links = self.graph.neighbour_chunks(cut)
            nxt_ids = [l["next_id"] for l in links if l.get("next_id")]
            texts = {r["id"]: r["text"] for r in self.graph.get_chunks(nxt_ids)} if nxt_ids else {}
            for l in links:
                if l.get("next_id") in texts:
                    neigh[l["id"]] = {"next": texts[l["next_id"]]}
        out = []
        for cid, score in ranked:
            r = rows.get(cid)
            if r is None:
                continue  # deleted between the index load and now
            out.append(RetrievedChunk(
                id=cid, doc_id=r["doc_id"], title=r.get("title") or "", source=r.get("source") or "", text=r["text"],
                start=int(r["start"]), end=int(r["end"]), page=r.get("page"), score=round(float(score), 6),
                vector_score=dense.get(cid), graph_score=graph.get(cid), entities=ents.get(cid, []),
                neighbours=neigh.get(cid, {}), tags=list(r.get("tags") or [])))
        return out

    def _evidence(self, idx: GraphIndex, seeds: list[int], chunks: list[RetrievedChunk]) -> list[EvidencePath]:
        """For each chunk, the shortest relation path from an entity of the question to one the chunk mentions
        (typed relations preferred over co-occurrence when paths tie)."""
        out = []
        if not seeds:
            return out
        parents = idx.bfs_parents(seeds[:5], max_hops=2)
        for ch in chunks:
            best = None
            for ent in ch.entities:
                j = idx.e_pos.get(ent.id)
                path = idx.path_to(parents, j) if j is not None else None
                if path and len(path) > 1 and (best is None or len(path) < len(best)):
                    best = path
            if best:
                hops = [(idx.entity_names[a], idx.edge_type(a, b), idx.entity_names[b]) for a, b in zip(best, best[1:])]
                out.append(EvidencePath(chunk_id=ch.id, hops=hops))
        return out


def _allowed(idx: GraphIndex, filters):
    if not filters:
        return lambda j: True
    docs = _as_set(filters.get("doc_id"))
    tenants = _as_set(filters.get("tenant"))
    tags = _as_set(filters.get("tag"))

    def ok(j: int) -> bool:
        return ((not docs or idx.chunk_doc[j] in docs) and (not tenants or idx.chunk_tenant[j] in tenants)
                and (not tags or bool(tags & set(idx.chunk_tags[j]))))
    return ok


def _as_set(v) -> set[str]:
    if v is None:
        return set()
    return {str(x) for x in v} if isinstance(v, (list, tuple, set)) else {str(v)}


def _minmax(scores: dict[str, float]) -> dict[str, float]:
    if not scores:
        return {}
    lo, hi = min(scores.values()), max(scores.values())
    span = hi - lo
    return {k: ((v - lo) / span if span > 0 else 1.0) for k, v in scores.items()}


def _ms(t: dict[str, float]) -> dict[str, float]:
    return {k: round(v * 1000, 3) for k, v in t.items()}
