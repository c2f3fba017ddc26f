"""The typed results of every operation: one shape for the API's response bodies, the SDK (`Client` and
`KnowledgeBase`) and the CLI's `--json`. They reuse the core records (Citation, RetrievedChunk, ...) and need only
pydantic, so the SDK's light install imports them (as `kgfactory.sdk.models`)."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..retrieval.models import EntityRef, EvidencePath, RetrievedChunk
from ..types import Citation, Grounding, RelatedSource

__all__ = ["AskResult", "GraphSchema", "SearchResult", "Job", "IngestResult", "IngestProgress", "DocumentInfo", "DocumentDetail",
           "DeleteResult", "CypherResult", "SparqlResult", "EntityDetail", "Citation", "RetrievedChunk", "EntityRef",
           "EvidencePath", "EmbedResult", "RelatedSource", "EntityHit", "EntitySearchResult", "EntityGraph",
           "GraphNode", "GraphEdge", "EntityRelationInfo", "OntologyClasses", "OntologyClassInfo",
           "OntologyPropertyInfo", "QuarantineList"]


class _Open(BaseModel):
    """Results whose server side may grow fields: unknown ones are kept, not refused."""

    model_config = ConfigDict(extra="allow")


class SearchResult(_Open):
    """Retrieval only: the ranked chunks, the question's seed entities and the graph evidence."""

    question: str
    mode: str = "hybrid"
    top_k: int = 5
    chunks: list[RetrievedChunk] = Field(default_factory=list)
    seeds: list[EntityRef] = Field(default_factory=list)
    evidence: list[EvidencePath] = Field(default_factory=list)
    timings: dict[str, float] = Field(default_factory=dict)
    empty_store: bool = False


class AskResult(_Open):
    """An answer with its citations; `kind` says whether an LLM wrote it (`generated`) or it quotes (`extractive`)."""

    question: str
    answer: str
    kind: Literal["extractive", "generated", "none"] = "extractive"
    citations: list[Citation] = Field(default_factory=list)
    evidence: list[EvidencePath] = Field(default_factory=list)
    chunks: list[RetrievedChunk] = Field(default_factory=list)
    seeds: list[EntityRef] = Field(default_factory=list)
    timings: dict[str, float] = Field(default_factory=dict)
    model: str | None = None
    prompt_version: str | None = None
    usage: dict[str, int] | None = None  # tokens an LLM spent on it (None for an extractive answer)
    note: str | None = None
    grounding: Grounding | None = None  # the groundedness gate's report when an LLM wrote (or tried to write) it
    abstained: bool = False  # the knowledge base does not hold the answer: no citations, `related` lists the nearest
    support: float | None = None  # best cosine of the question to a retrieved source (what abstention compares)
    related: list[RelatedSource] = Field(default_factory=list)

    def __str__(self) -> str:
        return self.answer


class Job(_Open):
    """An ingest job: state, progress (documents processed of files sent) and per-file errors."""

    id: str
    tenant: str = "default"
    state: Literal["queued", "running", "succeeded", "failed"]
    files: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    created_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    progress: dict[str, int] = Field(default_factory=dict)
    errors: list[dict[str, str]] = Field(default_factory=list)
    run: dict[str, Any] | None = None
    error: str | None = None
    restarts: int = Field(default=0, description="Times a server restart found the job running and ran it again.")

    @property
    def done(self) -> bool:
        return self.state in ("succeeded", "failed")


class IngestProgress(BaseModel):
    """What a progress callback gets: documents processed so far of the files sent, and jobs finished."""

    documents_processed: int
    files_total: int
    jobs_done: int
    jobs_total: int
    stage: str = ""  # the ingest stage that limits throughput so far (a local threaded ingest; empty otherwise)


class IngestResult(BaseModel):
    """The outcome of `ingest(..., wait=True)`, summed over its jobs; `errors` are per file, never fatal."""

    jobs: list[Job] = Field(default_factory=list)
    documents_added: int = 0
    documents_replaced: int = 0
    documents_unchanged: int = 0
    chunks: int = 0
    errors: list[dict[str, str]] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(j.state == "succeeded" for j in self.jobs)

    @classmethod
    def of(cls, jobs: list[Job]) -> "IngestResult":
        out = cls(jobs=jobs)
        for j in jobs:
            run = j.run or {}
            out.documents_added += int(run.get("documents_added", 0))
            out.documents_replaced += int(run.get("documents_replaced", 0))
            out.documents_unchanged += int(run.get("documents_unchanged", 0))
            out.chunks += int(run.get("chunks", 0))
            out.errors.extend(j.errors)
            if j.state == "failed":
                out.errors.append({"file": ", ".join(j.files), "reason": j.error or "job failed"})
        return out


class DocumentInfo(_Open):
    """A stored document as listed: id, title, source, tenant, status, tags, ..."""

    id: str
    title: str | None = None
    source: str | None = None
    tenant: str | None = None
    status: str | None = None
    tags: list[str] | None = None


class DocumentDetail(DocumentInfo):
    """A document with its chunks (in order) and the entities they mention."""

    chunks: list[dict[str, Any]] = Field(default_factory=list)
    entities: list[dict[str, Any]] = Field(default_factory=list)


