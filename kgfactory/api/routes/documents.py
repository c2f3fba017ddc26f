"""Documents and ingest jobs: uploads and texts -> 202 + job id; list, read and delete documents.

Another tenant's document or job is answered 404, the same as one that does not exist, so ids of other
tenants cannot be probed.
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import asdict
from typing import List

from fastapi import APIRouter, File, Form, Request, UploadFile

from ...errors import NotFoundError
from ...graph.document_view import document_detail
from ...ingest.parsers import SUPPORTED_SUFFIXES
from ...rows import DocumentRow
from ..auth import Ingester, Reader
from ..errors import ApiError
from ..keys import Principal
from ..schemas import JobView, PathId, TextsIngestRequest, has_lone_surrogate
from ..state import audit, get_state
from ..uploads import remove_copy

router = APIRouter(tags=["documents and ingest"])
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._()+-]{0,199}$")


def _safe_name(name: str | None) -> str:
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not base or not _NAME.match(base) or base in (".", ".."):
        raise ApiError(400, f"file name {name!r} is not usable: use letters, digits, spaces and ._()+- "
                            "(at most 200 characters)")
    suffix = "." + base.rsplit(".", 1)[-1].lower() if "." in base else ""
    if suffix not in SUPPORTED_SUFFIXES:
        raise ApiError(415, f"{base}: unsupported file type {suffix or '(no extension)'}; supported: "
                            f"{', '.join(sorted(SUPPORTED_SUFFIXES))}", "unsupported_media_type")
    return base


def _tags(tags: list[str]) -> list[str]:
    for t in tags:
        if not t or len(t) > 100:
            raise ApiError(422, f"tag {t!r}: tags are 1-100 characters")
        if any(ord(ch) < 32 for ch in t) or has_lone_surrogate(t):
            raise ApiError(422, f"tag {t.encode('utf-8', 'backslashreplace').decode()!r}: tags hold no control "
                                "characters or unpaired surrogates")
    return tags


def _job_view(job) -> dict:
    return job.view()


@router.post("/v1/documents", status_code=202, response_model=JobView)
def upload(request: Request, files: List[UploadFile] = File(..., description="Documents: .txt .md .html .pdf .json .jsonl"),
           tags: List[str] = Form(default=[], description="Tags for every document (repeat the field)."),
           p: Principal = Ingester):
    """Upload files to ingest. Returns 202 with a job; poll GET /v1/jobs/{id} for progress and per-file errors."""
    st = get_state(request)
    _tags(tags)
    names = [_safe_name(f.filename) for f in files]
    if len(set(names)) != len(names):
        raise ApiError(400, "the same file name appears twice in one upload")
    job_id = st.jobs.new_id()
    stage = st.jobs.stage_dir(job_id)
    limit = st.settings.max_file_bytes
    try:
        for f, name in zip(files, names):
            size = 0
            with open(stage / name, "wb") as out:
                while chunk := f.file.read(1 << 20):
                    size += len(chunk)
                    if size > limit:
                        raise ApiError(413, f"{name} is larger than the {limit} byte limit (KGF_MAX_FILE_BYTES)",
                                       "too_large")
                    out.write(chunk)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    job = st.jobs.submit(job_id, p.tenant, p.name, names, tags)
    audit(request, p, "ingest", "accepted", target=job.id, status=202, detail={"files": names, "tags": tags})
    return _job_view(job)


@router.post("/v1/documents/texts", status_code=202, response_model=JobView)
def ingest_texts(req: TextsIngestRequest, request: Request, p: Principal = Ingester):
    """Ingest texts sent as JSON. A text's title names it: sending the same title again replaces that text."""
    st = get_state(request)
    _tags(req.tags)
    job_id = st.jobs.new_id()
    stage = st.jobs.stage_dir(job_id)
    names = []
    for t in req.texts:
        slug = re.sub(r"[^A-Za-z0-9]+", "-", t.title).strip("-")[:60] or "text"
        name = f"{slug}-{hashlib.sha256(t.title.encode()).hexdigest()[:10]}.json"
        if name in names:
            shutil.rmtree(stage, ignore_errors=True)
            raise ApiError(400, f"title {t.title!r} appears twice in one request")
        rec = {"title": t.title, "text": t.text, **{k: v for k, v in t.metadata.items() if k not in ("title", "text")}}
        (stage / name).write_text(json.dumps(rec, ensure_ascii=False), encoding="utf-8")
        names.append(name)
    job = st.jobs.submit(job_id, p.tenant, p.name, names, req.tags)
    audit(request, p, "ingest", "accepted", target=job.id, status=202,
          detail={"texts": [t.title[:80] for t in req.texts][:50], "tags": req.tags})
    return _job_view(job)


