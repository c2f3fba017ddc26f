"""What Client and AsyncClient share: request specs per route, retry policy, SSE parsing, upload batching.

The two clients differ only in how they send a request; everything about what to send and how to read the
answer lives here, once.
"""
from __future__ import annotations

import functools
import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from ..service.limits import SUPPORTED_LIST
from ..errors import InvalidInputError
from ..service.staging import FileLike, TextLike, named_files, text_items
from ..service.walk import expand
from .errors import ValidationError

DEFAULT_URL = "http://127.0.0.1:8765"  # `kgf serve`'s default
DEFAULT_TIMEOUT = 120.0
RETRY_STATUSES = {429, 502, 503, 504}
UPLOAD_BATCH_FILES = 32
UPLOAD_BATCH_BYTES = 16 << 20
TEXT_BATCH = 500



def resolve_url(base_url: str | None) -> str:
    return (base_url or os.environ.get("KGF_API_URL") or DEFAULT_URL).rstrip("/")


def resolve_key(api_key: str | None) -> str | None:
    return api_key if api_key is not None else (os.environ.get("KGF_API_KEY") or None)


def headers_for(api_key: str | None) -> dict[str, str]:
    from .. import __version__

    h = {"User-Agent": f"kgfactory-sdk/{__version__}", "Accept": "application/json"}
    if api_key:
        h["Authorization"] = f"Bearer {api_key}"
    return h


@dataclass
class Retry:
    """Exponential backoff with jitter; a server's Retry-After wins when given (capped at `max_backoff`)."""

    retries: int = 3
    backoff: float = 0.5
    max_backoff: float = 8.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_backoff)
        return min(self.backoff * (2 ** attempt), self.max_backoff) * (0.5 + random.random() / 2)


@dataclass
class Req:
    """One API call. `idempotent` calls are retried on 429/502/503/504 and read timeouts; every call is retried
    when the connection could not be made (nothing was sent) and on 429 (refused before any effect)."""

    method: str
    path: str
    json: Any = None
    params: dict[str, Any] | None = None
    data: dict[str, Any] | None = None
    content: str | bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    files: Callable[[], tuple[list, list]] | None = None  # (parts, opened) per attempt: a retry re-reads the files
    idempotent: bool = True


def retryable_status(req: Req, status: int) -> bool:
    return status == 429 or (req.idempotent and status in RETRY_STATUSES)


# --- routes ------------------------------------------------------------------------------------------------
def _filters(tags: Sequence[str] | None, doc_ids: Sequence[str] | None) -> dict | None:
    f = {}
    if tags:
        f["tag"] = list(tags)
    if doc_ids:
        f["doc_id"] = list(doc_ids)
    return f or None


def query(question: str, mode: str, top_k: int, tags=None, doc_ids=None, stream: bool = False) -> Req:
    body: dict[str, Any] = {"question": question, "mode": mode, "top_k": top_k}
    if (f := _filters(tags, doc_ids)) is not None:
        body["filters"] = f
    if stream:
        body["stream"] = True
    return Req("POST", "/v1/query", json=body, headers={"Accept": "text/event-stream"} if stream else {})


def search(question: str, mode: str, top_k: int, tags=None, doc_ids=None) -> Req:
    """Retrieval only: no answer is generated (so no LLM cost)."""
    body: dict[str, Any] = {"question": question, "mode": mode, "top_k": top_k}
    if (f := _filters(tags, doc_ids)) is not None:
        body["filters"] = f
    return Req("POST", "/v1/search", json=body)


def cypher(query_text: str, params: dict | None, timeout_ms: int | None, max_rows: int | None) -> Req:
    body: dict[str, Any] = {"query": query_text, "params": params or {}}
    if timeout_ms is not None:
        body["timeout_ms"] = timeout_ms
    if max_rows is not None:
        body["max_rows"] = max_rows
    return Req("POST", "/v1/cypher", json=body)


