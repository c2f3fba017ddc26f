"""The ports: small interfaces that adapters implement and subsystems depend on.

Subsystems import these and `types`, never a sibling's adapter; `bootstrap.py` picks adapters.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Protocol, Sequence, runtime_checkable

import numpy as np

from .rows import (ChangeRow, ChunkEntity, ChunkLinks, ChunkRef, ChunkRow, ChunkText, DocumentRow, EdgeRow,
                   EntityClassRow, EntityMention, EntityRecord, EntityRelation, EntityRow, MentionRow, Neighbour,
                   NeighbourhoodEdge, NodeRecord, RelationRecord, TypedRelationRow)
from .types import Answer, Chunk, Completion, Document, Entity, Extraction, IngestRun, Mention, Relation

if TYPE_CHECKING:  # retrieval.models is plain pydantic, but ports must not import a subsystem at run time
    from .retrieval.models import RetrievalResult


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors."""

    @property
    def model_id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray: ...


@runtime_checkable
class Extractor(Protocol):
    """Finds entities and relations in chunks, typed by the ontology."""

    @property
    def name(self) -> str: ...

    def extract(self, chunks: Sequence[Chunk], tenant: str = "default") -> Extraction: ...


@runtime_checkable
class Warmable(Protocol):
    """An adapter with a slow first use (a model to load): the API's lifespan calls warm_up() once at start."""

    def warm_up(self) -> None: ...


@runtime_checkable
class Releasable(Protocol):
    """An adapter holding resources for one ingest run (spaCy worker processes): the pipeline calls release()
    when the run ends, however it ends."""

    def release(self) -> None: ...


@runtime_checkable
class ExtractorRun(Protocol):
    """An extractor that reports per run (the LLM extractor: model, prompt version, fallbacks, token counts).
    The pipeline calls start_run() before a run and copies run_report() onto the IngestRun after it."""

    def start_run(self) -> None: ...

    def run_report(self) -> dict[str, Any]: ...


