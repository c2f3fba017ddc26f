"""The OpenAI-compatible face: GET /v1/models, POST /v1/chat/completions (stream and non-stream).

The last user message is the question; the reply is the knowledge base's answer with a numbered source list
(and the structured citations in an extra `citations` field that OpenAI clients ignore). Models name the
retrieval mode: `kgfactory` (hybrid), `kgfactory-vector`, `kgfactory-graph`, `kgfactory-hybrid`.
"""
from __future__ import annotations

import json
import time
import uuid
from typing import Any, Iterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from ...service.asking import REJECTED_NOTICE, grounding_detail
from ...service.limits import MAX_QUESTION_CHARS
from ...service.results import AskResult
from ..auth import Reader
from ..deps import ReaderKB, audited
from ..errors import ApiError
from ..keys import Principal
from ..schemas import ChatRequest

router = APIRouter(tags=["OpenAI-compatible"])
MODELS = {"kgfactory": "hybrid", "kgfactory-hybrid": "hybrid", "kgfactory-vector": "vector", "kgfactory-graph": "graph"}
_CREATED = 1735689600


@router.get("/v1/models")
def models(p: Principal = Reader) -> dict:
    """The knowledge base as chat models, one per retrieval mode."""
    return {"object": "list", "data": [{"id": m, "object": "model", "created": _CREATED, "owned_by": "kgfactory"}
                                       for m in MODELS]}


def _question(req: ChatRequest) -> str:
    for m in reversed(req.messages):
        if m.role == "user":
            c = m.content
            if isinstance(c, list):
                c = " ".join(str(part.get("text", "")) for part in c if isinstance(part, dict))
            if c and c.strip():
                return c.strip()
    raise ApiError(400, "messages hold no user message with text: the last user message is the question")


def _sources(ans: AskResult) -> str:
    if not ans.citations:
        return ""
    lines = [f"[{n}] {c.title} ({c.source}, chars {c.start}-{c.end})" for n, c in enumerate(ans.citations, 1)]
    return "\n\nSources:\n" + "\n".join(lines)


def _grounding(ans: AskResult) -> dict | None:
    return ans.grounding.model_dump(mode="json") if ans.grounding is not None else None


def _usage(ans: AskResult) -> dict:
    u = ans.usage or {}
    return {"prompt_tokens": u.get("prompt_tokens", 0), "completion_tokens": u.get("completion_tokens", 0),
            "total_tokens": u.get("total_tokens", u.get("prompt_tokens", 0) + u.get("completion_tokens", 0))}


@router.post("/v1/chat/completions")
def chat_completions(req: ChatRequest, request: Request, kb: ReaderKB) -> Any:
    """Answer the last user message from the knowledge base, OpenAI chat-completions style (`stream` supported)."""
    if req.model not in MODELS:
        raise ApiError(404, f"model {req.model!r} does not exist; GET /v1/models lists {', '.join(MODELS)}",
                       "model_not_found")
    question = _question(req)
    cid, created = "chatcmpl-" + uuid.uuid4().hex[:24], int(time.time())
    args: dict[str, Any] = {"mode": MODELS[req.model], "top_k": req.top_k}
    with audited(request, "chat", question[:200]) as a:
        if not req.stream:
            ans = kb.ask(question[:MAX_QUESTION_CHARS], **args)
            a.detail(model=req.model, kind=ans.kind, **grounding_detail(ans))
            return {"id": cid, "object": "chat.completion", "created": created, "model": req.model,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": ans.answer + _sources(ans)},
                                 "finish_reason": "stop"}],
                    "usage": _usage(ans), "citations": [c.model_dump(mode="json") for c in ans.citations],
                    "answer_kind": ans.kind, "grounding": _grounding(ans)}
        a.defer()  # the stream records its own outcome when it ends
        stream = kb.ask_stream(question[:MAX_QUESTION_CHARS], **args)

    def chunk(delta: dict, finish: str | None = None, **extra) -> str:
        body = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": req.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
        return f"data: {json.dumps(body, default=str)}\n\n"

    def events() -> Iterator[str]:
        yield chunk({"role": "assistant", "content": ""})
        sent = False
        with audited(request, "chat", question[:200]) as a:
            a.detail(model=req.model, stream=True)
            try:
                for item in stream:
                    if isinstance(item, AskResult):
                        grounding = grounding_detail(item)
                        a.detail(**grounding)
                        if grounding.get("grounded") is False and sent:  # withdraw the streamed text, visibly
                            yield chunk({"content": f"\n\n[{REJECTED_NOTICE}]\n\n{item.answer}"})
                        if item.citations:
                            yield chunk({"content": _sources(item)})
                        yield chunk({}, "stop", usage=_usage(item), answer_kind=item.kind, grounding=_grounding(item),
                                    citations=[c.model_dump(mode="json") for c in item.citations])
                    elif item:
                        sent = True
                        yield chunk({"content": item})
            except Exception as e:
                a.fail(e)
                yield f"data: {json.dumps({'error': {'message': str(e), 'type': type(e).__name__}})}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
