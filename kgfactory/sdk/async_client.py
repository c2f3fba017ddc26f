"""`AsyncClient`: the same methods as Client, awaitable, on httpx.AsyncClient."""
from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator, Callable, Sequence

import httpx

from . import _base as B
from .client import _DONE, _body, _search_of, _sparql_of, _stream_item
from .errors import error_for
from .models import (AskResult, CypherResult, DeleteResult, DocumentDetail, DocumentInfo, EntityDetail,
                     IngestProgress, IngestResult, Job, SearchResult, SparqlResult)
from .models import EntityGraph, EntitySearchResult, OntologyClasses, QuarantineList


class AsyncClient:
    """Awaitable twin of `Client` (same arguments, same results, same errors); `ask_stream` is an async iterator."""

    def __init__(self, base_url: str | None = None, api_key: str | None = None, *, timeout: float = B.DEFAULT_TIMEOUT,
                 retries: int = 3, backoff: float = 0.5, max_backoff: float = 8.0,
                 transport: httpx.AsyncBaseTransport | None = None, headers: dict[str, str] | None = None):
        self.base_url = B.resolve_url(base_url)
        self.retry = B.Retry(retries, backoff, max_backoff)
        self._http = httpx.AsyncClient(base_url=self.base_url,
                                       headers={**B.headers_for(B.resolve_key(api_key)), **(headers or {})},
                                       timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)), transport=transport)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def _send(self, req: B.Req, stream: bool = False) -> httpx.Response:
        attempt = 0
        while True:
            parts, opened = req.files() if req.files else (None, [])
            try:
                request = self._http.build_request(req.method, req.path, json=req.json, params=req.params,
                                                   data=req.data, content=req.content, files=parts,
                                                   headers=req.headers or None)
                resp = await self._http.send(request, stream=stream)
            except httpx.TransportError as e:
                if attempt < self.retry.retries and B.may_retry_transport(e, req):
                    await asyncio.sleep(self.retry.delay(attempt))
                    attempt += 1
                    continue
                raise B.transport_error(e, req, self.base_url) from e
            finally:
                for f in opened:
                    f.close()
            if resp.status_code < 400:
                return resp
            if stream:
                await resp.aread()
                await resp.aclose()
            err = error_for(resp.status_code, _body(resp), dict(resp.headers))
            if attempt < self.retry.retries and B.retryable_status(req, resp.status_code):
                await asyncio.sleep(self.retry.delay(attempt, err.retry_after))
                attempt += 1
                continue
            raise err

    async def _json(self, req: B.Req) -> Any:
        return (await self._send(req)).json()

    async def ask(self, question: str, *, mode: str = "hybrid", top_k: int = 5, tags: Sequence[str] | None = None,
                  doc_ids: Sequence[str] | None = None) -> AskResult:
        return AskResult.model_validate(await self._json(B.query(question, mode, top_k, tags, doc_ids)))

    async def ask_stream(self, question: str, *, mode: str = "hybrid", top_k: int = 5,
                         tags: Sequence[str] | None = None,
                         doc_ids: Sequence[str] | None = None) -> AsyncIterator[str | AskResult]:
        resp = await self._send(B.query(question, mode, top_k, tags, doc_ids, stream=True), stream=True)
        parser = B.SSEParser()
        try:
            async for line in resp.aiter_lines():
                ev = parser.feed(line)
                if ev is None:
                    continue
                item = _stream_item(*ev)
                if item is _DONE:
                    return
                if item is not None:
                    yield item
        finally:
            await resp.aclose()

    async def search(self, question: str, *, mode: str = "hybrid", top_k: int = 5,
                     tags: Sequence[str] | None = None, doc_ids: Sequence[str] | None = None) -> SearchResult:
        """Retrieval only, over /v1/search (no answer, no LLM generation)."""
        return _search_of(await self._json(B.search(question, mode, top_k, tags, doc_ids)), mode)

    async def ingest(self, paths: Any = None, *, texts: Any = None, files: Any = None,
                     tags: Sequence[str] | str = (), wait: bool = True,
                     progress: Callable[[IngestProgress], None] | None = None, poll_interval: float = 0.5,
                     timeout: float | None = 1800.0) -> IngestResult:
        plan = B.ingest_plan(paths, texts, files, tags)
        jobs = [Job.model_validate(await self._json(req)) for req, _ in plan]
        sizes = [n for _, n in plan]
        if wait:
            end = None if timeout is None else time.monotonic() + timeout
            last = None
            while True:
                jobs = [j if j.done else await self.job(j.id) for j in jobs]
                p = B.progress_of(jobs, sizes)
                if progress is not None and p != last:
                    progress(p)
                    last = p
                if all(j.done for j in jobs):
                    break
                if end is not None and time.monotonic() > end:
                    from .errors import TimeoutError

                    raise TimeoutError(f"ingest jobs {', '.join(j.id for j in jobs if not j.done)} still running "
                                       f"after {timeout} s; they go on on the server (see job(id))")
                await asyncio.sleep(poll_interval)
        return IngestResult.of(jobs)

    async def job(self, job_id: str) -> Job:
        return Job.model_validate(await self._json(B.job(job_id)))

    async def jobs(self) -> list[Job]:
        return [Job.model_validate(j) for j in await self._json(B.Req("GET", "/v1/jobs"))]

    async def documents(self, status: str | None = None) -> list[DocumentInfo]:
        return [DocumentInfo.model_validate(d) for d in await self._json(B.documents(status))]

    async def document(self, doc_id: str) -> DocumentDetail:
        return DocumentDetail.model_validate(await self._json(B.document(doc_id)))

    async def delete(self, doc_id: str) -> DeleteResult:
        return DeleteResult.model_validate(await self._json(B.delete(doc_id)))

    async def cypher(self, query: str, params: dict[str, Any] | None = None, *, timeout_ms: int | None = None,
                     max_rows: int | None = None) -> CypherResult:
        return CypherResult.model_validate(await self._json(B.cypher(query, params, timeout_ms, max_rows)))

    async def sparql(self, query: str) -> SparqlResult:
        return _sparql_of(await self._send(B.sparql(query)))

    async def ontology(self) -> dict[str, Any]:
        return await self._json(B.Req("GET", "/v1/ontology"))

    async def entity(self, entity_id: str, *, limit: int = 50) -> EntityDetail:
        return EntityDetail.model_validate(await self._json(B.entity(entity_id, limit)))

    async def entity_search(self, q: str, *, limit: int = 10, label: str | None = None) -> EntitySearchResult:
        return EntitySearchResult.model_validate(await self._json(B.entity_search(q, limit, label)))

    async def entity_graph(self, entity_id: str, *, depth: int = 1, limit: int = 300,
                           types: Sequence[str] | str | None = None,
                           classes: Sequence[str] | str | None = None) -> EntityGraph:
        return EntityGraph.model_validate(await self._json(B.entity_graph(entity_id, depth, limit, types, classes)))

    async def ontology_classes(self) -> OntologyClasses:
        return OntologyClasses.model_validate(await self._json(B.Req("GET", "/v1/ontology/classes")))

    async def quarantine(self, *, limit: int = 100) -> QuarantineList:
        return QuarantineList.model_validate(await self._json(B.quarantine(limit)))

    async def graph_schema(self) -> dict[str, Any]:
        return await self._json(B.Req("GET", "/v1/graph/schema"))

    async def whoami(self) -> dict[str, Any]:
        return await self._json(B.Req("GET", "/v1/whoami"))

    async def health(self) -> dict[str, Any]:
        return await self._json(B.Req("GET", "/readyz"))