class DeleteResult(_Open):
    id: str
    deleted: bool
    chunks: int = 0
    orphaned_entities_removed: int = 0
    upload_removed: bool = False  # the uploaded file it came from went too (no other document reads it)


class CypherResult(_Open):
    """Rows of a read-only Cypher query over the caller's tenant view."""

    columns: list[str]
    rows: list[list[Any]]
    row_count: int
    truncated: bool = False
    elapsed_ms: float = 0.0
    tenant: str | None = None

    def records(self) -> list[dict[str, Any]]:
        """The rows as dicts keyed by column."""
        return [dict(zip(self.columns, r)) for r in self.rows]


class SparqlResult(BaseModel):
    """A SELECT (vars + bindings, as SPARQL JSON results) or ASK (boolean) result; CONSTRUCT/DESCRIBE give
    `graph` (Turtle text)."""

    kind: Literal["select", "ask", "graph"]
    vars: list[str] = Field(default_factory=list)
    bindings: list[dict[str, Any]] = Field(default_factory=list)
    boolean: bool | None = None
    graph: str | None = None

    @classmethod
    def from_json(cls, data: dict) -> "SparqlResult":
        if "boolean" in data:
            return cls(kind="ask", boolean=bool(data["boolean"]))
        return cls(kind="select", vars=list(data.get("head", {}).get("vars", [])),
                   bindings=list(data.get("results", {}).get("bindings", [])))

    def rows(self) -> list[dict[str, Any]]:
        """SELECT bindings as plain {var: value} dicts (unbound variables left out)."""
        return [{k: v.get("value") for k, v in b.items()} for b in self.bindings]


class GraphNode(BaseModel):
    id: str
    name: str | None = None
    label: str | None = None


class EntityRelationInfo(BaseModel):
    """A typed ontology relation of an entity: its type, direction, the entity at the other end and the chunks
    (and their documents) that state it."""

    type: str
    direction: Literal["out", "in"]
    other: GraphNode
    chunk_ids: list[str] = Field(default_factory=list)
    doc_ids: list[str] = Field(default_factory=list)


class EntityDetail(_Open):
    """An entity with its ontology class and superclasses, aliases, typed relations with provenance, related
    entities (typed edges and co-occurrence: `neighbours`) and the chunks that mention it (with their text)."""

    id: str
    name: str | None = None
    label: str | None = None
    classes: list[str] = Field(default_factory=list)  # its class, then the superclasses, nearest first
    aliases: list[str] = Field(default_factory=list)
    relations: list[EntityRelationInfo] = Field(default_factory=list)
    neighbours: list[dict[str, Any]] = Field(default_factory=list)
    mentions: list[dict[str, Any]] = Field(default_factory=list)  # chunk_id, doc_id, count, title, text


class EntityHit(BaseModel):
    """An entity found by name: `match` says how (exact, prefix or fuzzy); `score` orders hits (0-1)."""

    id: str
    name: str | None = None
    label: str | None = None
    aliases: list[str] = Field(default_factory=list)
    mentions: int = 0  # chunks that mention it
    match: Literal["exact", "prefix", "fuzzy"]
    score: float


class EntitySearchResult(BaseModel):
    q: str
    items: list[EntityHit] = Field(default_factory=list)


class GraphEdge(BaseModel):
    source: str
    target: str
    type: str


class EntityGraph(BaseModel):
    """An entity's neighbourhood for drawing: nodes, edges between them, and whether the node cap or the edge
    budget cut it short."""

    nodes: list[GraphNode] = Field(default_factory=list)
    edges: list[GraphEdge] = Field(default_factory=list)
    truncated: bool = False


class OntologyClassInfo(BaseModel):
    """A class of the ontology with this tenant's entities typed with it (`count`) and with it or a subclass
    (`total`)."""

    name: str
    parent: str | None = None  # the first declared superclass
    parents: list[str] = Field(default_factory=list)
    count: int = 0
    total: int = 0
    label: str | None = None
    comment: str | None = None


class OntologyPropertyInfo(BaseModel):
    """An object property (domain and range: class names, a union; empty: any class) or a datatype property
    (range: the datatype IRI)."""

    name: str
    kind: Literal["object", "datatype"]
    domain: list[str] = Field(default_factory=list)
    range: list[str] = Field(default_factory=list)
    label: str | None = None


class OntologyClasses(BaseModel):
    classes: list[OntologyClassInfo] = Field(default_factory=list)
    properties: list[OntologyPropertyInfo] = Field(default_factory=list)


class QuarantineList(BaseModel):
    """This tenant's quarantined facts (the first `limit`, oldest first) and how many there are."""

    items: list[dict[str, Any]] = Field(default_factory=list)
    total: int = 0


class GraphSchema(_Open):
    """Node labels and relationship types of a tenant's graph, with counts."""

    tenant: str
    labels: dict[str, int] = Field(default_factory=dict)
    relationship_types: dict[str, int] = Field(default_factory=dict)


class EmbedResult(_Open):
    """Texts embedded by the knowledge base's own embedder (the vectors its chunks are searched with), in input
    order; `tokens` is an estimate (about four characters a token) for usage reporting."""

    model: str
    dim: int
    vectors: list[list[float]] = Field(default_factory=list)
    tokens: int = 0
