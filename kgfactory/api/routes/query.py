"""POST /v1/query: question answering with citations and graph evidence; `stream=true` gives server-sent events."""
from __future__ import annotations

import json
from typing import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from ...types import Answer
from .. import answering
from ..auth import Reader
from ..keys import Principal
from ..schemas import QueryRequest, QueryResponse
from ..state import audit, get_state

router = APIRouter(tags=["question answering"])


def _body(ans: Answer, result) -> dict:
    return {"question": result.query, "answer": ans.text, "kind": ans.kind,
            "citations": [c.model_dump(mode="json") for c in ans.citations],
            "evidence": [e.model_dump(mode="json") for e in result.evidence],
            "chunks": [c.model_dump(mode="json") for c in result.chunks],
            "seeds": [s.model_dump(mode="json") for s in result.seeds],
            "timings": ans.timings or result.timings, "model": getattr(ans, "model", None),
            "note": getattr(ans, "note", None),
            "grounding": g.model_dump(mode="json") if (g := getattr(ans, "grounding", None)) else None}


def _sse(event: str, data) -> str:
    return f"event: {event}\ndata: {json.dumps(data, default=str)}\n\n"


@router.post("/v1/query", response_model=QueryResponse,
             responses={200: {"content": {"text/event-stream": {}},
                              "description": "JSON, or with stream=true server-sent events: `retrieval` (the chunks), "
                                             "`token` (answer text pieces), `rejected` (the groundedness gate withdrew the "
                                             "generated text streamed so far), `answer` (the full answer body), `done`."}})
def query(req: QueryRequest, request: Request, p: Principal = Reader):
    """Answer a question from the caller's tenant's documents: answer, citations, graph evidence, timings."""
    st = get_state(request)
    filters = req.filters.model_dump(exclude_none=True) if req.filters else None
    try:
        result = answering.retrieve(st, p, req.question, req.mode, req.top_k, filters)
        if not req.stream:
            ans = answering.answer(st, result, p.tenant)
    except Exception as e:
        audit(request, p, "query", "error", target=req.question[:200], detail={"error": str(e)[:300]})
        raise
    if not req.stream:
        audit(request, p, "query", "ok", target=req.question[:200],
              detail={"mode": req.mode, "kind": ans.kind, "chunks": len(result.chunks),
                      **answering.grounding_detail(ans)})
        return _body(ans, result)

    def events() -> Iterator[str]:
        yield _sse("retrieval", {"chunks": [c.model_dump(mode="json") for c in result.chunks],
                                 "timings": result.timings})
        outcome, grounding = "ok", {}
        try:
            for item in answering.stream(st, result, p.tenant):
                if isinstance(item, Answer):
                    grounding = answering.grounding_detail(item)
                    if grounding.get("grounded") is False:  # the tokens sent are withdrawn: say so first
                        yield _sse("rejected", {"reasons": grounding["grounding_reasons"],
                                                "message": answering.REJECTED_NOTICE})
                    yield _sse("answer", _body(item, result))
                else:
                    yield _sse("token", {"text": item})
        except Exception as e:  # the status line is gone: report the error as an event
            outcome = "error"
            from ..errors import _status

            status, kind = _status(e)
            yield _sse("error", {"type": kind, "status": status, "message": str(e)})
        finally:
            audit(request, p, "query", outcome, target=req.question[:200],
                  detail={"mode": req.mode, "stream": True, **grounding})
        yield _sse("done", {})

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
