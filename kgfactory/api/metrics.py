"""Prometheus metrics, in a registry per app (so several apps in one process, as in tests, never collide)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self):
        r = self.registry = CollectorRegistry()
        self.requests = Histogram("kgf_http_request_duration_seconds", "HTTP request latency by route",
                                  ["method", "route", "status"], buckets=_BUCKETS, registry=r)
        self.errors = Counter("kgf_http_errors_total", "Responses with status >= 400, by route and error kind",
                              ["route", "status", "kind"], registry=r)
        self.retrieval_stage = Histogram("kgf_retrieval_stage_seconds", "Retrieval latency per stage",
                                         ["stage"], buckets=_BUCKETS, registry=r)
        self.queries = Counter("kgf_queries_total", "Questions answered, by mode and answer kind",
                               ["mode", "kind"], registry=r)
        self.searches = Counter("kgf_searches_total", "Retrieval-only searches (/v1/search), by mode", ["mode"],
                                registry=r)
        self.ingest_documents = Counter("kgf_ingest_documents_total", "Documents by ingest outcome",
                                        ["outcome"], registry=r)
        self.ingest_jobs = Counter("kgf_ingest_jobs_total", "Ingest jobs by final state", ["state"], registry=r)
        self.ingest_errors = Counter("kgf_ingest_file_errors_total", "Files or records skipped by ingest", registry=r)
        self.llm_tokens = Counter("kgf_llm_tokens_total", "LLM tokens used by answers", ["type"], registry=r)
        self.jobs_queued = Gauge("kgf_ingest_jobs_pending", "Ingest jobs queued or running", registry=r)

    def observe_timings(self, timings: dict[str, float]) -> None:
        """Retrieval timings arrive in milliseconds."""
        for stage, ms in timings.items():
            if isinstance(ms, (int, float)):
                self.retrieval_stage.labels(stage).observe(ms / 1000.0)

    def observe_usage(self, usage: dict | None) -> None:
        for k in ("prompt_tokens", "completion_tokens"):
            if usage and usage.get(k):
                self.llm_tokens.labels(k.removesuffix("_tokens")).inc(usage[k])

    def render(self) -> bytes:
        return generate_latest(self.registry)
