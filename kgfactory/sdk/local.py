"""`KnowledgeBase`: the Client's methods in-process, for notebooks and scripts: a thin shell over the application
layer (kgfactory/service/knowledge.py), which owns every operation.

Same arguments, same typed results and the same error classes as `Client`: a core error becomes the SDK error a
server would have answered, through the API's own status table (service/status.py). It holds the data directory
(Milvus Lite allows one process per directory), so it refuses to open one that `kgf serve` holds and names the
server's URL to use with `Client` instead. Needs the `[server]` extra.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from ..errors import KGFError
from ..service import limits as L
from .errors import APIError, KGFactoryError, error_for
from .models import (AskResult, CypherResult, DeleteResult, DocumentDetail, DocumentInfo, EntityDetail,
                     IngestProgress, IngestResult, ReindexResult, SearchResult, SparqlResult)
from .models import EntityGraph, EntitySearchResult, OntologyClasses, QuarantineList


def sdk_error(e: KGFError) -> KGFactoryError:
    """The SDK error for a core error: the class and status a server would have answered with."""
    if isinstance(e, KGFactoryError):
        return e
    from ..service.status import status_of

    status, kind = status_of(e)
    return error_for(status, {"error": {"type": kind, "message": str(e)}})


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except KGFactoryError:
        raise
    except KGFError as e:
        raise sdk_error(e) from e


class KnowledgeBase:
    """A knowledge base opened in this process. Use as a context manager, or call close()."""

    def __init__(self, services: Any, tenant: str | None = None, own: bool = True):
        from ..service.knowledge import KnowledgeService

        self.service = KnowledgeService(services, tenant)
        self.services = services
        self.tenant = self.service.tenant
        self._own = own

    @classmethod
    def open(cls, path_or_settings: Any = None, *, tenant: str | None = None, **settings: Any) -> "KnowledgeBase":
        """Open a data directory (a path), or a `kgfactory.settings.Settings`; nothing given: $KGF_DATA_DIR or
        ./kgf-data. Extra keyword arguments are settings (e.g. `spacy_model="blank"`)."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        try:  # every server part open() needs, here: a light install fails with the hint, not a bare import error
            from ..api.serverfile import running_server
            from ..bootstrap import build_services
            from ..service.knowledge import KnowledgeService  # noqa: F401  (__init__ needs it)
            from ..settings import Settings
        except ImportError as e:  # a light install: only the HTTP client is there
            raise KGFactoryError(f"KnowledgeBase needs the server parts ({e.name} is missing): "
                                 "pip install 'kgfactory[server]'; or use kgfactory.sdk.Client with a server") from e
        if isinstance(path_or_settings, Settings):
            s = path_or_settings.model_copy(update=settings) if settings else path_or_settings
        elif path_or_settings is not None:
            s = Settings(data_dir=Path(path_or_settings), **settings)
        else:
            s = Settings(**settings)
        info = running_server(s.data_dir)
        if info:
            raise KGFactoryError(f"`kgf serve` (pid {info['pid']}) holds {s.data_dir}: use "
                                 f"kgfactory.sdk.Client({info['url']!r}) instead, or stop the server")
        return cls(build_services(s), tenant=tenant)

    def close(self) -> None:
        if self._own:
            self.services.close()

    def __enter__(self) -> "KnowledgeBase":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- question answering -----------------------------------------------------------------------------
    def ask(self, question: str, *, mode: str = L.DEFAULT_MODE, top_k: int = L.DEFAULT_TOP_K,
            tags: Sequence[str] | None = None, doc_ids: Sequence[str] | None = None) -> AskResult:
        with _translated():
            return self.service.ask(question, mode=mode, top_k=top_k, tags=tags, doc_ids=doc_ids)

    def ask_stream(self, question: str, *, mode: str = L.DEFAULT_MODE, top_k: int = L.DEFAULT_TOP_K,
                   tags: Sequence[str] | None = None, doc_ids: Sequence[str] | None = None) -> Iterator[str | AskResult]:
        """Answer text pieces (str), then the final AskResult."""
        with _translated():
            stream = self.service.ask_stream(question, mode=mode, top_k=top_k, tags=tags, doc_ids=doc_ids)
        return _stream(stream)

    def search(self, question: str, *, mode: str = L.DEFAULT_MODE, top_k: int = L.DEFAULT_TOP_K,
               tags: Sequence[str] | None = None, doc_ids: Sequence[str] | None = None) -> SearchResult:
        with _translated():
            return self.service.search(question, mode=mode, top_k=top_k, tags=tags, doc_ids=doc_ids)

    # -- documents and ingest ---------------------------------------------------------------------------
    def ingest(self, paths: Any = None, *, texts: Any = None, files: Any = None, tags: Sequence[str] | str = (),
               wait: bool = True, progress: Callable[[IngestProgress], None] | None = None,
               poll_interval: float = 0.5, timeout: float | None = None, engine: str = "local",
               ray_address: str | None = None) -> IngestResult:
        """As Client.ingest. Files are read in place; texts and file objects are first written under
        `<data_dir>/uploads/<tenant>/` (as the server does). In-process ingest is synchronous: `wait`,
        `poll_interval` and `timeout` are accepted for parity with Client and ignored. `engine="ray"` runs the
        parse/chunk/embed/spaCy stages on Ray (`ray_address`, else KGF_RAY_ADDRESS, else a local Ray): the
        [ray] extra and server stores (KGF_MILVUS_URI, and Neo4j or KGF_FALKORDB_URL)."""
        with _translated():
            return self.service.ingest(paths, texts=texts, files=files, tags=tags, progress=progress, engine=engine,
                                       ray_address=ray_address)

    def documents(self, status: str | None = None) -> list[DocumentInfo]:
        with _translated():
            return self.service.documents(status)

    def document(self, doc_id: str) -> DocumentDetail:
        with _translated():
            return self.service.document(doc_id)

    def delete(self, doc_id: str) -> DeleteResult:
        with _translated():
            return self.service.delete(doc_id)

    def reindex(self, progress: Any = None) -> ReindexResult:
        """Re-embed every stored chunk and entity with the configured embedder (every tenant; no re-extraction).
        `progress(kind, done, total)` is called after each batch."""
        with _translated():
            return self.service.reindex(progress)

    # -- analysts ---------------------------------------------------------------------------------------
    def cypher(self, query: str, params: dict[str, Any] | None = None, *, timeout_ms: int | None = None,
               max_rows: int | None = None) -> CypherResult:
        with _translated():
            return self.service.cypher(query, params, timeout_ms=timeout_ms, max_rows=max_rows)

    def sparql(self, query: str) -> SparqlResult:
        with _translated():
            return self.service.sparql(query)

    def ontology(self) -> dict[str, Any]:
        with _translated():
            return self.service.ontology()

    def entity(self, entity_id: str, *, limit: int = L.ENTITY_NEIGHBOURS_DEFAULT) -> EntityDetail:
        with _translated():
            return self.service.entity(entity_id, limit=limit)

    def entity_search(self, q: str, *, limit: int = L.ENTITY_SEARCH_DEFAULT, label: str | None = None) -> EntitySearchResult:
        with _translated():
            return self.service.entity_search(q, limit=limit, label=label)

    def entity_graph(self, entity_id: str, *, depth: int = 1, limit: int = L.GRAPH_NODES_DEFAULT,
                     types: Sequence[str] | str | None = None, classes: Sequence[str] | str | None = None) -> EntityGraph:
        with _translated():
            return self.service.entity_graph(entity_id, depth=depth, limit=limit, types=types, classes=classes)

    def ontology_classes(self) -> OntologyClasses:
        with _translated():
            return self.service.ontology_classes()

    def quarantine(self, *, limit: int = L.QUARANTINE_DEFAULT) -> QuarantineList:
        with _translated():
            return self.service.quarantine(limit=limit)

    def graph_schema(self) -> dict[str, Any]:
        with _translated():
            return self.service.graph_schema().model_dump()


def _stream(items: Iterator[str | AskResult]) -> Iterator[str | AskResult]:
    with _translated():
        yield from items


__all__ = ["KnowledgeBase", "sdk_error", "APIError"]
