"""The RDF view of the knowledge graph: a pyoxigraph store under <data_dir>/rdf, one named graph per tenant
(`urn:kgf:tenant:<tenant>`), the ontology in `urn:kgf:ontology`, read by SPARQL.

It is derived data. The ingest pipeline tells it about every completed group and every delete (see
`SemanticSync`), and it applies the change incrementally. It also remembers which graph revision it mirrors:
every write and delete bumps the graph's revision once, so when the stored revision is not the one just before
(another process wrote, a crash came between the two stores, the view is new) it rebuilds itself from the
graph instead. Queries check the revision too, so an analyst never reads a stale view.

RocksDB allows one process per store: a second process gets a clear error on query, and its writes leave the view
to be rebuilt by the next process that opens it.
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, Sequence, cast

from ..derived_view import DerivedView
from ..errors import SparqlError
from ..ports import GraphStore
from .rdf_mapping import (CO_OCCURS, DOC_NS, META_GRAPH, META_NODE, ONTOLOGY_GRAPH, REL_NS, RdfMapper,
                          prefixes_for, tenant_graph)
from .sparql import SparqlResult, run_query
from .sparql_guard import Limits

log = logging.getLogger(__name__)

RevisionKey = tuple[int | None, str | None]  # (graph revision, ontology content hash) the view was built at


class RdfView:
    """`query()` for analysts; `documents_written`/`document_deleted`/`rebuild` keep it in step with the graph."""

    def __init__(self, path: Path | str | None, graph, ontology, limits: Limits | None = None):
        self.path = Path(path) if path is not None else None  # None = in memory (benchmarks)
        self.limits = limits or Limits()  # KGF_SPARQL_* bounds on query text (ontology/sparql_guard.py)
        self.graph = graph
        self.ontology = ontology
        self.map = RdfMapper(ontology)
        self.prefixes = prefixes_for(ontology)
        self._store = None
        self._lock = threading.RLock()
        # the copy is the store itself, patched in place; its key (graph revision, ontology hash) is kept in the
        # store, so a view left by an earlier process resumes from it (derived_view.DerivedView)
        self._view: DerivedView[RevisionKey, Any] = DerivedView(self._build, guard=self._lock, builder_lock=self._lock,
                                                                restore=self._restore)
        self._last_rebuild: dict[str, Any] = {}

    # -- store and bookkeeping ---------------------------------------------------------------------
    def _open(self):
        if self._store is None:
            import pyoxigraph as ox

            try:
                if self.path is None:
                    self._store = ox.Store()
                else:
                    self.path.mkdir(parents=True, exist_ok=True)
                    self._store = ox.Store(str(self.path))
            except OSError as e:
                hint = " (another kgf process has it open)" if "lock" in str(e).lower() else ""
                raise SparqlError(f"cannot open the RDF view at {self.path}{hint}: {e}") from e
        return self._store

    def _meta(self, key: str) -> str | None:
        st = self._open()
        for q in st.quads_for_pattern(self.map.N(META_NODE), self.map.v(key), None, self.map.N(META_GRAPH)):
            return q.object.value
        return None

    def _set_meta(self, key: str, value: Any) -> None:
        import pyoxigraph as ox

        st, s, p, g = self._open(), self.map.N(META_NODE), self.map.v(key), self.map.N(META_GRAPH)
        for q in list(st.quads_for_pattern(s, p, None, g)):
            st.remove(q)
        st.add(ox.Quad(s, p, ox.Literal(str(value)), g))

    def _stored_revision(self) -> int | None:
        v = self._meta("graphRevision")
        return int(v) if v is not None and v.lstrip("-").isdigit() else None

    def _key(self) -> tuple[int, str]:
        return self.graph.revision(), self.ontology.content_hash

    def _restore(self) -> tuple[RevisionKey, Any]:
        return (self._stored_revision(), self._meta("ontologyHash")), self._open()

    def ensure_current(self) -> bool:
        """Rebuild when the view is behind the graph or was built with another ontology. True if it rebuilt."""
        with self._lock:
            return self._view.ensure(self._key())[1]

    # -- incremental sync (called by the ingest pipeline through SemanticSync) ------------------------
    def documents_written(self, docs: Sequence, chunks: Sequence, extraction) -> None:
        with self._lock:  # one step behind: patch; else rebuild (the graph already holds this write)
            rev, ontology_hash = self._key()

            def write(st) -> None:
                st.extend(self._write_quads(docs, chunks, extraction))
                self._set_meta("graphRevision", rev)
                # out of RocksDB's write buffers onto disk: unflushed, they held ~500 MiB after 6k passages
                st.flush()
            self._view.advance((rev - 1, ontology_hash), (rev, ontology_hash), write)

    def document_deleted(self, doc_id: str) -> None:
        with self._lock:  # a delete checks the revision only: a view of another ontology is rebuilt on next read
            rev = self.graph.revision()
            held = self._view.held_key()
            ontology_hash = held[1] if held is not None else None

            def delete(st) -> None:
                self._remove_document(doc_id)
                self._set_meta("graphRevision", rev)
                st.flush()
            self._view.advance((rev - 1, ontology_hash), (rev, ontology_hash), delete)

    def _write_quads(self, docs, chunks, extraction) -> list:
        import pyoxigraph as ox

        m, st = self.map, self._open()
        graph_of_doc = {d.id: m.N(tenant_graph(d.tenant)) for d in docs}
        doc_of = {c.id: c.doc_id for c in chunks}
        quads: list = []

        def add(triples, g) -> None:
            quads.extend(ox.Quad(t.subject, t.predicate, t.object, g) for t in triples)

        for d in docs:
            add(m.document_triples(d.id, d.title, d.source, d.tenant, d.mime, list(d.tags), d.ingested_at.isoformat()),
                graph_of_doc[d.id])
        for c in chunks:
            add(m.chunk_triples(c), graph_of_doc[c.doc_id])
        for e in extraction.entities:
            g = m.N(tenant_graph(e.tenant))
            known = next(iter(st.quads_for_pattern(m.entity(e.id), m.vid, None, g)), None) is not None
            add(m.entity_triples(e.id, self._classes(e.label), None if known else e.name, e.aliases,
                                 None if known else e.source), g)
        tenant_of_chunk = {c.id: c.tenant for c in chunks}
        for mt in extraction.mentions:
            add(m.mention_triples(mt.chunk_id, mt.entity_id, doc_of[mt.chunk_id]),
                m.N(tenant_graph(tenant_of_chunk[mt.chunk_id])))
        for r in extraction.relations:
            if r.type != CO_OCCURS and r.chunk_ids:
                add(m.relation_triples(r.source_id, r.type, r.target_id, r.chunk_ids, doc_of),
                    m.N(tenant_graph(tenant_of_chunk.get(r.chunk_ids[0], "default"))))
        return quads

    def _classes(self, cls: str) -> list[str]:
        return self.ontology.labels_for(cls) if cls in self.ontology.classes else [cls]

    def _remove_document(self, doc_id: str) -> None:
        m, st = self.map, self._open()
        doc = m.N(DOC_NS + doc_id)
        where = [q.graph_name for q in st.quads_for_pattern(doc, m.type, m.v("Document"), None)]
        for g in where:
            drop: list = []
            entities: set = set()
            statements: set = set()
            chunks = [q.subject for q in st.quads_for_pattern(None, m.part_of, doc, g)]
            for c in chunks:
                entities.update(q.object for q in st.quads_for_pattern(c, m.mentions, None, g))
                drop.extend(st.quads_for_pattern(c, None, None, g))
                for q in st.quads_for_pattern(None, m.derived, c, g):
                    drop.append(q)
                    if q.subject.value.startswith(REL_NS):
                        statements.add(q.subject)
            for q in st.quads_for_pattern(None, m.derived, doc, g):
                drop.append(q)
                if q.subject.value.startswith(REL_NS):
                    statements.add(q.subject)
            drop.extend(st.quads_for_pattern(doc, None, None, g))
            for q in drop:
                st.remove(q)
            drop = []
            for s in statements:  # a relation lives while one of its chunks does
                if next(iter(st.quads_for_pattern(s, m.derived, None, g)), None) is None:
                    spo = {q.predicate.value.rsplit("#", 1)[-1]: q.object
                           for q in st.quads_for_pattern(s, None, None, g)}
                    drop.extend(st.quads_for_pattern(s, None, None, g))
                    if {"subject", "predicate", "object"} <= set(spo):
                        drop.extend(st.quads_for_pattern(spo["subject"], spo["predicate"], spo["object"], g))
            for e in entities:  # an entity no chunk mentions any more is gone, as in the graph
                if next(iter(st.quads_for_pattern(None, m.mentions, e, g)), None) is None:
                    drop.extend(st.quads_for_pattern(e, None, None, g))
                    drop.extend(st.quads_for_pattern(None, None, e, g))
            for q in drop:
                st.remove(q)

    # -- full rebuild from the graph ---------------------------------------------------------------
    def rebuild(self) -> dict[str, Any]:
        """Replace the view with one built from the graph store's complete documents. Returns counts/timing."""
        with self._lock:
            self._view.rebuild(self._key())
            return dict(self._last_rebuild)

    def _build(self, key: RevisionKey, old: Any) -> tuple[Any, RevisionKey]:
        """DerivedView's builder: the whole view again, at the revision the graph reports once it is read."""
        import pyoxigraph as ox

        with self._lock:
            t0 = time.perf_counter()
            quads = self.build_quads(self.graph, self.map)
            st = self._open()
            st.clear()
            st.bulk_extend(quads)
            st.bulk_extend([ox.Quad(t.subject, t.predicate, t.object, self.map.N(ONTOLOGY_GRAPH))
                            for t in self.map.ontology_triples()])
            rev = self.graph.revision()
            self._set_meta("graphRevision", rev)
            self._set_meta("ontologyHash", self.ontology.content_hash)
            self._set_meta("ontologyVersion", self.ontology.version)
            st.flush()
            took = time.perf_counter() - t0
            log.info("RDF view rebuilt: %d quads in %.2fs", len(quads), took)
            self._last_rebuild = {"quads": len(quads), "seconds": round(took, 3)}
            return st, (rev, self.ontology.content_hash)

    @staticmethod
    def build_quads(graph: GraphStore, m: RdfMapper) -> list:
        """Every quad of the view, read from the graph store (shared with the benchmark's rdflib leg)."""
        import pyoxigraph as ox

        docs = graph.list_documents(status="complete")
        chunks = graph.export_chunk_texts()
        doc_of = {c.id: c.doc_id for c in chunks}
        tenant_of_chunk = {c.id: c.tenant for c in chunks}
        quads: list = []

        def add(triples, tenant) -> None:
            g = m.N(tenant_graph(tenant or "default"))
            quads.extend(ox.Quad(t.subject, t.predicate, t.object, g) for t in triples)

        for d in docs:
            add(m.document_triples(d.id, d.title, d.source, d.tenant, d.mime, d.tags, d.ingested_at), d.tenant)
        for c in chunks:
            add(m.chunk_triples(c), c.tenant)
        mentioned: set[str] = set()
        for mt in graph.export_mentions():
            if mt.chunk_id in doc_of:
                mentioned.add(mt.entity_id)
                add(m.mention_triples(mt.chunk_id, mt.entity_id, doc_of[mt.chunk_id]), tenant_of_chunk[mt.chunk_id])
        for e in graph.export_entity_classes():
            if e.id in mentioned or e.found_by == "imported":  # imported: see rdf_import.py
                classes = [lb for lb in (e.labels or []) if lb != "Entity"] or [e.label or "Concept"]
                add(m.entity_triples(e.id, classes, e.name or e.id, e.aliases or [], e.found_by), e.tenant)
        for r in graph.export_typed_relations():
            cids = [c for c in (r.chunk_ids or []) if c in doc_of]
            runs = [c for c in (r.chunk_ids or []) if c.startswith("import:")]  # imported facts
            if cids or runs:
                add(m.relation_triples(r.source_id, r.type, r.target_id, cids, doc_of), r.tenant)
                st = m.statement(r.source_id, r.type, r.target_id)
                add([ox.Triple(st, m.derived, m.N("urn:kgf:" + c)) for c in runs], r.tenant)
        return quads

    # -- reads -------------------------------------------------------------------------------------
    def tenants(self) -> list[str]:
        with self._lock:
            prefix = tenant_graph("")
            return sorted(g.value[len(prefix):] for g in self._open().named_graphs() if g.value.startswith(prefix))

    def query(self, sparql: str, *, tenant: str | None = None, timeout_s: float = 10.0, max_rows: int = 10000,
              default_graph_uris: Sequence[str] = (), named_graph_uris: Sequence[str] = ()) -> SparqlResult:
        """Read-only SPARQL. tenant=None: every tenant's graph (admin/local use); else that tenant's graph only,
        plus the ontology graph in both cases. UPDATE, syntax errors and timeouts raise SparqlError.

        The protocol's default-graph-uri / named-graph-uri choose the dataset among those graphs (naming either
        makes the dataset exactly what is named, as the SPARQL protocol says); naming any other graph, another
        tenant's included, is a SparqlError, so a caller cannot tell another tenant's graph from a missing one.
        FROM / FROM NAMED in the query text are overridden by the dataset given here (pyoxigraph)."""
        import pyoxigraph as ox

        with self._lock:
            self.ensure_current()
            st = self._open()
            graphs = [tenant_graph(t) for t in self.tenants()] if tenant is None else [tenant_graph(tenant)]
            allowed = [*graphs, ONTOLOGY_GRAPH]
            default, named = allowed, allowed
            if default_graph_uris or named_graph_uris:
                default, named = (dataset_graphs(default_graph_uris, allowed, "default-graph-uri"),
                                  dataset_graphs(named_graph_uris, allowed, "named-graph-uri"))
        try:
            return run_query(st, sparql, default_graph=[ox.NamedNode(g) for g in default],
                             named_graphs=[ox.NamedNode(g) for g in named], prefixes=self.prefixes,
                             timeout_s=timeout_s, max_rows=max_rows, limits=self.limits)
        except SparqlError as e:
            del st
            _scrub(e)
            raise

    def export(self, fmt: str = "turtle", tenant: str | None = None, doc_id: str | None = None) -> bytes:
        """The view as Turtle / N-Triples / N-Quads / JSON-LD: everything, one tenant, or one document's part."""
        import pyoxigraph as ox

        formats = {"turtle": ox.RdfFormat.TURTLE, "ntriples": ox.RdfFormat.N_TRIPLES, "nquads": ox.RdfFormat.N_QUADS,
                   "jsonld": ox.RdfFormat.JSON_LD, "trig": ox.RdfFormat.TRIG}
        if fmt not in formats:
            raise SparqlError(f"unknown export format {fmt!r}; use one of {', '.join(formats)}")
        with self._lock:
            self.ensure_current()
            st = self._open()
            graphs = [tenant_graph(t) for t in self.tenants()] if tenant is None else [tenant_graph(tenant)]
            quads = [q for g in graphs for q in st.quads_for_pattern(None, None, None, ox.NamedNode(g))]
            if doc_id is not None:
                keep = self._document_subjects(doc_id, quads)
                quads = [q for q in quads if q.subject in keep]
            if formats[fmt].supports_datasets:  # serialize returns bytes when given no output file
                return cast(bytes, ox.serialize(quads, format=formats[fmt], prefixes=self.prefixes))
            return cast(bytes, ox.serialize([q.triple for q in quads], format=formats[fmt], prefixes=self.prefixes))

    def _document_subjects(self, doc_id: str, quads: list) -> set:
        m = self.map
        doc = m.N(DOC_NS + doc_id)
        chunks = {q.subject for q in quads if q.predicate == m.part_of and q.object == doc}
        keep = {doc, *chunks}
        keep |= {q.subject for q in quads if q.predicate == m.derived and q.object in chunks}
        return keep

    def count(self, tenant: str | None = None) -> int:
        import pyoxigraph as ox

        with self._lock:
            st = self._open()
            graphs = [tenant_graph(t) for t in self.tenants()] if tenant is None else [tenant_graph(tenant)]
            return sum(len(list(st.quads_for_pattern(None, None, None, ox.NamedNode(g)))) for g in graphs)

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                try:
                    self._store.flush()
                except OSError as e:
                    log.debug("flushing the RDF view: %s", e)
                self._view.drop()  # reopened, it resumes from the revision kept in the store
                self._store = None  # RocksDB lets go of its lock when the store is dropped


