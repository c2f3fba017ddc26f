"""Retrieve and answer for one tenant; shared by /v1/query, /v1/search and /v1/chat/completions.

The tenant filter is always the caller's; the request cannot widen it. Answerers that take `tenant=` (the
LLM answerer charges the tenant's token budget) get it; ones that can `stream` stream, the others send the
final text as one piece.
"""
from __future__ import annotations

import inspect
from typing import Any, Iterator

from ..types import Answer
from .keys import Principal
from .state import AppState


REJECTED_NOTICE = ("The generated text above is withdrawn: the groundedness gate found it not supported by its "
                   "sources. The answer below is quoted from the sources instead.")


def grounding_detail(ans: Answer) -> dict:
    """The gate's decision for the audit log: {} when no gate ran (extractive answer, gate off)."""
    g = getattr(ans, "grounding", None)
    if g is None:
        return {}
    return {"grounded": g.passed, "grounding_reasons": [r[:200] for r in g.reasons[:4]],
            "supported_share": g.supported_share}


def retrieve(st: AppState, p: Principal, question: str, mode: str, top_k: int, filters: dict[str, Any] | None):
    f = {k: v for k, v in (filters or {}).items() if v}
    f["tenant"] = p.tenant
    result = st.services.retriever.search(question, mode=mode, top_k=top_k, filters=f)
    st.metrics.observe_timings(result.timings)
    return result


def _takes_tenant(fn) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "tenant" in params or any(x.kind is inspect.Parameter.VAR_KEYWORD for x in params.values())


def answer(st: AppState, result, tenant: str) -> Answer:
    fn = st.services.answerer.answer
    ans = fn(result, tenant=tenant) if _takes_tenant(fn) else fn(result)
    st.metrics.observe_usage(getattr(ans, "usage", None))
    st.metrics.queries.labels(result.mode, ans.kind).inc()
    return ans


def stream(st: AppState, result, tenant: str) -> Iterator[str | Answer]:
    """Token strings, then the final Answer."""
    fn = getattr(st.services.answerer, "stream", None)
    if fn is None:
        ans = answer(st, result, tenant)
        yield ans.text
        yield ans
        return
    for item in (fn(result, tenant=tenant) if _takes_tenant(fn) else fn(result)):
        if isinstance(item, Answer):
            st.metrics.observe_usage(getattr(item, "usage", None))
            st.metrics.queries.labels(result.mode, item.kind).inc()
        yield item
