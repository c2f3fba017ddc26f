"""Retriever.search(query, mode, top_k, filters): dense lookup, graph traversal, context enrichment.

- vector: HNSW top-k over chunk vectors (the baseline).
- graph: personalised PageRank from the query's seed entities (named in the question, or nearest by
  entity vector), ranked by the mass that reaches chunk nodes; `graph_algorithm="khop"` is the cheaper mode.
- hybrid (default): PageRank whose restart vector holds both the seed entities and the dense chunk scores
  (HippoRAG 2's recipe), fused with the dense ranking.
Graph modes walk twice: the entities of the first round's best chunks become seeds too (expansion.py).
"""
from __future__ import annotations

import logging
import re
import time
from typing import Any, Literal, cast

import numpy as np

from ..errors import RetrievalError
from ..ports import BatchVectorSearch, Embedder, GraphStore, VectorStore
from .evidence import evidence_paths
from .expansion import expansion_seeds
from .graph_index import GraphIndex
from .index_upkeep import IndexUpkeep, _Exact
from .models import MODES, EntityRef, Mode, EvidencePath, RetrievalResult, RetrievedChunk

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
    """Answers searches over the graph index that its IndexUpkeep keeps at the store's revision.

    `search` is `search_many` with one query: every stage takes a batch, so a GPU (or just fewer round trips)
    serves many questions in one pass."""

    def __init__(self, graph: GraphStore, vectors: VectorStore, embedder: Embedder, damping: float = 0.7,
                 class_cues: dict[str, set[str]] | None = None, answer_type_weight: float = 0.0,
                 relation_cues: dict[str, set[str]] | None = None,
                 passage_mass: float = 0.25, hybrid_dense_weight: float = 0.1,
                 graph_algorithm: Literal["ppr", "khop"] = "ppr", fusion: Literal["linear", "rrf"] = "linear",
                 device: str = "cpu", vector_search: Literal["hnsw", "exact"] = "hnsw", incremental: bool = True,
                 expansion: float = 0.5, dense_restart: Literal["raw", "minmax"] = "raw",
                 batch_search: BatchVectorSearch | None = None):
        self.graph, self.vectors, self.embedder = graph, vectors, embedder
        self.batch_search = batch_search  # the vector store's batched search, when bootstrap found it has one
        self.damping = damping
        self.passage_mass = passage_mass
        self.hybrid_dense_weight = hybrid_dense_weight
        self.graph_algorithm = graph_algorithm
        self.fusion = fusion
        self.class_cues = class_cues or {}
        self.answer_type_weight = answer_type_weight
        self.relation_cues = relation_cues or {}
        self.vector_search = vector_search
        self.expansion = expansion  # second-round seed mass, relative to the question's (0: one round)
        self.dense_restart = dense_restart
        self._upkeep = IndexUpkeep(graph, vectors, lambda: self.embedder.dim, device=device, incremental=incremental)

    # -- index upkeep (index_upkeep.py): the graph index and resident vectors at the store's revision --------
    def index(self) -> GraphIndex:
        return self._upkeep.index()

    def exact_indexes(self, idx: GraphIndex) -> _Exact:
        return self._upkeep.exact_indexes(idx)

    def invalidate(self) -> None:
        self._upkeep.invalidate()

    def catch_up(self) -> int | None:
        """Patch (or reload) a loaded index to the store's revision now: writes by any process, from the change log."""
        return self._upkeep.catch_up()

    def follow(self, interval_s: float) -> None:
        """Keep the index current in the background (a replica serving alongside other writers)."""
        self._upkeep.follow(interval_s)

    def stop_following(self) -> None:
        self._upkeep.stop_following()

    def replica_status(self) -> dict[str, Any]:
        return self._upkeep.replica_status()

    @property
    def last_refresh(self) -> dict[str, Any]:
        return self._upkeep.last_refresh

    @property
    def incremental(self) -> bool:
        return self._upkeep.incremental

    @incremental.setter
    def incremental(self, on: bool) -> None:
        self._upkeep.incremental = on

    @property
    def device(self) -> str:
        return self._upkeep.device

    @device.setter
    def device(self, device: str) -> None:
        self._upkeep.device = device

    @property
    def _exact(self) -> _Exact | None:
        return self._upkeep._exact

    def search(self, query: str, mode: str = "hybrid", top_k: int = 5,
               filters: dict[str, Any] | None = None) -> RetrievalResult:
        return self.search_many([query], mode, top_k, filters)[0]

    def search_many(self, queries: list[str], mode: str = "hybrid", top_k: int = 5,
                    filters: dict[str, Any] | None = None) -> list[RetrievalResult]:
        """Answer a batch of queries with the same mode, top_k and filters in one pass per stage. Timings are
        for the whole batch (`batch` says how many)."""
        if not isinstance(queries, (list, tuple)) or not queries:
            raise RetrievalError("queries must be a non-empty list of strings")
        queries = [validate(q, mode, top_k, filters) for q in queries]
        B = len(queries)
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        idx = self.index()
        timings["graph_index"] = time.perf_counter() - t0
        results = [RetrievalResult(query=q, mode=cast(Mode, mode), top_k=top_k, filters=filters or {})  # validated
                   for q in queries]
        if idx.n_chunks == 0:
            for r in results:
                r.empty_store = True
                r.timings = _ms(timings)
            return results

        t = time.perf_counter()
        qvecs = self.embedder.embed(queries)
        timings["embed"] = time.perf_counter() - t

        t = time.perf_counter()
        k = max(top_k, CANDIDATES) if mode != "vector" else top_k
        dense_hits = self._dense_many(idx, qvecs, k, filters)
        timings["vector_search"] = time.perf_counter() - t
        ok = _allowed(idx, filters)  # the store filtered already; the index is the check that cannot drift
        dense = [{cid: s for cid, s in hits if cid in idx.c_pos and ok(idx.c_pos[cid])} for hits in dense_hits]

        seeds: list[list[tuple[int, float]]] = [[] for _ in range(B)]
        primary: list[list[int]] = [[] for _ in range(B)]
        graph_scores: list[dict[str, float]] = [{} for _ in range(B)]
        scope = _entity_scope(idx, filters)
        if mode != "vector":
            t = time.perf_counter()
            seeds = self._seeds_many(queries, qvecs, idx, filters, scope)
            for b, q in enumerate(queries):
                primary[b] = [i for i, _ in seeds[b]]
                cued = self.cued_relations(q)
                if cued and seeds[b]:  # follow the relations the question names: bridge entities become seeds
                    seeds[b] = seeds[b] + [(i, w) for i, w in idx.follow(dict(seeds[b]), cued).items()
                                           if scope is None or scope[i]]
            timings["seed_entities"] = time.perf_counter() - t
            t = time.perf_counter()
            restart_dense = dense if mode == "hybrid" else [{}] * B
            classes = [self.answer_classes(q) for q in queries]
            graph_scores = self._traverse_many(idx, seeds, restart_dense, filters, classes, scope)
            if self.expansion > 0 and self.graph_algorithm == "ppr":  # second round: bridge entities as seeds
                more = [expansion_seeds(idx, self._rank(mode, dense[b], graph_scores[b], CANDIDATES), seeds[b],
                                        scope, self.expansion) for b in range(B)]
                if any(more):
                    graph_scores = self._traverse_many(idx, [s + m for s, m in zip(seeds, more)], restart_dense,
                                                       filters, classes, scope)
            timings["graph_traversal"] = time.perf_counter() - t

        t = time.perf_counter()
        ranked = [self._rank(mode, dense[b], graph_scores[b], top_k) for b in range(B)]
        timings["fuse"] = time.perf_counter() - t

        t = time.perf_counter()
        enriched = self._enrich_many(ranked, dense, graph_scores)
        for b, r in enumerate(results):
            r.chunks = enriched[b]
            r.seeds = [EntityRef(id=idx.entity_ids[i], name=idx.entity_names[i], label=idx.entity_labels[i])
                       for i, _ in seeds[b]]
            r.evidence = self._evidence(idx, primary[b], r.chunks, scope)
            r.answer_classes = sorted(self.answer_classes(r.query))
        timings["enrich"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - t0
        ms = _ms(timings)
        if B > 1:
            ms["batch"] = B
        for r in results:
            r.timings = dict(ms)
        return results

    # -- stages --------------------------------------------------------------------------------------
    def _dense_many(self, idx: GraphIndex, qvecs: np.ndarray, k: int, filters) -> list[list[tuple[str, float]]]:
        if self.vector_search == "exact":
            ex = self.exact_indexes(idx)
            mask = ex.chunk_present
            if filters:
                allowed = _allowed(idx, filters)
                mask = mask & np.fromiter((allowed(j) for j in range(idx.n_chunks)), dtype=bool, count=idx.n_chunks)
            return ex.chunks.search(qvecs, k, None if mask.all() else mask)
        if self.batch_search is not None:
            return self.batch_search.search_chunks_many(qvecs, k, filters)
        return [self.vectors.search_chunks(v, k, filters) for v in qvecs]

    def _entity_hits(self, idx: GraphIndex, qvecs: np.ndarray, filters) -> list[list[tuple[str, float]]]:
        tenant = (filters or {}).get("tenant")
        if self.vector_search == "exact":
            ex = self.exact_indexes(idx)
            ents, tenants = ex.entities, ex.entity_tenants
            mask = None
            if tenant:
                mask = np.isin(tenants, list(_as_set(tenant))) if len(tenants) else None
            return ents.search(qvecs, ENTITY_SEEDS, mask)
        ef = {"tenant": tenant} if tenant else None
        if self.batch_search is not None:
            return self.batch_search.search_entities_many(qvecs, ENTITY_SEEDS, ef)
        return [self.vectors.search_entities(v, ENTITY_SEEDS, ef) for v in qvecs]

    def _seeds_many(self, queries: list[str], qvecs: np.ndarray, idx: GraphIndex, filters,
                    scope: np.ndarray | None = None) -> list[list[tuple[int, float]]]:
        """Entities named in the question (weight 1) and the nearest entity vectors above a similarity floor,
        only those inside the filters' scope (the caller's tenant, always)."""
        out = []
        for q, hits in zip(queries, self._entity_hits(idx, qvecs, filters)):
            seeds = {i: w for i, w in idx.link_query(q).items() if w > 0 and (scope is None or scope[i])}
            spec = idx.specificity()
            for eid, sim in hits:
                i = idx.e_pos.get(eid)
                if i is not None and sim >= ENTITY_MIN_SIM and (scope is None or scope[i]):
                    # an entity mentioned everywhere says little: weighted by inverse chunk frequency
                    seeds[i] = max(seeds.get(i, 0.0), float(sim) * float(spec[i]))
            out.append(sorted(((i, w) for i, w in seeds.items() if w > 0), key=lambda t: -t[1]))
        return out

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

    def _traverse_many(self, idx: GraphIndex, seeds: list, dense: list[dict[str, float]], filters,
                       answer_classes: list[set[str]], scope: np.ndarray | None = None) -> list[dict[str, float]]:
        """Restart mass only on entities and passages inside the filters (entity ids are per tenant and edges
        never cross tenants, so none flows out of the caller's tenant); scores only for permitted chunks."""
        E, C, B = idx.n_entities, idx.n_chunks, len(seeds)
        allowed = _allowed(idx, filters)
        e = np.zeros((E, B))
        for b, sd in enumerate(seeds):
            for i, w in sd:
                if scope is not None and not scope[i]:
                    raise RetrievalError("a seed entity outside the search's filters reached the traversal")
                e[i, b] = w
        if self.graph_algorithm == "khop":
            scores = idx.ops.khop(e, 2, 0.5) if E else np.zeros((C, B))
            full = None
        else:
            esum = e.sum(axis=0)
            e = np.divide(e, esum, out=np.zeros_like(e), where=esum > 0)
            c = np.zeros((C, B))
            for b, d in enumerate(dense):  # passages enter the restart vector with their dense scores (HippoRAG 2)
                if self.dense_restart == "minmax":  # min-max, as HippoRAG 2: the 50th candidate adds nothing
                    d = _minmax(d)
                for cid, s in d.items():
                    j = idx.c_pos[cid]
                    if not allowed(j):
                        raise RetrievalError("a dense hit outside the search's filters reached the traversal")
                    c[j, b] = max(s, 0.0)
            csum = c.sum(axis=0)
            scale = np.where(esum > 0, self.passage_mass, 1.0)
            c = np.divide(c * scale, csum, out=np.zeros_like(c), where=csum > 0)
            full = idx.ppr_batch(np.vstack([e, c]), damping=self.damping)
            scores = full[E:]
        out = []
        for b in range(B):
            sc = scores[:, b]
            if full is not None and answer_classes[b] and self.answer_type_weight > 0 and sc.max() > 0:
                # chunks that mention an entity of the asked-for class, weighted by the mass that entity got
                # from the seeds: the graph's way of saying "this passage holds a candidate answer"
                ent = full[:E, b] * idx.class_mask(answer_classes[b])
                if scope is not None:
                    ent = ent * scope
                if ent.max() > 0:
                    bonus = idx.mentions @ (ent / ent.max())
                    sc = sc / sc.max() + self.answer_type_weight * bonus / max(bonus.max(), 1e-12)
            order = np.argsort(-sc)[:CANDIDATES * 2]
            out.append({idx.chunk_ids[j]: float(sc[j]) for j in order if sc[j] > 0 and allowed(j)})
        return out

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

    def _enrich_many(self, ranked: list, dense: list, graph: list) -> list[list[RetrievedChunk]]:
        """One round of store reads for the whole batch: chunk rows, their entities, and the next chunk of
        any chunk cut mid-thought."""
        ids = list(dict.fromkeys(cid for rk in ranked for cid, _ in rk))
        if not ids:
            return [[] for _ in ranked]
        rows = {r.id: r for r in self.graph.get_chunks(ids)}
        ents: dict[str, list[EntityRef]] = {}
        for e in self.graph.chunk_entities(ids):
            ents.setdefault(e.chunk_id, []).append(EntityRef(id=e.id, name=e.name, label=e.label or "Concept"))
        cut = [cid for cid in ids if cid in rows and not rows[cid].text.rstrip().endswith(_SENT_END)]
        neigh: dict[str, dict[str, str]] = {}
        if cut:
            links = self.graph.neighbour_chunks(cut)
            nxt_ids = [l.next_id for l in links if l.next_id]
            texts = {r.id: r.text for r in self.graph.get_chunks(nxt_ids)} if nxt_ids else {}
            for l in links:
                if l.next_id in texts:
                    neigh[l.id] = {"next": texts[l.next_id]}
        out = []
        for rk, d, g in zip(ranked, dense, graph):
            chunks = []
            for cid, score in rk:
                r = rows.get(cid)
                if r is None:
                    continue  # deleted between the index load and now
                chunks.append(RetrievedChunk(
                    id=cid, doc_id=r.doc_id, title=r.title or "", source=r.source or "",
                    text=r.text, start=int(r.start), end=int(r.end), page=r.page,
                    score=round(float(score), 6), vector_score=d.get(cid), graph_score=g.get(cid),
                    entities=ents.get(cid, []), neighbours=neigh.get(cid, {}), tags=list(r.tags or [])))
            out.append(chunks)
        return out

    def _evidence(self, idx: GraphIndex, seeds: list[int], chunks: list[RetrievedChunk],
                  scope: np.ndarray | None = None) -> list[EvidencePath]:
        """For each chunk, a short relation path from an entity of the question to one the chunk mentions
        (evidence.py: typed relations first, in their stored direction), through entities in scope only."""
        return evidence_paths(idx, seeds, chunks, scope)


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


def _entity_scope(idx: GraphIndex, filters) -> np.ndarray | None:
    f = filters or {}
    return idx.entity_scope(_as_set(f.get("tenant")), _as_set(f.get("doc_id")), _as_set(f.get("tag")))


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
