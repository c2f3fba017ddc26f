"""The ingest pipeline: parse -> chunk -> embed -> extract -> write, in groups of documents.

Write order gives crash safety without transactions spanning two stores: each group's Document nodes are
written first with status 'pending', then chunks, graph facts and vectors, and status flips to 'complete'
last. A write that fails in the process is rolled back at once (the group's documents are deleted and
reported per file); after a crash, a re-run finds a pending document, removes what it left, and ingests it
again. A changed document
(same source, new bytes) is written in full before the old version is removed, so nothing stored is lost.
"""
from __future__ import annotations

import logging
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from ..errors import InvalidInputError, KGFError
from ..ports import Embedder, Extractor, ExtractorRun, GraphStore, IngestListener, VectorStore
from ..types import ALL_TENANTS, Chunk, Document, Entity, Extraction, FileError, IngestRun, utcnow
from .chunker import Chunker
from .parsers import iter_documents
from .aliases import merge_short_forms
from .subjects import add_subjects

log = logging.getLogger(__name__)

PIPELINE_VERSION = "1"
STAGES = ("parse", "chunk", "embed", "extract", "write")
Progress = Callable[[str, int], None]  # (event, amount): "document" per document done, "source" per source seen


@dataclass
class DeleteReport:
    doc_id: str
    chunks: int = 0
    entities: int = 0
    found: bool = True


@dataclass
class Group:
    """Documents admitted for one write: what `_admit` decided, before any work on them."""
    docs: list[Document] = field(default_factory=list)
    replaces: dict[str, list[str]] = field(default_factory=dict)  # new doc id -> old doc ids of the same source



@dataclass
class Prepared:
    """A group after the store-free half: everything `commit` writes, computed without touching a store."""
    docs: list[Document] = field(default_factory=list)  # the documents that produced chunks
    chunks_by_doc: dict[str, list[Chunk]] = field(default_factory=dict)
    all_chunks: list[Chunk] = field(default_factory=list)
    vectors: np.ndarray | None = None  # one row per chunk of all_chunks
    extraction: Extraction = field(default_factory=Extraction)
    new_entities: list[Entity] = field(default_factory=list)  # entities whose names need a vector
    entity_vectors: np.ndarray | None = None  # one row per new_entities
    errors: list[FileError] = field(default_factory=list)  # documents dropped before writing (no chunks)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage spent preparing


