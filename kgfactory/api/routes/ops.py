"""Operations: /healthz (the process answers), /readyz (each store, the model, the LLM endpoint), /metrics."""
from __future__ import annotations

import concurrent.futures as cf
import time

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from ..deps import State

router = APIRouter(tags=["operations"])
# a check stuck on an engine that does not answer holds its worker until the call deadline: room for more
_pool = cf.ThreadPoolExecutor(max_workers=8, thread_name_prefix="kgf-readyz")


@router.get("/healthz")
def healthz() -> dict:
    """Liveness: the process is up and serving."""
    return {"status": "ok"}


def _check(fn, timeout: float = 5.0) -> dict:
    t = time.perf_counter()
    try:
        detail = _pool.submit(fn).result(timeout=timeout)
        return {"ok": True, "ms": round((time.perf_counter() - t) * 1000, 1), **({"detail": detail} if detail else {})}
    except cf.TimeoutError:
        return {"ok": False, "error": f"no answer within {timeout:.0f} s"}
    except Exception as e:
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}


@router.get("/readyz")
def readyz(st: State) -> JSONResponse:
    """Readiness: models warmed, graph and vector stores answer, the LLM endpoint (when configured) lists models."""
    svc = st.services
    checks = {
        "models": {"ok": st.ready, **({"error": st.warmup_error} if st.warmup_error else {})},
        # the retriever's graph index: its revision and how it last caught up (incremental patch or full load);
        # replica: the index's revision next to the store's, the lag, and whether the last catch-up was a patch
        "graph": _check(lambda: {"revision": svc.graph.revision(), "index": dict(svc.retriever.last_refresh) if svc.retriever else {},
                                 **({"replica": svc.retriever.replica_status()} if svc.retriever else {})}),
        "vectors": _check(lambda: {"chunks": svc.vectors.count("chunks")}),
    }
    llm = getattr(svc, "llm", None)
    if llm is not None:
        checks["llm"] = _check(lambda: {"models": llm.list_models()[:5]})
    ok = all(c["ok"] for c in checks.values())
    return JSONResponse({"status": "ready" if ok else "not ready", "checks": checks}, status_code=200 if ok else 503)


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}})
def metrics(st: State) -> Response:
    """Prometheus metrics: request latency per route, retrieval stage latency, ingest counts, errors, LLM tokens."""
    st.metrics.jobs_queued.set(st.jobs.active())
    return Response(st.metrics.render(), media_type=st.metrics.content_type)