def dataset_graphs(uris: Sequence[str], allowed: Sequence[str], param: str) -> list[str]:
    """The graphs a protocol parameter names, each one of `allowed` (the caller's tenant graph and the ontology
    graph), in order and without repeats; any other name is refused (SparqlError, a 400) without saying whether
    such a graph exists."""
    out: list[str] = []
    for u in uris:
        if u not in allowed:
            shown = u if len(u) <= 200 else u[:200] + "..."
            raise SparqlError(f"{param} <{shown}> is not a graph you may query: the graphs you can name are "
                              f"{', '.join('<' + a + '>' for a in allowed)}")
        if u not in out:
            out.append(u)
    return out


def _scrub(e: BaseException | None) -> None:
    """Drop the frames' locals from an error's tracebacks: a kept traceback (a CLI runner, a REPL) would keep the
    store alive and so its RocksDB lock held after close()."""
    import traceback

    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        traceback.clear_frames(e.__traceback__)
        e = e.__cause__ or e.__context__


class SemanticSync:
    """The pipeline listener: keeps the RDF view and the quarantine in step. Never fails an ingest: the graph
    is the source of truth, and a view that missed an event rebuilds itself on next use."""

    def __init__(self, rdf: RdfView | None, quarantine, ontology, graph=None):
        self.rdf, self.quarantine, self.ontology, self.graph = rdf, quarantine, ontology, graph
        self.ontology_version = ontology.version
        self._config_written = graph is None

    def documents_written(self, docs: Sequence, chunks: Sequence, extraction) -> None:
        if not self._config_written:  # n10s-style _GraphConfig/_NsPrefDef, once per process
            from .evolution import write_graph_config

            try:
                write_graph_config(self.graph, self.ontology)
                self._config_written = True
            except Exception as e:
                log.warning("graph config not written: %s", e)
        if self.quarantine is not None and extraction.violations:
            doc_of = {c.id: c.doc_id for c in chunks}
            tenant = docs[0].tenant if docs else "default"
            try:
                self.quarantine.add_violations(extraction.violations, doc_of, tenant, self.ontology_version)
            except Exception as e:
                log.error("could not record %d quarantined edges: %s", len(extraction.violations), e)
        if self.rdf is not None:
            try:
                self.rdf.documents_written(docs, chunks, extraction)
            except Exception as e:
                log.warning("RDF view not updated (%s); it is rebuilt from the graph on next use", e)

    def document_deleted(self, doc_id: str) -> None:
        if self.quarantine is not None:
            try:
                self.quarantine.delete_document(doc_id)
            except Exception as e:
                log.error("could not drop quarantined edges of %s: %s", doc_id, e)
        if self.rdf is not None:
            try:
                self.rdf.document_deleted(doc_id)
            except Exception as e:
                log.warning("RDF view not updated (%s); it is rebuilt from the graph on next use", e)