@runtime_checkable
class VectorStore(Protocol):
    """Chunk and entity vectors with metadata filters. `filters` keys: doc_id, tenant, tag."""

    def ensure(self, dim: int) -> None: ...

    def refresh(self) -> None:
        """Make recent writes searchable at full speed (flush and reload where the engine needs it)."""
        ...

    def upsert_chunks(self, chunks: Sequence[Chunk], vectors: np.ndarray,
                      tags_by_doc: dict[str, Sequence[str]] | None = None) -> None: ...

    def upsert_entities(self, entities: Sequence[Entity], vectors: np.ndarray) -> None: ...

    def delete_document(self, doc_id: str) -> int: ...

    def delete_entities(self, entity_ids: Sequence[str]) -> int: ...

    def search_chunks(self, vector: np.ndarray, top_k: int, filters: dict[str, Any] | None = None) -> list[tuple[str, float]]: ...

    def search_entities(self, vector: np.ndarray, top_k: int, filters: dict[str, Any] | None = None) -> list[tuple[str, float]]: ...

    def count(self, kind: str, exact: bool = False) -> int:
        """Stored vectors of `kind` ('chunks'/'entities'); `exact` counts distinct ids (slower, for stats)."""
        ...

    def existing_entity_ids(self, ids: Sequence[str]) -> set[str]:
        """Which of these entity ids already have a vector (so ingest need not embed them again)."""
        ...

    def chunk_ids_for_document(self, doc_id: str) -> list[str]: ...

    def export_vectors(self, kind: str) -> tuple[list[str], np.ndarray, list[str]]:
        """Every stored (id, vector, tenant) of `kind` ('chunks' or 'entities'), for the exact resident index."""
        ...

    def get_vectors(self, kind: str, ids: Sequence[str]) -> tuple[list[str], np.ndarray, list[str]]:
        """(id, vector, tenant) for those of `ids` that are stored: the exact index's incremental refresh."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class BatchVectorSearch(Protocol):
    """A vector store that searches many query vectors in one call (one round trip instead of one per query)."""

    def search_chunks_many(self, vectors: np.ndarray, top_k: int,
                           filters: dict[str, Any] | None = None) -> list[list[tuple[str, float]]]: ...

    def search_entities_many(self, vectors: np.ndarray, top_k: int,
                             filters: dict[str, Any] | None = None) -> list[list[tuple[str, float]]]: ...


@runtime_checkable
class VectorReindex(Protocol):
    """A vector store that records the embedder that filled it (refusing another's vectors) and can be rebuilt
    in new collections swapped in at the end (`kgf reindex`)."""

    def bind_embedding(self, identity: Callable[[], dict[str, Any]] | None) -> None: ...

    def embedding_record(self) -> dict[str, Any] | None: ...

    def export_rows(self, kind: str, batch_size: int = 1000) -> Iterator[list[dict[str, Any]]]: ...

    def start_rebuild(self, identity: dict[str, Any]) -> None: ...

    def write_rebuild(self, kind: str, rows: list[dict[str, Any]]) -> None: ...

    def finish_rebuild(self, identity: dict[str, Any]) -> None: ...

    def abort_rebuild(self) -> None: ...


@runtime_checkable
class GraphStore(Protocol):
    """The property graph: Document, Chunk and Entity nodes with provenance on every fact. Reads return the
    typed rows of rows.py; `query` (plain dict rows) is for analysts' read-only Cypher only."""

    def ensure_schema(self, entity_labels: Iterable[str] = ()) -> None: ...

    def get_document(self, doc_id: str) -> DocumentRow | None: ...

    def documents_by_source(self, source: str, tenant: str) -> list[DocumentRow]: ...

    def list_documents(self, tenant: str | None = None, status: str | None = None) -> list[DocumentRow]: ...

    def begin_documents(self, docs: Sequence[Document]) -> None:
        """Write Document nodes with status 'pending', so a crash leaves a visible marker a re-run repairs."""
        ...

    def write_chunks(self, chunks: Sequence[Chunk]) -> None: ...

    def write_extraction(self, entities: Sequence[Entity], mentions: Sequence[Mention], relations: Sequence[Relation]) -> None: ...

    def complete_documents(self, rows: Sequence[dict[str, Any]]) -> None:
        """rows: {id, chunks, entities, run_id}. The last write of an ingest: status becomes 'complete'."""
        ...

    def set_status(self, doc_id: str, status: str) -> None:
        """'deleting' marks a delete in progress, so a crash mid-delete is never read as complete."""
        ...

    def chunk_ids(self, doc_id: str) -> list[str]: ...

    def delete_document(self, doc_id: str) -> list[str]:
        """Remove the document, its chunks, mentions, relations supported only by it, and orphaned
        entities. Returns the ids of the entities it removed (so vectors can follow)."""
        ...

    def record_run(self, run: IngestRun) -> None: ...

    # reads for the retriever: exports for its in-memory adjacency, and lookups for context enrichment
    def revision(self) -> int:
        """A counter bumped by every completed write and delete; caches reload when it moves."""
        ...

    def tenant_revision(self, tenant: str) -> tuple[int, int]:
        """(this tenant's revision, the revision of writes no tenant owns): what a cache of one tenant's data
        must match."""
        ...

    # the change log: each move of the revision with what moved it, so other processes patch instead of reloading
    def append_change(self, kind: str, doc_ids: Sequence[str], tenants: Iterable[str | None] = ()) -> int:
        """Move the revision and log (revision, kind, doc ids, tenants, time) in one statement; the new revision.
        complete_documents ('write'), delete_document ('delete') and bump_revision ('all') call it."""
        ...

    def changes_since(self, revision: int) -> list[ChangeRow] | None:
        """The changes after `revision` up to now, in order; None when the log no longer reaches back that far."""
        ...

    def export_chunks(self, tenant: str | None = None) -> list[ChunkRef]: ...

    def export_entities(self, tenant: str | None = None) -> list[EntityRow]:
        """The retriever keeps seeds inside the caller's tenant by the rows' tenant."""
        ...

    def export_mentions(self, tenant: str | None = None) -> list[MentionRow]: ...

    def export_entity_edges(self, tenant: str | None = None) -> list[EdgeRow]: ...

    # delta reads: what one ingest or delete touched, so the retriever patches its adjacency instead of reloading
    def export_chunks_of_documents(self, doc_ids: Sequence[str]) -> list[ChunkRef]: ...

    def export_mentions_of_chunks(self, chunk_ids: Sequence[str]) -> list[MentionRow]: ...

    def export_entities_by_id(self, entity_ids: Sequence[str]) -> list[EntityRow]: ...

    def export_edges_of_entities(self, entity_ids: Sequence[str]) -> list[EdgeRow]:
        """Every entity-entity edge with at least one end in entity_ids, each once."""
        ...

    def get_chunks(self, ids: Sequence[str]) -> list[ChunkRow]: ...

    def chunk_entities(self, ids: Sequence[str]) -> list[ChunkEntity]: ...

    def neighbour_chunks(self, ids: Sequence[str]) -> list[ChunkLinks]: ...

    def list_runs(self, limit: int = 20) -> list[IngestRun]: ...

    def stats(self) -> dict[str, int]: ...

    # analysts' named reads, always inside one tenant
    def entity(self, entity_id: str, tenant: str) -> EntityRecord | None: ...

    def entity_neighbours(self, entity_id: str, tenant: str, limit: int = 50) -> list[Neighbour]: ...

    def entity_mentions(self, entity_id: str, tenant: str, limit: int = 50) -> list[EntityMention]: ...

    def schema_counts(self, tenant: str) -> tuple[dict[str, int], dict[str, int]]: ...

    def count_documents_from_file(self, tenant: str, path: str) -> int: ...

    # the explorer (service/explorer.py): typed relations with provenance, a neighbourhood walk, class counts
    def entity_relations(self, entity_id: str, tenant: str, limit: int = 200) -> list[EntityRelation]: ...

    def neighbourhood_edges(self, entity_ids: Sequence[str], tenant: str, types: Sequence[str] | None = None,
                            classes: Sequence[str] | None = None, limit: int = 1000) -> list[NeighbourhoodEdge]: ...

    def chunk_documents(self, chunk_ids: Sequence[str], tenant: str) -> dict[str, str]: ...

    def class_counts(self, tenant: str) -> dict[str, int]: ...

    # the semantic layer (ontology/): the RDF view's reads (every tenant), an ontology change, graph config
    def export_chunk_texts(self) -> list[ChunkText]: ...

    def export_entity_classes(self) -> list[EntityClassRow]: ...

    def export_typed_relations(self) -> list[TypedRelationRow]: ...

    def delete_relations(self, rtype: str, pairs: Sequence[tuple[str, str]]) -> None: ...

    def relabel_entities(self, ids: Sequence[str], old_labels: Sequence[str], new_labels: Sequence[str],
                         label: str) -> None: ...

    def bump_revision(self) -> None:
        """Move the revision for a write no tenant owns (an ontology change, an RDF import): every cache reloads."""
        ...

    def write_graph_config(self, config: dict[str, Any], prefixes: dict[str, str]) -> None: ...

    def graph_config(self) -> tuple[dict[str, Any], dict[str, Any]]: ...

    # `kgf migrate`: page through one engine, write into another as stored
    def page_nodes(self, label: str, after: str, limit: int) -> list[NodeRecord]: ...

    def page_node_ids(self, label: str, after: str, limit: int) -> list[str]: ...

    def import_nodes(self, label: str, nodes: Sequence[NodeRecord]) -> None: ...

    def next_links(self, chunk_ids: Sequence[str]) -> list[tuple[str, str]]: ...

    def link_next(self, pairs: Sequence[tuple[str, str]]) -> None: ...

    def import_mentions(self, rows: Sequence[MentionRow]) -> None: ...

    def relations_of(self, entity_ids: Sequence[str]) -> list[RelationRecord]: ...

    def import_relations(self, rows: Sequence[RelationRecord]) -> None: ...

    def set_revision(self, value: int) -> None: ...

    def query(self, cypher: str, params: dict[str, Any] | None = None, read_only: bool = True) -> list[dict[str, Any]]:
        """Analysts' read-only Cypher (write clauses refused); nothing in kgfactory writes through it."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class LLM(Protocol):
    """A chat model. `tenant` is charged for the tokens (and refused with LLMBudgetError when its budget is spent);
    failures raise LLMError, LLMUnavailableError when the endpoint is down or the breaker is open."""

    @property
    def model(self) -> str: ...

    def complete(self, messages: list[dict[str, str]], *, tenant: str = "default", **kwargs: Any) -> Completion: ...

    def stream(self, messages: list[dict[str, str]], *, tenant: str = "default",
               **kwargs: Any) -> Iterator[str | Completion]:
        """Token strings as they arrive, then the whole Completion (with usage) as the last item."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class Answerer(Protocol):
    """Writes the answer to a question from its retrieval result; `tenant` is charged for any LLM tokens.
    `instructions` (a chat's system messages) reach a writing model as the operator's; quoting ignores them."""

    def answer(self, result: RetrievalResult, *, tenant: str | None = None,
               instructions: str | None = None) -> Answer: ...


@runtime_checkable
class StreamingAnswerer(Answerer, Protocol):
    """An answerer that can stream: text pieces as they are written, then the whole Answer as the last item."""

    def stream(self, result: RetrievalResult, *, tenant: str | None = None,
               instructions: str | None = None) -> Iterator[str | Answer]: ...


@runtime_checkable
class IngestListener(Protocol):
    """Told by the ingest pipeline after each group of documents is complete and after each delete (the
    retriever's index, the RDF view, the quarantine). A listener must not fail the ingest."""

    def documents_written(self, docs: Sequence[Document], chunks: Sequence[Chunk], extraction: Extraction) -> None: ...

    def document_deleted(self, doc_id: str) -> None: ...


@runtime_checkable
class CypherViews(Protocol):
    """Analysts' read-only Cypher, run on a copy of one tenant's part of the graph (graph/falkordb_views.py).
    Raises CypherRefusedError/GraphStoreError for a write, CypherQueryError for a query the engine refused,
    CypherTimeout past `timeout_ms`, ViewBuildError/GraphUnavailableError when the engine is at fault."""

    def run(self, cypher: str, params: dict[str, Any] | None, tenant: str, timeout_ms: int,
            max_rows: int) -> tuple[list[str], list[list[Any]], bool]:
        """(columns, rows, truncated)."""
        ...

    def drop(self, tenant: str) -> None: ...

    def close(self) -> None: ...
