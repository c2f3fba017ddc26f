"""`Client`: the synchronous SDK over httpx, one method per API route. Needs only httpx and pydantic."""
from __future__ import annotations

import time
from typing import Any, Callable, Iterator, Sequence

import httpx

from . import _base as B
from .errors import ValidationError, error_for
from .models import (AskResult, CypherResult, DeleteResult, DocumentDetail, DocumentInfo, EntityDetail,
                     IngestProgress, IngestResult, Job, SearchResult, SparqlResult)
from .models import EntityGraph, EntitySearchResult, OntologyClasses, QuarantineList


class Client:
    """A kgfactory server's API as Python methods.

    `base_url` defaults to $KGF_API_URL or http://127.0.0.1:8765 (`kgf serve`); `api_key` to $KGF_API_KEY (none
    needed in open mode). Idempotent calls are retried with exponential backoff on 429/502/503/504, timeouts
    and refused connections; uploads only when nothing reached the server or on 429.
    """

    def __init__(self, base_url: str | None = None, api_key: str | None = None, *, timeout: float = B.DEFAULT_TIMEOUT,
                 retries: int = 3, backoff: float = 0.5, max_backoff: float = 8.0,
                 transport: httpx.BaseTransport | None = None, headers: dict[str, str] | None = None):
        self.base_url = B.resolve_url(base_url)
        self.retry = B.Retry(retries, backoff, max_backoff)
        self._http = httpx.Client(base_url=self.base_url, headers={**B.headers_for(B.resolve_key(api_key)),
                                                                   **(headers or {})},
                                  timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)), transport=transport)

    # -- plumbing ---------------------------------------------------------------------------------------
    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _send(self, req: B.Req, stream: bool = False) -> httpx.Response:
        attempt = 0
        while True:
            parts, opened = req.files() if req.files else (None, [])
            try:
                request = self._http.build_request(req.method, req.path, json=req.json, params=req.params,
                                                   data=req.data, content=req.content, files=parts,
                                                   headers=req.headers or None)
                resp = self._http.send(request, stream=stream)
            except httpx.TransportError as e:
                if attempt < self.retry.retries and B.may_retry_transport(e, req):
                    time.sleep(self.retry.delay(attempt))
                    attempt += 1
                    continue
                raise B.transport_error(e, req, self.base_url) from e
            finally:
                for f in opened:
                    f.close()
            if resp.status_code < 400:
                return resp
            if stream:
                resp.read()
                resp.close()
            err = error_for(resp.status_code, _body(resp), dict(resp.headers))
            if attempt < self.retry.retries and B.retryable_status(req, resp.status_code):
                time.sleep(self.retry.delay(attempt, err.retry_after))
                attempt += 1
                continue
            raise err

    def _json(self, req: B.Req) -> Any:
        return self._send(req).json()

    # -- question answering -----------------------------------------------------------------------------
    def ask(self, question: str, *, mode: str = "hybrid", top_k: int = 5, tags: Sequence[str] | None = None,
            doc_ids: Sequence[str] | None = None) -> AskResult:
        """Answer from the knowledge base, with citations, graph evidence and the chunks used."""
        return AskResult.model_validate(self._json(B.query(question, mode, top_k, tags, doc_ids)))

    def ask_stream(self, question: str, *, mode: str = "hybrid", top_k: int = 5, tags: Sequence[str] | None = None,
                   doc_ids: Sequence[str] | None = None) -> Iterator[str | AskResult]:
        """Answer text pieces (str) as the server streams them, then the final AskResult with its citations."""
        resp = self._send(B.query(question, mode, top_k, tags, doc_ids, stream=True), stream=True)
        try:
            for event, data in B.iter_sse(resp.iter_lines()):
                item = _stream_item(event, data)
                if item is _DONE:
                    return
                if item is not None:
                    yield item
        finally:
            resp.close()

    def search(self, question: str, *, mode: str = "hybrid", top_k: int = 5, tags: Sequence[str] | None = None,
               doc_ids: Sequence[str] | None = None) -> SearchResult:
        """Retrieval: ranked chunks (text, score, citation fields, entities), seed entities, graph evidence.

        Calls /v1/search, which runs no answerer (no LLM generation)."""
        return _search_of(self._json(B.search(question, mode, top_k, tags, doc_ids)), mode)

    # -- documents and ingest ---------------------------------------------------------------------------
    def ingest(self, paths: Any = None, *, texts: Any = None, files: Any = None, tags: Sequence[str] | str = (),
               wait: bool = True, progress: Callable[[IngestProgress], None] | None = None,
               poll_interval: float = 0.5, timeout: float | None = 1800.0) -> IngestResult:
        """Ingest files and directories (walked recursively), texts (str, (title, text) or {title, text, metadata})
        and file objects ((name, file) or named binary files). Sent as jobs of at most 32 files each.

        `wait=True` polls the jobs until they finish, calling `progress` as documents are processed; per-file
        errors are in the result, never raised. `wait=False` returns the queued jobs at once."""
        plan = B.ingest_plan(paths, texts, files, tags)
        jobs = [Job.model_validate(self._json(req)) for req, _ in plan]
        sizes = [n for _, n in plan]
        if wait:
            jobs = self._wait(jobs, sizes, progress, poll_interval, timeout)
        return IngestResult.of(jobs)

    def _wait(self, jobs: list[Job], sizes: list[int], progress, poll_interval: float, timeout: float | None):
        end = None if timeout is None else time.monotonic() + timeout
        last = None
        while True:
            jobs = [j if j.done else self.job(j.id) for j in jobs]
            p = B.progress_of(jobs, sizes)
            if progress is not None and p != last:
                progress(p)
                last = p
            if all(j.done for j in jobs):
                return jobs
            if end is not None and time.monotonic() > end:
                from .errors import TimeoutError

                raise TimeoutError(f"ingest jobs {', '.join(j.id for j in jobs if not j.done)} still running after "
                                   f"{timeout} s; they go on on the server (see job(id))")
            time.sleep(poll_interval)

    def job(self, job_id: str) -> Job:
        return Job.model_validate(self._json(B.job(job_id)))

    def jobs(self) -> list[Job]:
        """This tenant's ingest jobs, oldest first (kept across server restarts; the newest KGF_API_JOBS_KEEP finished)."""
        return [Job.model_validate(j) for j in self._json(B.Req("GET", "/v1/jobs"))]

    def documents(self, status: str | None = None) -> list[DocumentInfo]:
        """This tenant's documents (status: complete, pending or deleting)."""
        return [DocumentInfo.model_validate(d) for d in self._json(B.documents(status))]

    def document(self, doc_id: str) -> DocumentDetail:
        """A document with its chunks and the entities they mention."""
        return DocumentDetail.model_validate(self._json(B.document(doc_id)))

    def delete(self, doc_id: str) -> DeleteResult:
        """Remove a document and everything only it contributed."""
        return DeleteResult.model_validate(self._json(B.delete(doc_id)))

    # -- analysts ---------------------------------------------------------------------------------------
    def cypher(self, query: str, params: dict[str, Any] | None = None, *, timeout_ms: int | None = None,
               max_rows: int | None = None) -> CypherResult:
        """Read-only Cypher over this tenant's graph (write clauses are refused with ValidationError)."""
        return CypherResult.model_validate(self._json(B.cypher(query, params, timeout_ms, max_rows)))

    def sparql(self, query: str) -> SparqlResult:
        """SPARQL over this tenant's named graph: SELECT/ASK as SPARQL JSON, CONSTRUCT/DESCRIBE as Turtle."""
        return _sparql_of(self._send(B.sparql(query)))

    def ontology(self) -> dict[str, Any]:
        """The OWL ontology the graph is typed by: classes, object and datatype properties, individuals."""
        return self._json(B.Req("GET", "/v1/ontology"))

    def entity(self, entity_id: str, *, limit: int = 50) -> EntityDetail:
        """An entity with its neighbourhood (related entities) and the chunks that mention it."""
        return EntityDetail.model_validate(self._json(B.entity(entity_id, limit)))

    def entity_search(self, q: str, *, limit: int = 10, label: str | None = None) -> EntitySearchResult:
        """Entities whose name or alias matches `q`: exact, then prefix, then near spellings (type-ahead)."""
        return EntitySearchResult.model_validate(self._json(B.entity_search(q, limit, label)))

    def entity_graph(self, entity_id: str, *, depth: int = 1, limit: int = 300,
                     types: Sequence[str] | str | None = None, classes: Sequence[str] | str | None = None) -> EntityGraph:
        """The entity's neighbourhood (1 or 2 steps) as nodes and edges, optionally by relation type and class."""
        return EntityGraph.model_validate(self._json(B.entity_graph(entity_id, depth, limit, types, classes)))

    def ontology_classes(self) -> OntologyClasses:
        """Ontology classes with this tenant's instance counts, and properties with domain and range."""
        return OntologyClasses.model_validate(self._json(B.Req("GET", "/v1/ontology/classes")))

    def quarantine(self, *, limit: int = 100) -> QuarantineList:
        """This tenant's quarantined facts (refused by the ontology) and their total."""
        return QuarantineList.model_validate(self._json(B.quarantine(limit)))

    def graph_schema(self) -> dict[str, Any]:
        """Node labels and relationship types of this tenant's graph, with counts."""
        return self._json(B.Req("GET", "/v1/graph/schema"))

    def whoami(self) -> dict[str, Any]:
        return self._json(B.Req("GET", "/v1/whoami"))

    def health(self) -> dict[str, Any]:
        """/readyz: each store, the model and the LLM endpoint (raises ServerError when not ready)."""
        return self._json(B.Req("GET", "/readyz"))


# --- shared by both clients ----------------------------------------------------------------------------------
_DONE = object()


def _body(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return resp.text


def _stream_item(event: str, data: Any):
    if event == "token":
        return data.get("text") or None
    if event == "answer":
        return AskResult.model_validate(data)
    if event == "error":
        raise error_for(int(data.get("status") or 500), {"error": data})
    if event == "done":
        return _DONE
    return None  # retrieval: the chunks come again with the answer


def _search_of(data: dict, mode: str) -> SearchResult:
    return SearchResult(question=data["question"], mode=data.get("mode") or mode, chunks=data.get("chunks", []),
                        seeds=data.get("seeds", []), evidence=data.get("evidence", []),
                        timings=data.get("timings", {}))


def _sparql_of(resp: httpx.Response) -> SparqlResult:
    ctype = resp.headers.get("content-type", "").split(";")[0].strip()
    if ctype in ("application/sparql-results+json", "application/json"):
        return SparqlResult.from_json(resp.json())
    if ctype in ("text/turtle", "application/n-triples", "text/plain"):
        return SparqlResult(kind="graph", graph=resp.text)
    raise ValidationError(f"unexpected SPARQL result type {ctype!r}", status=406, type="not_acceptable")