def sparql(query_text: str) -> Req:
    """POST application/sparql-query (no URL length limit); ask for SPARQL JSON, or Turtle for graph results."""
    return Req("POST", "/sparql", content=query_text.encode("utf-8"),
               headers={"Content-Type": "application/sparql-query",
                        "Accept": "application/sparql-results+json, text/turtle;q=0.9"})


def documents(status: str | None) -> Req:
    return Req("GET", "/v1/documents", params={"status": status} if status else None)


def document(doc_id: str) -> Req:
    return Req("GET", f"/v1/documents/{_seg(doc_id)}")


def delete(doc_id: str) -> Req:
    return Req("DELETE", f"/v1/documents/{_seg(doc_id)}", idempotent=False)


def entity(entity_id: str, limit: int) -> Req:
    return Req("GET", f"/v1/entities/{_seg(entity_id)}", params={"limit": limit})


def entity_search(q: str, limit: int, label: str | None) -> Req:
    return Req("GET", "/v1/entities", params={"q": q, "limit": limit, **({"label": label} if label else {})})


def entity_graph(entity_id: str, depth: int, limit: int, types: Sequence[str] | str | None,
                 classes: Sequence[str] | str | None) -> Req:
    params: dict[str, Any] = {"depth": depth, "limit": limit}
    for name, v in (("types", types), ("classes", classes)):
        if v is not None:
            params[name] = v if isinstance(v, str) else ",".join(v)
    return Req("GET", f"/v1/entities/{_seg(entity_id)}/graph", params=params)


def quarantine(limit: int) -> Req:
    return Req("GET", "/v1/ontology/quarantine", params={"limit": limit})


def job(job_id: str) -> Req:
    return Req("GET", f"/v1/jobs/{_seg(job_id)}")


def _seg(s: str) -> str:
    from urllib.parse import quote

    if not s:
        raise ValidationError("an id is required", status=422, type="invalid_request")
    return quote(s, safe="")


def texts_batches(texts: Iterable[TextLike], tags: Sequence[str]) -> list[Req]:
    """Texts as JSON ingest requests, named as the application layer names them (service/staging.py: a title
    names a text, so the same title again replaces it; a bare string is titled by its first words and a hash)."""
    try:
        items = text_items(texts)
    except InvalidInputError as e:  # what the server refuses with 422, refused before sending
        raise ValidationError(str(e), status=422, type="invalid_request") from None
    return [Req("POST", "/v1/documents/texts", json={"texts": items[i:i + TEXT_BATCH], "tags": list(tags)},
                idempotent=False) for i in range(0, len(items), TEXT_BATCH)]


