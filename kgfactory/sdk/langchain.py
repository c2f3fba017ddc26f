"""LangChain integration: `KGFactoryRetriever` (a BaseRetriever) and `kgfactory_tools` (ask, Cypher, SPARQL as
agent tools). Works over a `Client`, an `AsyncClient` or an in-process `KnowledgeBase`.

Needs langchain-core: `pip install 'kgfactory[langchain]'`. Importing kgfactory.sdk does not import this module.
"""
from __future__ import annotations

import json
from typing import Any, Optional

try:
    from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever
    from langchain_core.tools import BaseTool, StructuredTool
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError("kgfactory.sdk.langchain needs langchain-core: pip install 'kgfactory[langchain]'") from e

from pydantic import ConfigDict, Field

from .models import RetrievedChunk, SearchResult

__all__ = ["KGFactoryRetriever", "kgfactory_tools", "chunk_to_document"]


def chunk_to_document(chunk: RetrievedChunk, rank: int = 0) -> Document:
    """A retrieved chunk as a Document: the chunk text, with citation, score and entities in the metadata."""
    citation = {"doc_id": chunk.doc_id, "title": chunk.title, "source": chunk.source, "chunk_id": chunk.id,
                "start": chunk.start, "end": chunk.end, "page": chunk.page}
    return Document(page_content=chunk.text, id=chunk.id, metadata={
        "citation": citation, "score": chunk.score, "vector_score": chunk.vector_score,
        "graph_score": chunk.graph_score, "rank": rank,
        "entities": [e.model_dump() for e in chunk.entities],
        "doc_id": chunk.doc_id, "chunk_id": chunk.id, "title": chunk.title, "source": chunk.source,
        "tags": list(chunk.tags)})


def _documents(result: SearchResult) -> list[Document]:
    return [chunk_to_document(c, i) for i, c in enumerate(result.chunks)]


class KGFactoryRetriever(BaseRetriever):
    """Hybrid (vector + knowledge-graph) retrieval from kgfactory as LangChain Documents.

    `client`: a kgfactory.sdk.Client, AsyncClient or kgfactory.KnowledgeBase. With an AsyncClient, `ainvoke` is
    natively async and `invoke` is refused; with the others `ainvoke` runs the blocking call in a thread.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    client: Any
    mode: str = "hybrid"
    top_k: int = Field(default=5, ge=1, le=100)
    tags: Optional[list[str]] = None
    doc_ids: Optional[list[str]] = None

    def _kw(self) -> dict[str, Any]:
        return {"mode": self.mode, "top_k": self.top_k, "tags": self.tags, "doc_ids": self.doc_ids}

    def _is_async(self) -> bool:
        import inspect

        return inspect.iscoroutinefunction(getattr(self.client, "search", None))

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        if self._is_async():
            raise TypeError("KGFactoryRetriever over an AsyncClient: use ainvoke / astream")
        return _documents(self.client.search(query, **self._kw()))

    async def _aget_relevant_documents(self, query: str, *,
                                       run_manager: AsyncCallbackManagerForRetrieverRun) -> list[Document]:
        if self._is_async():
            return _documents(await self.client.search(query, **self._kw()))
        import asyncio

        return _documents(await asyncio.to_thread(self.client.search, query, **self._kw()))


def _answer_text(res) -> str:
    lines = [res.answer]
    if res.citations:
        lines.append("Sources:")
        lines += [f"[{n}] {c.title} ({c.source}, chars {c.start}-{c.end})" for n, c in enumerate(res.citations, 1)]
    return "\n".join(lines)


def kgfactory_tools(client: Any, *, top_k: int = 5, max_rows: int = 50) -> list[BaseTool]:
    """Tools for LangChain agents over a sync Client or a KnowledgeBase: `kgfactory_ask` (answer with sources),
    `kgfactory_cypher` (read-only Cypher, rows as JSON) and `kgfactory_sparql` (SELECT/ASK as JSON rows).
    Errors come back as the tool's text ("error: ...") so an agent can correct its query."""
    from .errors import KGFactoryError

    def ask(question: str) -> str:
        try:
            return _answer_text(client.ask(question, top_k=top_k))
        except KGFactoryError as e:
            return f"error: {e}"

    def cypher(query: str) -> str:
        try:
            r = client.cypher(query, max_rows=max_rows)
        except KGFactoryError as e:
            return f"error: {e}"
        return json.dumps({"rows": r.records(), "truncated": r.truncated}, default=str)

    def sparql(query: str) -> str:
        try:
            r = client.sparql(query)
        except KGFactoryError as e:
            return f"error: {e}"
        if r.kind == "ask":
            return json.dumps({"boolean": r.boolean})
        if r.kind == "graph":
            return r.graph or ""
        return json.dumps({"rows": r.rows()[:max_rows], "truncated": len(r.bindings) > max_rows})

    return [
        StructuredTool.from_function(ask, name="kgfactory_ask", description=(
            "Answer a question from the knowledge base (documents + knowledge graph). Returns the answer with "
            "numbered sources. Input: a natural-language question.")),
        StructuredTool.from_function(cypher, name="kgfactory_cypher", description=(
            "Run a read-only Cypher query over the knowledge graph. Nodes: (:Document {id,title,source}), "
            "(:Chunk {id,text}), (:Entity {id,name,label}) with ontology class labels such as :Person or "
            ":Organization; relationships HAS_CHUNK, MENTIONS, CO_OCCURS and ontology properties. Returns JSON rows.")),
        StructuredTool.from_function(sparql, name="kgfactory_sparql", description=(
            "Run a SPARQL SELECT/ASK query over the knowledge graph's RDF view. Returns JSON rows.")),
    ]
