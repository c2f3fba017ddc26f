"""The app factory. The lifespan opens the stores (unless given Services) and warms the models once."""
from __future__ import annotations

import logging
import os
import threading
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from ..ports import Warmable
from ..settings import Settings, get_settings
from . import errors
from .audit import AuditLog, audit_path
from .deps import MetricsObserver
from .jobs import JobManager
from .keys import KeyStore, keystore_path
from .metrics import Metrics
from .middleware import RequestContext
from .routes import admin, analyst, documents, explorer, openai_compat, ops, query, search, sparql, ui
from .state import AppState, RateLimiter

log = logging.getLogger(__name__)

DESCRIPTION = """GraphRAG over a semantic layer. Authenticate with `Authorization: Bearer <key>` or `X-API-Key`
(keys: `kgf keys create --tenant T --role reader`). Every read and write is scoped to the key's tenant.
Errors are `{"error": {"type", "message", "request_id"}}`."""


def warm_up(svc) -> None:
    """Load the models and open the collections now, so the first request is not the slow one."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    svc.embedder.embed(["warm up"])
    if isinstance(svc.extractor, Warmable):
        svc.extractor.warm_up()
    svc.pipeline.ensure_ready()
    svc.retriever.index()


def create_app(settings: Settings | None = None, services=None, announce_url: str | None = None) -> FastAPI:
    """`services` given: the app uses (and does not close) them, as tests do. Otherwise it builds its own."""
    settings = settings or (services.settings if services is not None else get_settings())
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        from ..bootstrap import build_cypher_views, build_services

        own = services is None
        svc = build_services(settings) if own else services
        data_dir = svc.settings.data_dir
        keys = KeyStore(keystore_path(data_dir))
        audit_log = AuditLog(audit_path(data_dir))
        write_lock = threading.Lock()

        def job_done(job) -> None:
            metrics.ingest_jobs.labels(job.state).inc()
            if job.run:
                for outcome in ("added", "replaced", "unchanged"):
                    metrics.ingest_documents.labels(outcome).inc(job.run.get(f"documents_{outcome}", 0))
            metrics.ingest_errors.inc(len(job.errors))
            audit_log.record(action="ingest", outcome=job.state, tenant=job.tenant, who=job.who, target=job.id,
                             detail={"run": (job.run or {}).get("id"), "errors": len(job.errors), "error": job.error})

        jobs = JobManager(svc, data_dir, write_lock, on_done=job_done, keep_per_tenant=settings.api_jobs_keep)
        st = AppState(settings=settings, services=svc, keys=keys, audit=audit_log, jobs=jobs, metrics=metrics,
                      limiter=RateLimiter(settings.api_rate_limit_per_minute), write_lock=write_lock,
                      observer=MetricsObserver(metrics))
        app.state.kgf = st
        build_cypher_views(svc)
        try:
            warm_up(svc)
            st.ready = True
        except Exception as e:  # /readyz reports it; requests that need the model fail with a clear error
            log.error("warm-up failed: %s", e)
            st.warmup_error = f"{type(e).__name__}: {e}"
        jobs.start()
        if announce_url:
            from .serverfile import announce

            announce(data_dir, announce_url)
        if settings.api_open:
            log.warning("KGF_API_OPEN=true: no API keys are checked; every caller is an admin of tenant %r",
                        settings.tenant)
        try:
            yield
        finally:
            if announce_url:
                from .serverfile import withdraw

                withdraw(data_dir)
            jobs.stop()
            keys.close()
            audit_log.close()
            if own:
                svc.close()

    # /docs and /redoc are served from the vendored assets (routes/ui.py), not from a CDN
    app = FastAPI(title="kgfactory", version="0.1.0", description=DESCRIPTION, lifespan=lifespan, docs_url=None,
                  redoc_url=None)
    errors.install(app)
    if settings.api_cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.api_cors_origins, allow_methods=["*"],
                           allow_headers=["*"], expose_headers=["X-Request-ID"])
    app.add_middleware(RequestContext, metrics=metrics, max_body=settings.api_max_body_bytes,
                       max_json=settings.api_max_json_bytes)
    for r in (query, search, documents, analyst, explorer, sparql, openai_compat, admin, ops, ui):
        app.include_router(r.router)
    app.mount(ui.STATIC_PREFIX, ui.static_files(), name="ui-static")
    return app


def data_dir_of(settings: Settings) -> Path:
    return settings.data_dir.expanduser().resolve()