@router.get("/v1/jobs", response_model=list[JobView])
def list_jobs(request: Request, p: Principal = Reader):
    """This tenant's ingest jobs, oldest first (kept across restarts; the newest KGF_API_JOBS_KEEP finished)."""
    return [_job_view(j) for j in get_state(request).jobs.list(p.tenant)]


@router.get("/v1/jobs/{job_id}", response_model=JobView)
def get_job(job_id: PathId, request: Request, p: Principal = Reader):
    """State, progress (documents processed) and per-file errors of an ingest job."""
    job = get_state(request).jobs.get(job_id)
    if job is None or job.tenant != p.tenant:
        raise NotFoundError(f"no ingest job {job_id!r} (see GET /v1/jobs; the newest KGF_API_JOBS_KEEP finished "
                            "jobs of a tenant are kept)")
    return _job_view(job)


@router.get("/v1/documents")
def list_documents(request: Request, status: str | None = None, p: Principal = Reader) -> list[dict]:
    """This tenant's documents (status: complete, pending or deleting)."""
    if status is not None and status not in ("complete", "pending", "deleting"):
        raise ApiError(422, f"status {status!r}: use complete, pending or deleting")
    return [asdict(d) for d in get_state(request).services.graph.list_documents(tenant=p.tenant, status=status)]


def _own_document(request: Request, p: Principal, doc_id: str) -> DocumentRow:
    if len(doc_id) > 200:
        raise NotFoundError("no document with that id")
    doc = get_state(request).services.graph.get_document(doc_id)
    if doc is None or doc.tenant != p.tenant:
        raise NotFoundError(f"no document {doc_id!r} (see GET /v1/documents)")
    return doc


@router.get("/v1/documents/{doc_id}")
def get_document(doc_id: PathId, request: Request, p: Principal = Reader) -> dict:
    """A document with its chunks (in order) and the entities they mention."""
    return document_detail(get_state(request).services.graph, _own_document(request, p, doc_id))


@router.delete("/v1/documents/{doc_id}")
def delete_document(doc_id: PathId, request: Request, p: Principal = Ingester) -> dict:
    """Remove the document and everything only it contributed (vectors, chunks, mentions, relations, orphans),
    and the uploaded file it came from once no other document comes from that file."""
    st = get_state(request)
    try:
        doc = _own_document(request, p, doc_id)
        with st.write_lock:
            rep = st.services.pipeline.delete(doc_id)
            removed = remove_copy(st.services.settings.data_dir, doc, st.services.graph) if rep.found else None
    except Exception as e:
        audit(request, p, "delete", "not_found" if isinstance(e, NotFoundError) else "error", target=doc_id,
              detail={"error": str(e)[:300]})
        raise
    audit(request, p, "delete", "ok", target=doc_id, detail={"chunks": rep.chunks, "entities": rep.entities,
                                                             "upload_removed": removed is not None})
    return {"id": doc_id, "deleted": rep.found, "chunks": rep.chunks, "orphaned_entities_removed": rep.entities,
            "upload_removed": removed is not None}
