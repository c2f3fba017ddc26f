"""The ports: small interfaces that adapters implement and subsystems depend on.

Subsystems import these and `types`, never a sibling's adapter; `bootstrap.py` picks adapters.
"""
from __future__ import annotations

from typing import Any, Iterable, Iterator, Protocol, Sequence, runtime_checkable

import numpy as np

from .types import Chunk, Completion, Document, Entity, Extraction, IngestRun, Mention, Relation


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors."""

    model_id: str

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray: ...


@runtime_checkable
class Extractor(Protocol):
    """Finds entities and relations in chunks, typed by the ontology."""

    name: str

    def extract(self, chunks: Sequence[Chunk], tenant: str = "default") -> Extraction: ...


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
class GraphStore(Protocol):
    """The property graph: Document, Chunk and Entity nodes with provenance on every fact."""

    def ensure_schema(self, entity_labels: Iterable[str]) -> None: ...

    def get_document(self, doc_id: str) -> dict[str, Any] | None: ...

    def documents_by_source(self, source: str, tenant: str) -> list[dict[str, Any]]: ...

    def list_documents(self, tenant: str | None = None, status: str | None = None) -> list[dict[str, Any]]: ...

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

    def export_chunks(self, tenant: str | None = None) -> list[dict[str, Any]]: ...

    def export_entities(self, tenant: str | None = None) -> list[dict[str, Any]]:
        """Rows of id, name, aliases, label and tenant (the retriever keeps seeds inside the caller's tenant)."""
        ...

    def export_mentions(self, tenant: str | None = None) -> list[dict[str, Any]]: ...

    def export_entity_edges(self, tenant: str | None = None) -> list[dict[str, Any]]: ...

    # delta reads: what one ingest or delete touched, so the retriever patches its adjacency instead of reloading
    def export_chunks_of_documents(self, doc_ids: Sequence[str]) -> list[dict[str, Any]]: ...

    def export_mentions_of_chunks(self, chunk_ids: Sequence[str]) -> list[dict[str, Any]]: ...

    def export_entities_by_id(self, entity_ids: Sequence[str]) -> list[dict[str, Any]]: ...

    def export_edges_of_entities(self, entity_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Every entity-entity edge with at least one end in entity_ids, each once."""
        ...

    def get_chunks(self, ids: Sequence[str]) -> list[dict[str, Any]]: ...

    def chunk_entities(self, ids: Sequence[str]) -> list[dict[str, Any]]: ...

    def neighbour_chunks(self, ids: Sequence[str]) -> list[dict[str, Any]]: ...

    def list_runs(self, limit: int = 20) -> list[dict[str, Any]]: ...

    def stats(self) -> dict[str, int]: ...

    # analysts' named reads, always inside one tenant
    def entity(self, entity_id: str, tenant: str) -> dict[str, Any] | None: ...

    def entity_neighbours(self, entity_id: str, tenant: str, limit: int = 50) -> list[dict[str, Any]]: ...

    def entity_mentions(self, entity_id: str, tenant: str, limit: int = 50) -> list[dict[str, Any]]: ...

    def schema_counts(self, tenant: str) -> tuple[dict[str, int], dict[str, int]]: ...

    def count_documents_from_file(self, tenant: str, path: str) -> int: ...

    def query(self, cypher: str, params: dict[str, Any] | None = None, read_only: bool = True) -> list[dict[str, Any]]: ...

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