def collect_paths(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files to upload, by the one walker (service/walk.py); a named file of another type, a missing path, or two
    files with one name (the server keys uploads by file name) are refused before sending."""
    out, bad = expand(paths)
    for p, reason in bad:
        unsupported = p.exists()
        raise ValidationError(f"{p}: {reason}", status=415 if unsupported else 400,
                              type="unsupported_media_type" if unsupported else "bad_request")
    seen: dict[str, Path] = {}
    for f in out:
        if f.name in seen and seen[f.name].resolve() != f.resolve():
            raise ValidationError(f"two files named {f.name!r} ({seen[f.name]} and {f}): the server keys uploads "
                                  "by file name, so one would replace the other; rename one", status=400,
                                  type="bad_request")
        seen[f.name] = f
    return out


def upload_batches(paths: list[Path], files: Sequence[FileLike], tags: Sequence[str]) -> list[tuple[Req, int]]:
    """Multipart upload requests of at most UPLOAD_BATCH_FILES files / UPLOAD_BATCH_BYTES each, with file counts."""
    entries: list[tuple[str, Callable[[], Any], int]] = []  # (name, opener, size)
    for p in paths:
        opener = (lambda p=p: open(p, "rb"))
        opener.opens = True  # type: ignore[attr-defined]
        entries.append((p.name, opener, p.stat().st_size))
    try:
        named = named_files(files)
    except InvalidInputError as bad:
        raise ValidationError(str(bad), status=422, type="invalid_request") from None
    for name, body in named:
        if isinstance(body, (bytes, bytearray)):
            data = bytes(body)
            entries.append((name, functools.partial(bytes, data), len(data)))
        else:
            start = body.tell() if hasattr(body, "tell") else 0

            def reopen(b=body, s=start):
                b.seek(s)
                return b

            entries.append((name, reopen, 0))
    reqs: list[tuple[Req, int]] = []
    batch: list[tuple[str, Callable[[], Any], int]] = []
    size = 0
    for e in entries:
        if batch and (len(batch) >= UPLOAD_BATCH_FILES or size + e[2] > UPLOAD_BATCH_BYTES):
            reqs.append(_upload_req(batch, tags))
            batch, size = [], 0
        batch.append(e)
        size += e[2]
    if batch:
        reqs.append(_upload_req(batch, tags))
    return reqs


def _upload_req(batch, tags) -> tuple[Req, int]:
    def files() -> tuple[list, list]:
        """The multipart parts, and the files opened here (to close after the attempt; caller-owned stay open)."""
        parts, opened = [], []
        for name, opener, _ in batch:
            body = opener()
            if getattr(opener, "opens", False):
                opened.append(body)
            parts.append(("files", (name, body)))
        return parts, opened

    return Req("POST", "/v1/documents", data={"tags": list(tags)} if tags else None, files=files,
               idempotent=False), len(batch)


# --- server-sent events ------------------------------------------------------------------------------------
class SSEParser:
    """Incremental server-sent-events parser: feed lines, get (event, parsed JSON data) when an event ends."""

    def __init__(self) -> None:
        self.event: str = "message"
        self.data: list[str] = []

    def feed(self, line: str) -> tuple[str, Any] | None:
        if line == "":
            out = (self.event, json.loads("\n".join(self.data))) if self.data else None
            self.event, self.data = "message", []
            return out
        if line.startswith("event:"):
            self.event = line[6:].strip()
        elif line.startswith("data:"):
            self.data.append(line[5:].lstrip())
        return None

    def end(self) -> tuple[str, Any] | None:
        return self.feed("")


def iter_sse(lines: Iterable[str]) -> Iterator[tuple[str, Any]]:
    """(event, parsed data) from SSE lines; a blank line ends an event."""
    p = SSEParser()
    for line in lines:
        if (ev := p.feed(line)) is not None:
            yield ev
    if (ev := p.end()) is not None:
        yield ev


def ingest_plan(paths, texts, files, tags) -> list[tuple[Req, int]]:
    """Every request an ingest call sends, with how many files/texts each carries."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if isinstance(texts, (str, dict)):
        texts = [texts]
    tags = [tags] if isinstance(tags, str) else list(tags or [])
    plan = upload_batches(collect_paths(paths or []), list(files or []), tags)
    text_list = list(texts or [])
    for i, r in enumerate(texts_batches(text_list, tags)):
        plan.append((r, len(text_list[i * TEXT_BATCH:(i + 1) * TEXT_BATCH])))
    if not plan:
        raise ValidationError("nothing to ingest: give paths, texts or files (a directory with no supported "
                              f"files counts as nothing; supported: {SUPPORTED_LIST})",
                              status=422, type="invalid_request")
    return plan


def progress_of(jobs: list, sizes: list[int]):
    from .models import IngestProgress

    return IngestProgress(documents_processed=sum(int(j.progress.get("documents_processed", 0)) for j in jobs),
                          files_total=sum(sizes), jobs_done=sum(1 for j in jobs if j.done), jobs_total=len(jobs))


def transport_error(e: Exception, req: Req, base_url: str):
    import httpx

    from .errors import TimeoutError, TransportError

    where = f"{req.method} {base_url}{req.path}"
    if isinstance(e, httpx.TimeoutException):
        return TimeoutError(f"{where}: no answer in time ({type(e).__name__}); raise `timeout=` or check the server")
    return TransportError(f"{where}: {type(e).__name__}: {e} (is `kgf serve` running there?)")


def may_retry_transport(e: Exception, req: Req) -> bool:
    import httpx

    if isinstance(e, (httpx.ConnectError, httpx.ConnectTimeout)):
        return True  # nothing reached the server
    return req.idempotent
