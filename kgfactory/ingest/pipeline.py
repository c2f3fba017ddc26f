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
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from ..errors import EmbeddingError, ExtractionError, InvalidInputError, KGFError
from ..ports import Embedder, Extractor, ExtractorRun, GraphStore, IngestListener, Releasable, VectorStore
from ..types import ALL_TENANTS, Chunk, Document, Entity, Extraction, FileError, IngestRun, utcnow
from .chunker import Chunker
from .parsers import iter_documents
from .aliases import merge_short_forms
from .stages import StageStats, run_threaded
from .subjects import add_subjects

log = logging.getLogger(__name__)

PIPELINE_VERSION = "1"
# run.timings: seconds per fine stage; "embed" and "write" are kept as their sums for readers of older runs.
# With overlapping stages (threaded mode) each stage's seconds are its own busy time, so they add up to more
# than the run's wall time.
STAGES = ("parse", "chunk", "embed_chunks", "extract", "embed_entities", "write_graph", "write_vectors")
TOTALS = {"embed": ("embed_chunks", "embed_entities"), "write": ("write_graph", "write_vectors")}
MODES = ("serial", "threaded")
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
                 extractor_run: ExtractorRun | None = None, mode: str = "threaded", inflight_groups: int = 3,
                 run_resources: Sequence[Releasable] = ()):
        self.graph, self.vectors, self.embedder, self.extractor = graph, vectors, embedder, extractor
        # told after each group is complete and after each delete (the retriever, the RDF view, the quarantine)
        self.listeners: list[IngestListener] = list(listeners)
        # the extractor's per-run report (an LLM extractor: model, prompt version, fallbacks), when it has one
        self.extractor_run = extractor_run
        # what holds resources for one run (the spaCy extractor's worker processes): released when a run ends
        self.run_resources: list[Releasable] = list(run_resources)
        self.chunker = chunker
        self.ontology_version = ontology_version
        self.group_size = group_size
        self.max_file_bytes, self.max_record_chars = max_file_bytes, max_record_chars
        self._ready = False
        if mode not in MODES:
            raise InvalidInputError(f"ingest pipeline mode {mode!r}: use {' or '.join(MODES)}")
        # threaded: parse/admit/write, extraction and embedding of different groups overlap, at most
        # `inflight_groups` groups between admission and written; serial: one group at a time (tests, debugging)
        self.mode, self.inflight_groups = mode, max(1, inflight_groups)
        self._admitted: set[str] = set()  # doc ids admitted in this run
        self.stage_stats: StageStats | None = None  # the last threaded run's (busy seconds, peak in flight)
        self._lost: set[str] = set()  # entity ids whose claimed vectors went with a rolled-back group
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
        self._embedded, self._lost = set(), set()
        self._check_store = self.extractor is not None and self.vectors.count("entities") > 0
        self._admitted = set()
        groups = self._groups(paths, tenant, tags, metadata, run, progress, items)
        try:
            if self.mode == "threaded":
                run_threaded(self, groups, run, progress, depth=self.inflight_groups)
            else:
                for group in groups:
                    self._process(group, run, progress)
        finally:
            for r in self.run_resources:
                r.release()
        t = time.perf_counter()
        self.vectors.refresh()
        run.timings["write_vectors"] += time.perf_counter() - t
        run.finished_at = utcnow()
        if self.extractor_run is not None:
            for k, v in self.extractor_run.run_report().items():
                setattr(run, k, v)
        _add_totals(run.timings)
        run.timings = {k: round(v, 4) for k, v in run.timings.items()}
        self.graph.record_run(run)
        return run

    def _groups(self, paths: Sequence[str], tenant: str, tags: Sequence[str], metadata: dict[str, Any] | None,
                run: IngestRun, progress: Progress | None,
                items: Iterable[Document | FileError] | None = None) -> Iterator[Group]:
        """Parse and admit documents, yielding full groups (and the last partial one); parse time is counted."""
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
                    yield group
                    group = Group()
            t = time.perf_counter()
        if group.docs:
            yield group

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
        if doc.id in self._admitted:  # in an earlier group of this run, not yet written when stages overlap
            run.documents_unchanged += 1
            _tick(progress, "document")
            return
        self._admitted.add(doc.id)
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
        A stage that fails raises its error (EmbeddingError, ExtractionError) naming the failing document.
        """
        return self.prepare_vectors(self.prepare_text(docs))

    def prepare_text(self, docs: list[Document]) -> Prepared:
        """The text half of prepare: chunks and the extraction (spaCy/LLM, short forms, subjects)."""
        p = Prepared()
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
        p.timings["chunk"] = time.perf_counter() - t
        if p.docs and self.extractor is not None:
            t = time.perf_counter()
            try:
                p.extraction = self._extract(p.docs, p.all_chunks)
            except Exception as e:
                raise _blame("extract", p, e, lambda d, cs: self._extract([d], cs)) from e
            p.timings["extract"] = time.perf_counter() - t
        return p

    def _extract(self, docs: list[Document], chunks: list[Chunk]) -> Extraction:
        assert self.extractor is not None
        extraction = self.extractor.extract(chunks, tenant=docs[0].tenant)
        merge_short_forms(chunks, extraction)
        add_subjects(docs, chunks, extraction)
        return extraction

    def prepare_vectors(self, p: Prepared) -> Prepared:
        """The vector half of prepare: chunk vectors, and vectors for entity names not embedded before."""
        if not p.docs:
            return p
        t = time.perf_counter()
        try:
            p.vectors = self.embedder.embed([c.text for c in p.all_chunks])
        except Exception as e:
            raise _blame("embed", p, e, lambda d, cs: self.embedder.embed([c.text for c in cs])) from e
        p.timings["embed_chunks"] = time.perf_counter() - t
        if self.extractor is None:
            return p
        # entity names cost as much to embed as the chunks do on a CPU: only embed the ones without a vector
        # (ids are hashes of the tenant and the normalised name, so this is a cache by normalised name)
        new_entities = [e for e in p.extraction.entities if e.id not in self._embedded]
        if self._check_store and new_entities:
            t = time.perf_counter()
            have = self.vectors.existing_entity_ids([e.id for e in new_entities])
            new_entities = [e for e in new_entities if e.id not in have]
            p.timings["write_vectors"] = time.perf_counter() - t
        if new_entities:
            t = time.perf_counter()
            try:
                p.entity_vectors = self.embedder.embed([e.name for e in new_entities], batch_size=256)
            except Exception as e:
                raise _blame("embed", p, e, lambda d, cs: self.embedder.embed(
                    _names_in(new_entities, p.extraction, cs), batch_size=256)) from e
            p.timings["embed_entities"] = time.perf_counter() - t
            # claimed now, so a later group prepared before this one is written does not embed them again;
            # a roll-back gives them up (see _roll_back and commit)
            self._embedded.update(e.id for e in new_entities)
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
        if not docs:
            return
        self._reclaim(prepared, timings)
        new_entities = prepared.new_entities
        t = time.perf_counter()
        clock = "write_graph"
        try:
            self.graph.begin_documents(docs)
            self.graph.write_chunks(all_chunks)
            if self.extractor is not None:
                self.graph.write_extraction(extraction.entities, extraction.mentions, extraction.relations)
            t = _lap(timings, clock, t)
            clock = "write_vectors"
            assert prepared.vectors is not None  # set whenever docs is
            self.vectors.upsert_chunks(all_chunks, prepared.vectors, {d.id: d.tags for d in docs})
            if self.extractor is not None and new_entities and prepared.entity_vectors is not None:
                self.vectors.upsert_entities(new_entities, prepared.entity_vectors)
            t = _lap(timings, clock, t)
            clock = "write_graph"
            entities_per_doc = _entities_per_doc(extraction, all_chunks)
            self.graph.complete_documents([{"id": d.id, "chunks": len(prepared.chunks_by_doc[d.id]),
                                            "entities": entities_per_doc.get(d.id, 0), "run_id": run.id} for d in docs])
            for listener in self.listeners:
                listener.documents_written(docs, all_chunks, extraction)
        except Exception as e:
            # remove what the group wrote now, so no document is left half-written and 'pending'; only when the
            # stores cannot even do that (down) does it stay pending for a re-run's repair
            left = self._roll_back(docs, new_entities)
            _lap(timings, clock, t)
            log.error("write failed for %d documents: %s", len(docs), e)
            if not isinstance(e, KGFError):
                raise
            for d in docs:
                run.errors.append(FileError(source=d.source, reason=f"not stored: {e}" +
                                            (" (left half-written: a re-run repairs it)" if d.id in left else "")))
            for _ in docs:
                _tick(progress, "document")
            return
        self._lost.difference_update(e.id for e in new_entities)
        for d in docs:
            for old in group.replaces.get(d.id, []):
                self.delete(old, refresh=False)
                run.documents_replaced += 1
        _lap(timings, "write_graph", t)
        run.documents_added += len(docs) - sum(1 for d in docs if d.id in group.replaces)
        run.chunks += len(all_chunks)
        run.entities += len(extraction.entities)
        run.relations += len(extraction.relations)
        run.quarantined += len(extraction.violations)
        for _ in docs:
            _tick(progress, "document")

    def _reclaim(self, p: Prepared, timings: dict[str, float]) -> None:
        """Entities this group skipped because an earlier group had claimed them, when that group was rolled
        back since (stages overlap): embed them here, so no entity of a written group lacks a vector."""
        if not self._lost or self.extractor is None:
            return
        have = {e.id for e in p.new_entities}
        lost = [e for e in p.extraction.entities if e.id in self._lost and e.id not in have]
        if not lost:
            return
        t = time.perf_counter()
        vecs = self.embedder.embed([e.name for e in lost], batch_size=256)
        p.entity_vectors = vecs if p.entity_vectors is None else np.concatenate([p.entity_vectors, vecs])
        p.new_entities = [*p.new_entities, *lost]
        self._embedded.update(e.id for e in lost)
        _lap(timings, "embed_entities", t)

    def _roll_back(self, docs: list[Document], new_entities: list) -> set[str]:
        """Delete what a failed group wrote; returns the ids it could not remove (they stay 'pending')."""
        ids = {e.id for e in new_entities}
        self._embedded.difference_update(ids)  # their vectors may go with the orphans
        self._lost.update(ids)
        self._admitted.difference_update(d.id for d in docs)  # a later copy of the record is ingested again
        left: set[str] = set()
        for d in docs:
            try:
                self.delete(d.id, refresh=False)
            except Exception as e:  # the store is down: crash repair on the next run removes it
                log.error("could not roll back %s (%s): %s", d.id, d.source, e)
                left.add(d.id)
        return left

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


def _lap(timings: dict[str, float], stage: str, t: float) -> float:
    now = time.perf_counter()
    timings[stage] = timings.get(stage, 0.0) + now - t
    return now


def _add_totals(timings: dict[str, float]) -> None:
    for total, parts in TOTALS.items():
        timings[total] = sum(timings.get(p, 0.0) for p in parts)


def _blame(stage: str, p: Prepared, error: Exception, retry: Callable[[Document, list[Chunk]], Any]) -> KGFError:
    """The error of a failed stage, naming the document that fails it: each document of the group is tried
    alone (only on this failure path); the first that fails is named, else the group's first document."""
    culprit, cause = (p.docs[0] if p.docs else None), error
    if len(p.docs) > 1:
        for doc in p.docs:
            try:
                retry(doc, p.chunks_by_doc[doc.id])
            except Exception as e:
                culprit, cause = doc, e
                break
    cls = EmbeddingError if stage == "embed" else ExtractionError
    where = f"{culprit.source} (document {culprit.id})" if culprit else "an empty group"
    return cls(f"{stage} failed on {where}: {cause}")


def _names_in(entities: list[Entity], extraction: Extraction, chunks: list[Chunk]) -> list[str]:
    ids = {c.id for c in chunks}
    mentioned = {m.entity_id for m in extraction.mentions if m.chunk_id in ids}
    return [e.name for e in entities if e.id in mentioned]


def _tick(progress: Progress | None, event: str, n: int = 1) -> None:
    if progress is not None:
        progress(event, n)


def _entities_per_doc(extraction: Extraction, chunks: list[Chunk]) -> dict[str, int]:
    doc_of = {c.id: c.doc_id for c in chunks}
    per: dict[str, set[str]] = defaultdict(set)
    for m in extraction.mentions:
        per[doc_of.get(m.chunk_id, "")].add(m.entity_id)
    return {k: len(v) for k, v in per.items()}
