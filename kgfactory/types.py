"""Typed records shared by every subsystem. Ids are content hashes so re-ingest is a harmless MERGE."""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, Field


ALL_TENANTS = "*"  # the tenant of an API key scoped to every tenant (analyst Cypher on Neo4j Community only)


def content_id(*parts: str | bytes, prefix: str = "", size: int = 24) -> str:
    """Stable id from content: sha256 over the parts, separated so ('ab','c') != ('a','bc')."""
    h = hashlib.sha256()
    for p in parts:
        b = p if isinstance(p, bytes) else p.encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return prefix + h.hexdigest()[:size]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class PageSpan(BaseModel):
    """Character span [start, end) of one PDF page inside the document text."""

    page: int
    start: int
    end: int


class Document(BaseModel):
    """A parsed source document; `text` is what chunk offsets point into."""

    id: str
    source: str
    title: str
    mime: str
    text: str
    pages: list[PageSpan] = Field(default_factory=list)
    tenant: str = "default"
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    ingested_at: datetime = Field(default_factory=utcnow)

    def page_at(self, offset: int) -> int | None:
        for p in self.pages:
            if p.start <= offset < p.end:
                return p.page
        return self.pages[-1].page if self.pages and offset >= self.pages[-1].start else None


class Chunk(BaseModel):
    """A span of a document: `text == document.text[start:end]`."""

    id: str
    doc_id: str
    tenant: str = "default"
    index: int
    text: str
    start: int
    end: int
    page: int | None = None


class Entity(BaseModel):
    """A resolved entity: one node per normalised name (aliases merge), typed by an ontology class."""

    id: str
    name: str
    label: str = "Concept"
    aliases: list[str] = Field(default_factory=list)
    tenant: str = "default"
    source: str = "ner"  # how it was found: vocabulary, ner, noun_phrase


class Mention(BaseModel):
    """(:Chunk)-[:MENTIONS {count, subject}]->(:Entity). `subject`: the entity is what the chunk's document is
    about (its title names it), a stronger link than a passing mention."""

    chunk_id: str
    entity_id: str
    count: int = 1
    subject: bool = False


class Relation(BaseModel):
    """An entity-entity edge. `type` is CO_OCCURS or an ontology object property's local name.

    `chunk_ids` is the provenance: the edge lives while one of those chunks does; weight = len(chunk_ids).
    """

    source_id: str
    target_id: str
    type: str
    chunk_ids: list[str] = Field(default_factory=list)

    @property
    def weight(self) -> float:
        return float(len(self.chunk_ids))


class RelationViolation(BaseModel):
    """A typed edge the text suggested but the ontology's domain/range forbids: quarantined, never in the graph."""

    source_id: str
    target_id: str
    type: str
    source_name: str = ""
    target_name: str = ""
    source_class: str = ""
    target_class: str = ""
    chunk_ids: list[str] = Field(default_factory=list)
    reason: str = ""


class Extraction(BaseModel):
    """What the extractor found in a batch of chunks."""

    entities: list[Entity] = Field(default_factory=list)
    mentions: list[Mention] = Field(default_factory=list)
    relations: list[Relation] = Field(default_factory=list)
    violations: list[RelationViolation] = Field(default_factory=list)


class FileError(BaseModel):
    """One bad input: which file (and record/line) and why. Reported, never fatal to the batch."""

    source: str
    reason: str


class IngestRun(BaseModel):
    """Lineage record of one ingest run."""

    id: str
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    pipeline_version: str = ""
    embed_model: str = ""
    extractor: str = ""
    ontology_version: str = ""
    documents_added: int = 0
    documents_unchanged: int = 0
    documents_replaced: int = 0
    chunks: int = 0
    entities: int = 0
    relations: int = 0
    quarantined: int = 0  # typed edges refused by domain/range (see `kgf ontology violations`)
    errors: list[FileError] = Field(default_factory=list)
    timings: dict[str, float] = Field(default_factory=dict)
    # set when an LLM extracted entities: which model and prompt version, so the run can be reproduced
    llm_model: str = ""
    prompt_version: str = ""
    llm_stats: dict[str, int] = Field(default_factory=dict)  # llm_requests, cache_hits, fallbacks, tokens, ...
    llm_fallbacks: list[FileError] = Field(default_factory=list)  # chunks that kept the spaCy extraction, and why


class Citation(BaseModel):
    """Where an answer's sentence came from: a chunk and a character span in its document."""

    doc_id: str
    title: str
    chunk_id: str
    start: int
    end: int
    page: int | None = None
    source: str = ""
    text: str = ""


class SentenceSupport(BaseModel):
    """How well the sources back one sentence of a generated answer (see llm/grounding.py)."""

    sentence: str
    cited: list[int] = Field(default_factory=list)  # the [n] markers it carries (numbers in the checked text)
    word_overlap: float = 0.0  # share of its content words (crudely stemmed) found in those chunks
    similarity: float = 0.0  # best cosine to a sentence (or pair of sentences) of the chunks it was compared with
    numbers_missing: list[str] = Field(default_factory=list)  # numbers it states that those chunks do not
    names_missing: list[str] = Field(default_factory=list)  # capitalised names it states that those chunks do not
    supported: bool = False
    reason: str | None = None


class Grounding(BaseModel):
    """The groundedness gate's decision on a generated answer: the answer is kept only when `passed`; otherwise
    the extractive answer replaces it and the model's text is kept here, for debugging only."""

    passed: bool
    reasons: list[str] = Field(default_factory=list)
    sentences: list[SentenceSupport] = Field(default_factory=list)
    supported_share: float = 0.0
    thresholds: dict[str, float] = Field(default_factory=dict)
    rejected_text: str | None = None


class RelatedSource(BaseModel):
    """A source near the question that does not answer it: listed when the answer abstains, never cited."""

    doc_id: str
    title: str = ""
    chunk_id: str
    source: str = ""
    page: int | None = None
    score: float = 0.0  # cosine of the question to the chunk or its best sentence


class Answer(BaseModel):
    """An answer with its citations; `kind` says whether an LLM wrote it."""

    question: str
    text: str
    kind: Literal["extractive", "generated", "none"] = "extractive"
    citations: list[Citation] = Field(default_factory=list)
    evidence: list[dict[str, Any]] = Field(default_factory=list)
    timings: dict[str, float] = Field(default_factory=dict)
    # generated answers: which model and prompt version wrote it, tokens used, [n] markers removed because the
    # model cited a source it was not given; `note` says e.g. that the LLM was unavailable and this is extractive
    model: str | None = None
    prompt_version: str | None = None
    usage: dict[str, int] | None = None
    removed_citations: list[int] = Field(default_factory=list)
    note: str | None = None
    # set when an LLM answer went through the groundedness gate: passed (kind 'generated') or rejected (kind
    # 'extractive', the model's text in grounding.rejected_text; model/usage still say what was spent)
    grounding: Grounding | None = None
    # abstention (retrieval/abstain.py): `support` is the best question-to-source cosine; below the threshold the
    # answer says the knowledge base does not hold it, cites nothing and lists the nearest sources in `related`
    abstained: bool = False
    support: float | None = None
    related: list[RelatedSource] = Field(default_factory=list)


class Completion(BaseModel):
    """One chat completion from an LLM adapter, with its token counts (estimated when the server gave none)."""

    text: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    usage_estimated: bool = False
    finish_reason: str | None = None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def usage(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.total_tokens}
