"""POST /v1/query: question answering with citations and graph evidence; `stream=true` gives server-sent events."""
from __future__ import annotations

import json
from typing import Any, Iterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from ...service.asking import REJECTED_NOTICE, AnswerStream, grounding_detail
from ...service.results import AskResult
from ..deps import ReaderKB, audited
from ..errors import stream_error
from ..schemas import QueryRequest

router = APIRouter(tags=["question answering"])


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, default=str)}\n\n"


def narrowing(req: Any) -> dict[str, Any]:
    """The request's mode, top_k and filters as the layer's keyword arguments."""
    f = req.filters
    return {"mode": req.mode, "top_k": req.top_k, "tags": f.tag if f else None, "doc_ids": f.doc_id if f else None}


@router.post("/v1/query", response_model=AskResult,
             responses={200: {"content": {"text/event-stream": {}},
                              "description": "JSON, or with stream=true server-sent events: `retrieval` (the chunks), "
                                             "`token` (answer text pieces), `rejected` (the groundedness gate withdrew the "
                                             "generated text streamed so far), `answer` (the full answer body), `done`."}})
def query(req: QueryRequest, request: Request, kb: ReaderKB) -> Any:
    """Answer a question from the caller's tenant's documents: answer, citations, graph evidence, timings."""
    target = req.question[:200]
    with audited(request, "query", target) as a:
        if not req.stream:
            res = kb.ask(req.question, **narrowing(req))
            a.detail(mode=req.mode, kind=res.kind, chunks=len(res.chunks), **grounding_detail(res))
            return res
        a.defer()  # the stream records its own outcome when it ends
        stream = kb.ask_stream(req.question, **narrowing(req))
    return StreamingResponse(_events(request, req, target, stream), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache"})


def _events(request: Request, req: QueryRequest, target: str, stream: AnswerStream) -> Iterator[str]:
    yield _sse("retrieval", {"chunks": [c.model_dump(mode="json") for c in stream.retrieval.chunks],
                             "timings": stream.retrieval.timings})
    with audited(request, "query", target) as a:
        a.detail(mode=req.mode, stream=True)
        try:
            for item in stream:
                if isinstance(item, AskResult):
                    grounding = grounding_detail(item)
                    a.detail(**grounding)
                    if grounding.get("grounded") is False:  # the tokens sent are withdrawn: say so first
                        yield _sse("rejected", {"reasons": grounding["grounding_reasons"], "message": REJECTED_NOTICE})
                    yield _sse("answer", item.model_dump(mode="json"))
                else:
                    yield _sse("token", {"text": item})
        except Exception as e:  # the status line is gone: report the error as an event
            a.fail(e)
            yield _sse("error", stream_error(e))
    yield _sse("done", {})
