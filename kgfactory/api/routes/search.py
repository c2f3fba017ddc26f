"""POST /v1/search: retrieval only (ranked chunks with citation fields, seeds, graph evidence, timings).

No answerer runs, so no LLM generation is spent; the SDK's `search()` calls this."""
from __future__ import annotations

from fastapi import APIRouter, Request

from ...service.results import SearchResult
from ..deps import ReaderKB, audited
from ..schemas import SearchRequest
from .query import narrowing

router = APIRouter(tags=["question answering"])


@router.post("/v1/search", response_model=SearchResult)
def search(req: SearchRequest, request: Request, kb: ReaderKB) -> SearchResult:
    """Search the caller's tenant's documents: ranked chunks (text, score, citation fields, entities), the
    question's seed entities, graph evidence and per-stage timings. No answer."""
    with audited(request, "search", req.question[:200]) as a:
        res = kb.search(req.question, **narrowing(req))
        a.detail(mode=req.mode, chunks=len(res.chunks))
    return res
