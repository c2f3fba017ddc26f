"""The retriever's in-memory view of the graph: sparse matrices over entities and chunks, plus a name index.

Loaded from the GraphStore once; after an ingest or delete in this process it is patched from the few rows
that changed (graph_refresh.py), and reloaded whole only when some other writer moved the store's revision. The traversal math is sparse matrix arithmetic (compute.py): scipy on the CPU, torch
sparse-CSR resident on the GPU when the device setting says cuda.
"""
from __future__ import annotations

import logging
import re
import time
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np
import scipy.sparse as sp

from ..rows import ChunkRef, EdgeRow, EntityRow, MentionRow
from ..textnorm import normalise
from .compute import make_ops

log = logging.getLogger(__name__)

CO_OCCURS = "CO_OCCURS"
TYPED_EDGE_BOOST = 2.0  # an ontology-typed fact says more than co-occurrence
CO_OCCURS_WEIGHT = 1.0  # per supporting chunk
GENERIC_MATCH = 0.2  # a question's lower-case single word naming an entity ("film") against a name
SUBJECT_WEIGHT = 8.0  # entity -> chunk of the page about it, against 1 for a passing mention
_WORD = re.compile(r"[\w&+.-]+")


@dataclass
class GraphIndex:
    revision: int = -1
    entity_ids: list[str] = field(default_factory=list)
    entity_names: list[str] = field(default_factory=list)
    entity_labels: list[str] = field(default_factory=list)
    entity_aliases: list[tuple[str, ...]] = field(default_factory=list)
    entity_tenant: list[str] = field(default_factory=list)
    entity_source: list[str] = field(default_factory=list)  # found_by: vocabulary, ner, noun_phrase, title, llm
    chunk_ids: list[str] = field(default_factory=list)
    chunk_doc: list[str] = field(default_factory=list)
    chunk_tenant: list[str] = field(default_factory=list)
    chunk_tags: list[list[str]] = field(default_factory=list)
    e_pos: dict[str, int] = field(default_factory=dict)
    c_pos: dict[str, int] = field(default_factory=dict)
    names: dict[str, list[int]] = field(default_factory=dict)  # normalised name/alias -> entity positions
    max_name_words: int = 1
    # the matrices are None until load() or graph_refresh sets them (scipy is untyped, so mypy sees Any)
    mentions: sp.csr_matrix = None  # chunks x entities
    subjects: sp.csr_matrix = None  # chunks x entities: 1 where the entity is the chunk's document's subject
    adjacency: sp.csr_matrix = None  # entities x entities (symmetric, weighted)
    edge_types: dict[tuple[int, int], str] = field(default_factory=dict)
    typed_neighbours: dict[int, list[tuple[int, str]]] = field(default_factory=dict)  # both directions
    transition: sp.csr_matrix = None  # (E+C) x (E+C), column-stochastic
    entity_df: np.ndarray = field(default_factory=lambda: np.zeros(0))  # chunks mentioning each entity (finish)
    load_seconds: float = 0.0  # the full load, or the incremental refresh that made this index
    device: str = "cpu"  # cpu (scipy), cuda (torch), torch-cpu (torch kernels on the CPU, for parity tests)
    _ops: object = None
    _spec: np.ndarray | None = None
    _page: np.ndarray | None = None

    @property
    def ops(self):
        """The traversal operators on this index's device, built once per index (so resident on the GPU)."""
        if self._ops is None:
            self._ops = make_ops(self.transition, self.adjacency, self.mentions, self.device)
        return self._ops

    @property
    def n_entities(self) -> int:
        return len(self.entity_ids)

    @property
    def n_chunks(self) -> int:
        return len(self.chunk_ids)

    @classmethod
    def load(cls, graph, tenant: str | None = None, device: str = "cpu") -> "GraphIndex":
        t = time.perf_counter()
        idx = cls(revision=graph.revision(), device=device)
        for row in graph.export_chunks(tenant):
            idx.add_chunk(row)
        for row in graph.export_entities(tenant):
            idx.add_entity(row)
        idx.reindex_names()
        idx.mentions, idx.subjects = idx.mention_matrices(graph.export_mentions(tenant), idx.n_chunks)
        r, c, w = idx.edge_arrays(graph.export_entity_edges(tenant))
        E = idx.n_entities
        idx.adjacency = sp.csr_matrix((w, (r, c)), shape=(E, E), dtype=np.float32)
        idx.adjacency.sum_duplicates()
        idx.finish()
        idx.load_seconds = time.perf_counter() - t
        log.info("graph index: %d entities, %d chunks, %d edges, %d mentions in %.2fs", E, idx.n_chunks,
                 idx.adjacency.nnz // 2, idx.mentions.nnz, idx.load_seconds)
        return idx

    # -- building blocks shared by the full load and the incremental refresh (graph_refresh.py) ----------
    def add_chunk(self, row: ChunkRef) -> None:
        self.c_pos[row.id] = len(self.chunk_ids)
        self.chunk_ids.append(row.id)
        self.chunk_doc.append(row.doc_id)
        self.chunk_tenant.append(row.tenant)
        self.chunk_tags.append(list(row.tags or []))

    def add_entity(self, row: EntityRow) -> None:
        self.e_pos[row.id] = len(self.entity_ids)
        self.entity_ids.append(row.id)
        self.entity_names.append(row.name)
        self.entity_labels.append(row.label or "Concept")
        self.entity_aliases.append(tuple(row.aliases or ()))
        self.entity_tenant.append(row.tenant or "")
        self.entity_source.append(row.found_by or "")

    def name_keys(self, i: int) -> set[str]:
        keys = (normalise(n) for n in {self.entity_names[i], *self.entity_aliases[i]})
        return {k for k in keys if len(k) >= 2}

    def index_names_of(self, i: int) -> None:
        for key in self.name_keys(i):
            self.names.setdefault(key, []).append(i)
            self.max_name_words = max(self.max_name_words, min(len(key.split()), 6))

    def reindex_names(self) -> None:
        self.names, self.max_name_words = {}, 1
        for i in range(self.n_entities):
            self.index_names_of(i)

    def mention_matrices(self, rows: Iterable[MentionRow], n_rows: int, row_pos: dict[str, int] | None = None) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """(mentions, subject links), chunks x entities, from MENTIONS rows; rows of chunks or entities not in
        the index are skipped."""
        row_pos = self.c_pos if row_pos is None else row_pos
        r, c, w, subj = [], [], [], []
        for row in rows:
            ci, ei = row_pos.get(row.chunk_id), self.e_pos.get(row.entity_id)
            if ci is not None and ei is not None:
                r.append(ci)
                c.append(ei)
                w.append(1.0 + np.log1p(float(row.count or 1) - 1))
                subj.append(1.0 if row.subject else 0.0)
        shape = (n_rows, self.n_entities)
        s = sp.csr_matrix((subj, (r, c)), shape=shape, dtype=np.float32)
        s.eliminate_zeros()
        return sp.csr_matrix((w, (r, c)), shape=shape, dtype=np.float32), s

    def edge_arrays(self, rows: Iterable[EdgeRow]) -> tuple[list[int], list[int], list[float]]:
        """Symmetric (row, col, weight) triples for entity edges, recording typed ones on the way."""
        r, c, w = [], [], []
        for row in rows:
            a, b = self.e_pos.get(row.source_id), self.e_pos.get(row.target_id)
            if a is None or b is None or a == b:
                continue
            weight = float(row.weight or 1.0)
            if row.type == CO_OCCURS:
                weight *= CO_OCCURS_WEIGHT
            else:
                weight *= TYPED_EDGE_BOOST
                self.edge_types[(a, b)] = row.type
                self.typed_neighbours.setdefault(a, []).append((b, row.type))
                self.typed_neighbours.setdefault(b, []).append((a, row.type))
            r += [a, b]
            c += [b, a]
            w += [weight, weight]
        return r, c, w

    def finish(self) -> None:
        """Derived state: the PageRank transition, entity document frequencies; device operators rebuilt lazily."""
        if self.subjects is None:
            self.subjects = sp.csr_matrix(self.mentions.shape, dtype=np.float32)
        self.transition = _transition(self.adjacency, self.mentions, self.subjects)
        self.entity_df = np.asarray((self.mentions > 0).sum(axis=0)).ravel()
        self._ops = None
        self._spec = self._page = None

    # -- seeds --------------------------------------------------------------------------------------
    def entities_in_text(self, text: str) -> list[int]:
        """Entities whose name or alias appears in the text (longest match first, word n-grams)."""
        return list(dict.fromkeys(i for i, _ in self._name_matches(text)))

    def _name_matches(self, text: str) -> list[tuple[int, bool]]:
        """(entity, generic) per name or alias match, longest first; `generic`: the match is a single word
        written in lower case in the text ("film", "director"): a common noun more than a name."""
        raw = _WORD.findall(text)
        pairs = [(normalise(w), w) for w in raw]
        pairs = [(k, w) for k, w in pairs if k]
        words = [k for k, _ in pairs]
        found: list[tuple[int, bool]] = []
        used = [False] * len(words)
        for n in range(min(self.max_name_words, len(words)), 0, -1):
            for i in range(len(words) - n + 1):
                if any(used[i:i + n]):
                    continue
                hit = self.names.get(" ".join(words[i:i + n]))
                if hit and (n > 1 or len(words[i]) > 2):
                    generic = n == 1 and pairs[i][1].islower()
                    found.extend((h, generic) for h in hit)
                    used[i:i + n] = [True] * n
        return found

    def specificity(self) -> np.ndarray:
        """Inverse chunk frequency per entity in [0, 1]: 1 for an entity one chunk mentions, near 0 for one
        every chunk mentions (a hub spreads restart mass over everything)."""
        if self._spec is None:
            C = max(self.n_chunks, 1)
            self._spec = np.log((C + 1) / (self.entity_df + 1.0)) / np.log(C + 1) if C > 1 else np.ones(self.n_entities)
            self._spec = np.clip(self._spec, 0.0, 1.0)
        return self._spec

    def has_page(self) -> np.ndarray:
        """Entities that some document is about (a subject link from at least one chunk)."""
        if self._page is None:
            self._page = np.asarray(self.subjects.sum(axis=0)).ravel() > 0 if self.subjects is not None \
                else np.zeros(self.n_entities, dtype=bool)
        return self._page

    def link_query(self, text: str) -> dict[int, float]:
        """Query entity linking: entities the question names, weighted by specificity; single lower-case
        common words (generic concepts) weigh GENERIC_MATCH of that."""
        spec = self.specificity()
        out: dict[int, float] = {}
        for i, generic in self._name_matches(text):
            w = float(spec[i]) * (GENERIC_MATCH if generic else 1.0)
            out[i] = max(out.get(i, 0.0), w)
        return out

    # -- traversal -----------------------------------------------------------------------------------
    def ppr(self, entity_seeds: np.ndarray, chunk_seeds: np.ndarray | None = None, damping: float = 0.5,
            iters: int = 30, tol: float = 1e-6) -> np.ndarray:
        """Personalised PageRank over entities+chunks; returns the chunk nodes' scores."""
        return self.ppr_full(entity_seeds, chunk_seeds, damping, iters, tol)[self.n_entities:]

    def ppr_full(self, entity_seeds: np.ndarray, chunk_seeds: np.ndarray | None = None, damping: float = 0.5,
                 iters: int = 30, tol: float = 1e-6) -> np.ndarray:
        """Personalised PageRank over entities+chunks; returns every node's score (entities first)."""
        E, C = self.n_entities, self.n_chunks
        p = np.zeros((E + C, 1), dtype=np.float64)
        p[:E, 0] = entity_seeds
        if chunk_seeds is not None:
            p[E:, 0] = chunk_seeds
        return self.ppr_batch(p, damping, iters, tol)[:, 0]

    def ppr_batch(self, restart: np.ndarray, damping: float = 0.5, iters: int = 30, tol: float = 1e-6) -> np.ndarray:
        """PageRank for B restart vectors at once: restart is (E+C, B), entities first; columns are normalised
        here and an all-zero column scores zero."""
        restart = np.asarray(restart, dtype=np.float64)
        totals = restart.sum(axis=0)
        if self.transition is None or not (totals > 0).any():
            return np.zeros_like(restart)
        p = np.divide(restart, totals, out=np.zeros_like(restart), where=totals > 0)
        return self.ops.ppr(p, damping, iters, tol)

    def follow(self, seeds: dict[int, float], types: set[str], hops: int = 3, decay: float = 0.7) -> dict[int, float]:
        """Entities reached from the seeds over edges of the given relation types only (either direction)."""
        reached: dict[int, float] = {}
        frontier = dict(seeds)
        for _ in range(hops):
            nxt: dict[int, float] = {}
            for u, w in frontier.items():
                for v, t in self.typed_neighbours.get(u, ()):
                    if t in types and v not in seeds and v not in reached:
                        nxt[v] = max(nxt.get(v, 0.0), w * decay)
            reached.update(nxt)
            frontier = nxt
            if not frontier:
                break
        return reached

    def entity_scope(self, tenants: AbstractSet[str], docs: AbstractSet[str] = frozenset(),
                     tags: AbstractSet[str] = frozenset()) -> np.ndarray | None:
        """Entities a search with these filters may show or seed from: the tenant's own (strict), and with doc
        or tag filters only those a permitted chunk mentions. None when nothing is filtered."""
        if not (tenants or docs or tags):
            return None
        key = (frozenset(tenants), frozenset(docs), frozenset(tags))
        cache = self.__dict__.setdefault("_scopes", {})
        if key not in cache:
            mask = np.ones(self.n_entities, dtype=bool)
            if tenants:
                mask &= np.fromiter((t in tenants for t in self.entity_tenant), dtype=bool, count=self.n_entities)
            if docs or tags:
                ok = np.fromiter(((not docs or d in docs) and (not tenants or t in tenants)
                                  and (not tags or bool(tags & set(g)))
                                  for d, t, g in zip(self.chunk_doc, self.chunk_tenant, self.chunk_tags)),
                                 dtype=np.float32, count=self.n_chunks)
                mask &= np.asarray(self.mentions.T @ ok).ravel() > 0
            if len(cache) > 64:
                cache.clear()
            cache[key] = mask
        return cache[key]

    def class_mask(self, classes: set[str]) -> np.ndarray:
        return np.fromiter((lbl in classes for lbl in self.entity_labels), dtype=bool, count=self.n_entities)

    def khop(self, entity_seeds: np.ndarray, hops: int = 2, decay: float = 0.5) -> np.ndarray:
        """Bounded expansion: seed weights spread `hops` steps over entity edges, then onto chunks."""
        if self.adjacency is None or self.n_entities == 0:
            return np.zeros(self.n_chunks)
        return self.ops.khop(np.asarray(entity_seeds, dtype=np.float64)[:, None], hops, decay)[:, 0]

    @staticmethod
    def path_to(parents: dict[int, int | None], target: int) -> list[int] | None:
        if target not in parents:
            return None
        path = [target]
        while (parent := parents[path[-1]]) is not None:
            path.append(parent)
        return path[::-1]

    def edge_type(self, a: int, b: int) -> str:
        return self.edge_types.get((a, b)) or self.edge_types.get((b, a)) or CO_OCCURS


def _transition(adjacency: sp.csr_matrix, mentions: sp.csr_matrix, subjects: sp.csr_matrix | None = None) -> sp.csr_matrix:
    """Column-stochastic transition over [entities; chunks] from entity-entity and chunk-entity edges.

    Mass leaving an entity goes mostly to the chunks of the page about it (SUBJECT_WEIGHT), so a bridge entity
    reached from one page lands on its own page rather than thinly on every page that names it; mass leaving a
    chunk goes to its entities by mention weight."""
    E = adjacency.shape[0]
    C = mentions.shape[0]
    to_chunks = mentions + (SUBJECT_WEIGHT - 1.0) * subjects if subjects is not None and subjects.nnz else mentions
    full = sp.bmat([[adjacency, mentions.T], [to_chunks, None]], format="csr", dtype=np.float64)
    if full.shape != (E + C, E + C):  # bmat drops empty blocks' shape when both are empty
        full = sp.csr_matrix((E + C, E + C))
    col_sums = np.asarray(full.sum(axis=0)).ravel()
    inv = np.divide(1.0, col_sums, out=np.zeros_like(col_sums), where=col_sums > 0)
    return (full @ sp.diags(inv)).tocsr()
