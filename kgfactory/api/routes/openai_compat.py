"""The OpenAI-compatible face: GET /v1/models and /v1/models/{id}, POST /v1/chat/completions (stream and
non-stream) and POST /v1/embeddings, so the official clients work unmodified.

Chat: the whole conversation is the application layer's (service/conversation.py): earlier turns resolve the
follow-up, system messages reach the answer as operator instructions. The reply is the knowledge base's answer
with a numbered source list; an extractive answer (no LLM, or the LLM fell back) says so in the text and in the
`kgf` extension object (`kind`, as /v1/query's). Models name the retrieval mode: `kgfactory` (hybrid),
`kgfactory-vector`, `kgfactory-graph`, `kgfactory-hybrid`. Parameters that ask for what cannot be given (n>1,
tools, ...) are refused with 400 naming them (`param`).
"""
from __future__ import annotations

import base64
import json
import re
import time
import uuid
from typing import Any, Iterator

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from ...service.asking import REJECTED_NOTICE, grounding_detail
from ...service.conversation import Turn
from ...service.results import AskResult
from ..auth import Reader
from ..deps import ReaderKB, audited
from ..errors import ApiError, stream_error
from ..keys import Principal
from ..schemas import ChatRequest, EmbeddingsRequest

router = APIRouter(tags=["OpenAI-compatible"])
MODELS = {"kgfactory": "hybrid", "kgfactory-hybrid": "hybrid", "kgfactory-vector": "vector", "kgfactory-graph": "graph"}
_CREATED = 1735689600
EXTRACTIVE_MARK = "[Extractive answer: sentences quoted from the sources, not written by a language model.]"
_OWN_TAIL = re.compile(r"\n\n(?:\[Extractive answer:[^\n]*\]|Sources:\n.*)\Z", re.S)


def _model(model_id: str) -> dict:
    return {"id": model_id, "object": "model", "created": _CREATED, "owned_by": "kgfactory"}


def _unknown_model(model_id: str) -> ApiError:
    return ApiError(404, f"model {model_id!r} does not exist; GET /v1/models lists {', '.join(MODELS)}",
                    "model_not_found", param="model")


@router.get("/v1/models")
def models(p: Principal = Reader) -> dict:
    """The knowledge base as chat models, one per retrieval mode."""
    return {"object": "list", "data": [_model(m) for m in MODELS]}


@router.get("/v1/models/{model_id}")
def model(model_id: str, p: Principal = Reader) -> dict:
    """One of the models /v1/models lists."""
    if model_id not in MODELS:
        raise _unknown_model(model_id)
    return _model(model_id)


def _turns(req: ChatRequest) -> list[Turn]:
    """The messages as text turns; an assistant turn loses the source list and marker this route added."""
    out = []
    for i, m in enumerate(req.messages):
        text = m.text(i)
        if m.role == "assistant":
            while (cut := _OWN_TAIL.sub("", text)) != text:
                text = cut
        out.append(Turn(m.role, text))
    return out


def _tail(ans: AskResult) -> str:
    """What follows the answer text: the extractive marker, then the numbered sources."""
    out = f"\n\n{EXTRACTIVE_MARK}" if ans.kind == "extractive" else ""
    if ans.citations:
        out += "\n\nSources:\n" + "\n".join(f"[{n}] {c.title} ({c.source}, chars {c.start}-{c.end})"
                                            for n, c in enumerate(ans.citations, 1))
    return out


def _grounding(ans: AskResult) -> dict | None:
    return ans.grounding.model_dump(mode="json") if ans.grounding is not None else None


def _usage(ans: AskResult) -> dict:
    u = ans.usage or {}
    return {"prompt_tokens": u.get("prompt_tokens", 0), "completion_tokens": u.get("completion_tokens", 0),
            "total_tokens": u.get("total_tokens", u.get("prompt_tokens", 0) + u.get("completion_tokens", 0))}


