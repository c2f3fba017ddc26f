"""Retrieval results: ranked chunks with their context and the graph evidence that led to them."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Mode = Literal["vector", "graph", "hybrid"]
MODES = ("vector", "graph", "hybrid")


class EntityRef(BaseModel):
    id: str
    name: str
    label: str


class EvidencePath(BaseModel):
    """How the graph links a query entity to an entity of a retrieved chunk: [(name, rel, name), ...]."""

    chunk_id: str
    hops: list[tuple[str, str, str]]


class RetrievedChunk(BaseModel):
    id: str
    doc_id: str
    title: str
    source: str
    text: str
    start: int
    end: int
    page: int | None = None
    score: float
    vector_score: float | None = None
    graph_score: float | None = None
    entities: list[EntityRef] = Field(default_factory=list)
    neighbours: dict[str, str] = Field(default_factory=dict)  # "prev"/"next" -> chunk text, when cut mid-thought
    tags: list[str] = Field(default_factory=list)


class RetrievalResult(BaseModel):
    query: str
    mode: Mode
    top_k: int
    chunks: list[RetrievedChunk] = Field(default_factory=list)
    seeds: list[EntityRef] = Field(default_factory=list)
    answer_classes: list[str] = Field(default_factory=list)  # ontology classes the question asks for
    evidence: list[EvidencePath] = Field(default_factory=list)
    timings: dict[str, float] = Field(default_factory=dict)
    empty_store: bool = False
    filters: dict[str, Any] = Field(default_factory=dict)
