"""Request and response bodies (with the examples the OpenAPI docs show)."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from ..retrieval.models import EntityRef, EvidencePath, RetrievedChunk
from ..types import Citation, Grounding


class QueryFilters(BaseModel):
    """Narrow the search. The tenant is never a filter: it comes from the API key."""

    model_config = ConfigDict(extra="forbid")
    tag: list[str] | None = Field(default=None, max_length=50, description="Only documents with one of these tags.")
    doc_id: list[str] | None = Field(default=None, max_length=500, description="Only these documents.")


class QueryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"question": "Who founded Helios Robotics?", "mode": "hybrid", "top_k": 5}]})
    question: str = Field(min_length=1, max_length=2000)
    mode: Literal["vector", "graph", "hybrid"] = "hybrid"
    top_k: int = Field(default=5, ge=1, le=100)
    filters: QueryFilters | None = None
    stream: bool = Field(default=False, description="Stream the answer as server-sent events.")


class SearchRequest(BaseModel):
    """/v1/query's body without `stream`; `query` is accepted as another name for `question`."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, json_schema_extra={"examples": [
        {"question": "Who founded Helios Robotics?", "mode": "hybrid", "top_k": 5}]})
    question: str = Field(min_length=1, max_length=2000, validation_alias=AliasChoices("question", "query"))
    mode: Literal["vector", "graph", "hybrid"] = "hybrid"
    top_k: int = Field(default=5, ge=1, le=100)
    filters: QueryFilters | None = None


class SearchResponse(BaseModel):
    """Retrieval only: each chunk carries its citation fields (doc_id, title, source, id, start/end, page),
    score, vector/graph scores and entities; no answer is generated."""

    question: str
    mode: Literal["vector", "graph", "hybrid"]
    top_k: int
    chunks: list[RetrievedChunk]
    seeds: list[EntityRef]
    evidence: list[EvidencePath]
    timings: dict[str, float]
    empty_store: bool = False


class QueryResponse(BaseModel):
    question: str
    answer: str
    kind: Literal["extractive", "generated", "none"]
    citations: list[Citation]
    evidence: list[EvidencePath]
    chunks: list[RetrievedChunk]
    seeds: list[EntityRef]
    timings: dict[str, float]
    model: str | None = None
    note: str | None = None
    grounding: Grounding | None = None  # the groundedness gate's report on a generated answer


class TextDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=300, description="Also names the document: the same title again replaces it.")
    text: str = Field(min_length=1)
    metadata: dict[str, Any] = Field(default_factory=dict)


class TextsIngestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"texts": [{"title": "Helios", "text": "Helios Robotics was founded by Ada Park in Oslo."}], "tags": ["demo"]}]})
    texts: list[TextDocument] = Field(min_length=1, max_length=1000)
    tags: list[str] = Field(default_factory=list, max_length=20)


class JobView(BaseModel):
    id: str
    tenant: str
    state: Literal["queued", "running", "succeeded", "failed"]
    files: list[str]
    tags: list[str]
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None
    progress: dict[str, int]
    errors: list[dict[str, str]]
    run: dict[str, Any] | None = None
    error: str | None = None


class CypherRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"query": "MATCH (e:Organization) RETURN e.name AS name LIMIT $n", "params": {"n": 10}}]})
    query: str = Field(min_length=1, max_length=20000)
    params: dict[str, Any] = Field(default_factory=dict)
    timeout_ms: int | None = Field(default=None, ge=1, description="Capped by KGF_CYPHER_TIMEOUT_MS.")
    max_rows: int | None = Field(default=None, ge=1, description="Capped by KGF_CYPHER_MAX_ROWS.")


class CypherResponse(BaseModel):
    columns: list[str]
    rows: list[list[Any]]
    row_count: int
    truncated: bool
    elapsed_ms: float
    tenant: str


class ChatMessage(BaseModel):
    role: str
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(BaseModel):
    """The OpenAI chat-completions body; unknown OpenAI fields are accepted and ignored."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"model": "kgfactory", "messages": [{"role": "user", "content": "Who founded Helios Robotics?"}]}]})
    model: str = Field(min_length=1, max_length=200)
    messages: list[ChatMessage] = Field(min_length=1, max_length=200)
    stream: bool = False
    top_k: int = Field(default=5, ge=1, le=100, description="kgfactory extension: passages to retrieve.")