def _extras(ans: AskResult) -> dict:
    """Fields OpenAI clients keep as extras: the structured citations, grounding and the `kgf` object."""
    return {"system_fingerprint": f"kgfactory-{ans.kind}", "citations": [c.model_dump(mode="json") for c in ans.citations],
            "answer_kind": ans.kind, "grounding": _grounding(ans),
            "kgf": {"kind": ans.kind, "extractive": ans.kind == "extractive", "note": ans.note,
                    "question": ans.question, "model": ans.model, "abstained": ans.abstained,
                    "support": ans.support, "related": [r.model_dump(mode="json") for r in ans.related]}}


@router.post("/v1/chat/completions")
def chat_completions(req: ChatRequest, request: Request, kb: ReaderKB) -> Any:
    """Answer the conversation's last user message from the knowledge base, the earlier turns resolving it
    (OpenAI chat-completions style, `stream` supported)."""
    if req.model not in MODELS:
        raise _unknown_model(req.model)
    req.refuse_unsupported()
    turns = _turns(req)
    last = next((t.text for t in reversed(turns) if t.role == "user" and t.text.strip()), "")
    cid, created = "chatcmpl-" + uuid.uuid4().hex[:24], int(time.time())
    args: dict[str, Any] = {"mode": MODELS[req.model], "top_k": req.top_k}
    with audited(request, "chat", last[:200]) as a:
        if not req.stream:
            ans = kb.chat(turns, **args)
            a.detail(model=req.model, kind=ans.kind, question=ans.question[:200], **grounding_detail(ans))
            return {"id": cid, "object": "chat.completion", "created": created, "model": req.model,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": ans.answer + _tail(ans)},
                                 "finish_reason": "stop", "logprobs": None}],
                    "usage": _usage(ans), **_extras(ans)}
        a.defer()  # the stream records its own outcome when it ends
        stream = kb.chat_stream(turns, **args)

    def chunk(delta: dict, finish: str | None = None, **extra) -> str:
        body = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": req.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
        return f"data: {json.dumps(body, default=str)}\n\n"

    def events() -> Iterator[str]:
        yield chunk({"role": "assistant", "content": ""})
        sent = False
        with audited(request, "chat", last[:200]) as a:
            a.detail(model=req.model, stream=True, question=stream.retrieval.question[:200])
            try:
                for item in stream:
                    if isinstance(item, AskResult):
                        grounding = grounding_detail(item)
                        a.detail(kind=item.kind, **grounding)
                        if grounding.get("grounded") is False and sent:  # withdraw the streamed text, visibly
                            yield chunk({"content": f"\n\n[{REJECTED_NOTICE}]\n\n{item.answer}"})
                        elif not sent and item.answer:  # the LLM fell back before its first token
                            yield chunk({"content": item.answer})
                        if tail := _tail(item):
                            yield chunk({"content": tail})
                        yield chunk({}, "stop", usage=_usage(item), **_extras(item))
                    elif item:
                        sent = True
                        yield chunk({"content": item})
            except Exception as e:
                a.fail(e)
                yield f"data: {json.dumps({'error': stream_error(e)})}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


@router.post("/v1/embeddings")
def embeddings(req: EmbeddingsRequest, request: Request, kb: ReaderKB) -> dict:
    """Vectors from the knowledge base's own embedder (the space its chunks are searched in), OpenAI style.
    `model`: a served model id or the embedder's id (the response's `model` names the embedder)."""
    if req.model not in MODELS and req.model != kb.embed_model:
        raise ApiError(404, f"model {req.model!r} does not embed here; send one of {', '.join(MODELS)} or "
                       f"{kb.embed_model!r} (the knowledge base's embedder)", "model_not_found", param="model")
    n = 1 if isinstance(req.input, str) else len(req.input)
    with audited(request, "embed", f"{n} text(s)") as a:
        res = kb.embed(req.input, dimensions=req.dimensions)
        a.detail(model=res.model, count=len(res.vectors))
    if req.encoding_format == "base64":
        data: list[Any] = [base64.b64encode(np.asarray(v, dtype="<f4").tobytes()).decode("ascii") for v in res.vectors]
    else:
        data = res.vectors
    return {"object": "list", "model": res.model,
            "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(data)],
            "usage": {"prompt_tokens": res.tokens, "total_tokens": res.tokens}}