class IngestPipeline:
    """Wires the ports together; holds no state beyond the run it is doing."""

    def __init__(self, graph: GraphStore, vectors: VectorStore, embedder: Embedder, extractor: Extractor | None,
                 chunker: Chunker, ontology_version: str = "", group_size: int = 64, max_file_bytes: int = 50 << 20,
                 max_record_chars: int = 2_000_000, listeners: Sequence[IngestListener] = (),
                 extractor_run: ExtractorRun | None = None):
        self.graph, self.vectors, self.embedder, self.extractor = graph, vectors, embedder, extractor
        # told after each group is complete and after each delete (the retriever, the RDF view, the quarantine)
        self.listeners: list[IngestListener] = list(listeners)
        # the extractor's per-run report (an LLM extractor: model, prompt version, fallbacks), when it has one
        self.extractor_run = extractor_run
        self.chunker = chunker
        self.ontology_version = ontology_version
        self.group_size = group_size
        self.max_file_bytes, self.max_record_chars = max_file_bytes, max_record_chars
        self._ready = False
        # entity names with a vector (see ingest); a fresh pipeline knows none and reads no store
        self._embedded: set[str] = set()
        self._check_store = False

    def ensure_ready(self, entity_labels: Iterable[str] = ()) -> None:
        if not self._ready:
            self.vectors.ensure(self.embedder.dim)
            self.graph.ensure_schema(entity_labels)
            self._ready = True

    # -- ingest -----------------------------------------------------------------------------------
    def ingest(self, paths: Sequence[str], tenant: str = "default", tags: Sequence[str] = (),
               metadata: dict[str, Any] | None = None, progress: Progress | None = None,
               items: Iterable[Document | FileError] | None = None) -> IngestRun:
        """`items`: the documents of `paths` already parsed elsewhere, in parse order (the Ray engine)."""
        if tenant == ALL_TENANTS or not tenant:  # the all-tenants key scope is not a tenant data can belong to
            raise InvalidInputError(f"tenant {tenant!r} is reserved: give a tenant name (KGF_TENANT or --tenant)")
        self.ensure_ready()
        run = IngestRun(id="run_" + uuid.uuid4().hex[:16], pipeline_version=PIPELINE_VERSION,
                        embed_model=self.embedder.model_id, extractor=self.extractor.name if self.extractor else "none",
                        ontology_version=self.ontology_version)
        run.timings = {s: 0.0 for s in STAGES}
        if self.extractor_run is not None:
            self.extractor_run.start_run()
        # entity vectors: skip names embedded earlier in this run, and (only when the store already held
        # entities, the incremental case) names that already have a vector there
        self._embedded = set()
        self._check_store = self.extractor is not None and self.vectors.count("entities") > 0
        group = Group()
        t = time.perf_counter()
        if items is None:
            items = iter_documents(paths, tenant=tenant, tags=tags, metadata=metadata,
                                   max_file_bytes=self.max_file_bytes, max_record_chars=self.max_record_chars)
        for item in items:
            run.timings["parse"] += time.perf_counter() - t
            if isinstance(item, FileError):
                run.errors.append(item)
                log.warning("skipped %s: %s", item.source, item.reason)
                _tick(progress, "document")
            else:
                self._admit(item, group, run, progress)
                if len(group.docs) >= self.group_size:
                    self._process(group, run, progress)
                    group = Group()
            t = time.perf_counter()
        if group.docs:
            self._process(group, run, progress)
        t = time.perf_counter()
        self.vectors.refresh()
        run.timings["write"] += time.perf_counter() - t
        run.finished_at = utcnow()
        if self.extractor_run is not None:
            for k, v in self.extractor_run.run_report().items():
                setattr(run, k, v)
        run.timings = {k: round(v, 4) for k, v in run.timings.items()}
        self.graph.record_run(run)
        return run

    def _admit(self, doc: Document, group: Group, run: IngestRun, progress: Progress | None) -> None:
        """Decide: unchanged (skip), pending leftover (repair), new or changed (ingest)."""
        existing = self.graph.get_document(doc.id)
        if existing and existing.status == "complete":
            run.documents_unchanged += 1
            _tick(progress, "document")
            return
        if existing:  # pending: a crash interrupted it
            log.info("repairing half-written document %s (%s)", doc.id, doc.source)
            self.delete(doc.id, refresh=False)  # the run refreshes once at its end
        if any(d.id == doc.id for d in group.docs):
            return  # the same record twice in one batch
        olds = [d.id for d in self.graph.documents_by_source(doc.source, doc.tenant) if d.id != doc.id]
        group.docs.append(doc)
        if olds:
            group.replaces[doc.id] = olds

    def _process(self, group: Group, run: IngestRun, progress: Progress | None) -> None:
        self.commit(group, self.prepare(group.docs), run, progress)

    # -- the two halves of a group: prepare (no store writes) and commit (all writes) --------------
    def prepare(self, docs: list[Document]) -> Prepared:
        """Chunk, embed, extract, merge short forms, add subjects and embed new entity names; writes nothing.

        The only store access is a read: when the run started on a store that already held entities
        (`_check_store`), names with a vector there are not embedded again. A pipeline that never ran
        `ingest` (a worker elsewhere) has `_check_store` False and an empty `_embedded`, so it touches no store.
        """
        p = Prepared()
        timings = p.timings
        t = time.perf_counter()
        for doc in docs:
            try:
                chunks = self.chunker.split(doc)
            except Exception as e:  # one bad document must not stop the batch
                chunks, reason = [], f"chunking failed: {e}"
            else:
                reason = "no text to index after chunking"
            if not chunks:
                p.errors.append(FileError(source=doc.source, reason=reason))
                continue
            p.chunks_by_doc[doc.id] = chunks
            p.docs.append(doc)
        p.all_chunks = [c for d in p.docs for c in p.chunks_by_doc[d.id]]
        timings["chunk"] = time.perf_counter() - t
        if not p.docs:
            return p

        t = time.perf_counter()
        p.vectors = self.embedder.embed([c.text for c in p.all_chunks])
        timings["embed"] = time.perf_counter() - t

        if self.extractor is not None:
            t = time.perf_counter()
            p.extraction = self.extractor.extract(p.all_chunks, tenant=p.docs[0].tenant)
            merge_short_forms(p.all_chunks, p.extraction)
            add_subjects(p.docs, p.all_chunks, p.extraction)
            timings["extract"] = time.perf_counter() - t
            # entity names cost as much to embed as the chunks do on a CPU: only embed the ones without a vector
            new_entities = [e for e in p.extraction.entities if e.id not in self._embedded]
            if self._check_store and new_entities:
                t = time.perf_counter()
                have = self.vectors.existing_entity_ids([e.id for e in new_entities])
                new_entities = [e for e in new_entities if e.id not in have]
                timings["write"] = time.perf_counter() - t
            if new_entities:
                t = time.perf_counter()
                p.entity_vectors = self.embedder.embed([e.name for e in new_entities], batch_size=256)
                timings["embed"] += time.perf_counter() - t
            p.new_entities = new_entities
        return p

    def commit(self, group: Group, prepared: Prepared, run: IngestRun, progress: Progress | None) -> None:
        """Write a prepared group: pending documents, chunks, graph facts, vectors, then 'complete'; listeners
        are told; a failed write is rolled back; replaced versions go only after the new one is complete."""
        timings = run.timings
        for k, v in prepared.timings.items():
            timings[k] = timings.get(k, 0.0) + v
        for err in prepared.errors:
            run.errors.append(err)
            _tick(progress, "document")
        docs, all_chunks, extraction = prepared.docs, prepared.all_chunks, prepared.extraction
        new_entities = prepared.new_entities
        if not docs:
            return
        t = time.perf_counter()
        try:
            assert prepared.vectors is not None  # set whenever docs is
            self._write(docs, all_chunks, prepared.vectors, extraction, run)
            if self.extractor is not None and new_entities:
                self.vectors.upsert_entities(new_entities, prepared.entity_vectors)
                self._embedded.update(e.id for e in new_entities)
            entities_per_doc = _entities_per_doc(extraction, all_chunks)
            self.graph.complete_documents([{"id": d.id, "chunks": len(prepared.chunks_by_doc[d.id]),
                                            "entities": entities_per_doc.get(d.id, 0), "run_id": run.id} for d in docs])
            for listener in self.listeners:
                listener.documents_written(docs, all_chunks, extraction)
        except Exception as e:
            # remove what the group wrote now, so no document is left half-written and 'pending'; only when the
            # stores cannot even do that (down) does it stay pending for a re-run's repair
            left = self._roll_back(docs, new_entities)
            timings["write"] += time.perf_counter() - t
            log.error("write failed for %d documents: %s", len(docs), e)
            if not isinstance(e, KGFError):
                raise
            for d in docs:
                run.errors.append(FileError(source=d.source, reason=f"not stored: {e}" +
                                            (" (left half-written: a re-run repairs it)" if d.id in left else "")))
            for _ in docs:
                _tick(progress, "document")
            return
        for d in docs:
            for old in group.replaces.get(d.id, []):
                self.delete(old, refresh=False)
                run.documents_replaced += 1
        timings["write"] += time.perf_counter() - t
        run.documents_added += len(docs) - sum(1 for d in docs if d.id in group.replaces)
        run.chunks += len(all_chunks)
        run.entities += len(extraction.entities)
        run.relations += len(extraction.relations)
        run.quarantined += len(extraction.violations)
        for _ in docs:
            _tick(progress, "document")

    def _roll_back(self, docs: list[Document], new_entities: list) -> set[str]:
        """Delete what a failed group wrote; returns the ids it could not remove (they stay 'pending')."""
        self._embedded.difference_update(e.id for e in new_entities)  # their vectors may go with the orphans
        left: set[str] = set()
        for d in docs:
            try:
                self.delete(d.id, refresh=False)
            except Exception as e:  # the store is down: crash repair on the next run removes it
                log.error("could not roll back %s (%s): %s", d.id, d.source, e)
                left.add(d.id)
        return left

    def _write(self, docs: list[Document], chunks: list[Chunk], vectors: np.ndarray, extraction: Extraction,
               run: IngestRun) -> None:
        self.graph.begin_documents(docs)
        self.graph.write_chunks(chunks)
        if self.extractor is not None:
            self.graph.write_extraction(extraction.entities, extraction.mentions, extraction.relations)
        self.vectors.upsert_chunks(chunks, vectors, {d.id: d.tags for d in docs})

    # -- delete -----------------------------------------------------------------------------------
    def delete(self, doc_id: str, refresh: bool = True) -> DeleteReport:
        """Remove a document's vectors, chunks, mentions, relations supported only by it, and orphans."""
        self.ensure_ready()
        if self.graph.get_document(doc_id) is None:
            if not self.vectors.chunk_ids_for_document(doc_id):
                return DeleteReport(doc_id=doc_id, found=False)
        else:
            self.graph.set_status(doc_id, "deleting")
        chunks = self.vectors.delete_document(doc_id)
        orphans = self.graph.delete_document(doc_id)
        if orphans:
            self.vectors.delete_entities(orphans)
        for listener in self.listeners:
            listener.document_deleted(doc_id)
        if refresh:
            self.vectors.refresh()
        return DeleteReport(doc_id=doc_id, chunks=chunks, entities=len(orphans))


def _tick(progress: Progress | None, event: str, n: int = 1) -> None:
    if progress is not None:
        progress(event, n)


def _entities_per_doc(extraction: Extraction, chunks: list[Chunk]) -> dict[str, int]:
    doc_of = {c.id: c.doc_id for c in chunks}
    per: dict[str, set[str]] = defaultdict(set)
    for m in extraction.mentions:
        per[doc_of.get(m.chunk_id, "")].add(m.entity_id)
    return {k: len(v) for k, v in per.items()}
