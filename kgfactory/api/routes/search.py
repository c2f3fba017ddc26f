"""POST /v1/search: retrieval only (ranked chunks with citation fields, seeds, graph evidence, timings).

No answerer runs, so no LLM generation is spent; the SDK's `search()` calls this."""
from __future__ import annotations

from fastapi import APIRouter, Request

from .. import answering
from ..auth import Reader
from ..keys import Principal
from ..schemas import SearchRequest, SearchResponse
from ..state import audit, get_state

router = APIRouter(tags=["question answering"])


@router.post("/v1/search", response_model=SearchResponse)
def search(req: SearchRequest, request: Request, p: Principal = Reader):
    """Search the caller's tenant's documents: ranked chunks (text, score, citation fields, entities), the
    question's seed entities, graph evidence and per-stage timings. No answer."""
    st = get_state(request)
    filters = req.filters.model_dump(exclude_none=True) if req.filters else None
    try:
        result = answering.retrieve(st, p, req.question, req.mode, req.top_k, filters)
    except Exception as e:
        audit(request, p, "search", "error", target=req.question[:200], detail={"error": str(e)[:300]})
        raise
    st.metrics.searches.labels(result.mode).inc()
    audit(request, p, "search", "ok", target=req.question[:200],
          detail={"mode": req.mode, "chunks": len(result.chunks)})
    return {"question": result.query, "mode": result.mode, "top_k": result.top_k,
            "chunks": [c.model_dump(mode="json") for c in result.chunks],
            "seeds": [s.model_dump(mode="json") for s in result.seeds],
            "evidence": [e.model_dump(mode="json") for e in result.evidence],
            "timings": result.timings, "empty_store": result.empty_store}
