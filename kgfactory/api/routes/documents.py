"""Documents and ingest jobs: uploads and texts -> 202 + job id; list, read and delete documents.

Another tenant's document or job is answered 404, the same as one that does not exist, so ids of other
tenants cannot be probed. Ingest runs in the job worker (api/jobs.py) under the write lock; delete takes the
same lock.
"""
from __future__ import annotations

import shutil
from typing import List

from fastapi import APIRouter, File, Form, Request, UploadFile

from ...errors import NotFoundError
from ...service import staging
from ...service.limits import SUPPORTED_LIST
from ...service.results import DeleteResult, DocumentDetail, DocumentInfo, Job
from ..auth import Reader
from ..deps import IngesterKB, ReaderKB, State, audited
from ..errors import ApiError
from ..keys import Principal
from ..schemas import PathId, TextsIngestRequest

router = APIRouter(tags=["documents and ingest"])


def _upload_name(name: str | None) -> str:
    try:
        return staging.upload_name(name)
    except staging.BadUploadName as e:  # HTTP says which: a name no file can have (400), a type not read (415)
        raise ApiError(415, str(e), "unsupported_media_type") if e.unsupported else ApiError(400, str(e)) from e


def _job(job) -> Job:
    return Job.model_validate(job.view())


@router.post("/v1/documents", status_code=202, response_model=Job)
def upload(request: Request, kb: IngesterKB, st: State,
           files: List[UploadFile] = File(..., description=f"Documents: {SUPPORTED_LIST}"),
           tags: List[str] = Form(default=[], description="Tags for every document (repeat the field).")) -> Job:
    """Upload files to ingest. Returns 202 with a job; poll GET /v1/jobs/{id} for progress and per-file errors."""
    staging.check_tags(tags)
    names = [_upload_name(f.filename) for f in files]
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
    with audited(request, "ingest", job_id, ok="accepted", status=202) as a:
        job = st.jobs.submit(job_id, kb.tenant, request.state.principal.name, names, tags)
        a.detail(files=names, tags=tags)
    return _job(job)


@router.post("/v1/documents/texts", status_code=202, response_model=Job)
def ingest_texts(req: TextsIngestRequest, request: Request, kb: IngesterKB, st: State) -> Job:
    """Ingest texts sent as JSON. A text's title names it: sending the same title again replaces that text."""
    job_id = st.jobs.new_id()
    stage = st.jobs.stage_dir(job_id)
    try:
        paths = staging.stage_texts([t.model_dump() for t in req.texts], stage)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    with audited(request, "ingest", job_id, ok="accepted", status=202) as a:
        job = st.jobs.submit(job_id, kb.tenant, request.state.principal.name, [p.name for p in paths], req.tags)
        a.detail(texts=[t.title[:80] for t in req.texts][:50], tags=req.tags)
    return _job(job)


@router.get("/v1/jobs", response_model=list[Job])
def list_jobs(st: State, p: Principal = Reader) -> list[Job]:
    """This tenant's ingest jobs, oldest first (kept across restarts; the newest KGF_API_JOBS_KEEP finished)."""
    return [_job(j) for j in st.jobs.list(p.tenant)]


@router.get("/v1/jobs/{job_id}", response_model=Job)
def get_job(job_id: PathId, st: State, p: Principal = Reader) -> Job:
    """State, progress (documents processed) and per-file errors of an ingest job."""
    job = st.jobs.get(job_id)
    if job is None or job.tenant != p.tenant:
        raise NotFoundError(f"no ingest job {job_id!r} (see GET /v1/jobs; the newest KGF_API_JOBS_KEEP finished "
                            "jobs of a tenant are kept)")
    return _job(job)


@router.get("/v1/documents", response_model=list[DocumentInfo])
def list_documents(kb: ReaderKB, status: str | None = None) -> list[DocumentInfo]:
    """This tenant's documents (status: complete, pending or deleting)."""
    return kb.documents(status)


@router.get("/v1/documents/{doc_id}", response_model=DocumentDetail)
def get_document(doc_id: PathId, kb: ReaderKB) -> DocumentDetail:
    """A document with its chunks (in order) and the entities they mention."""
    return kb.document(doc_id)


@router.delete("/v1/documents/{doc_id}", response_model=DeleteResult)
def delete_document(doc_id: PathId, request: Request, kb: IngesterKB, st: State) -> DeleteResult:
    """Remove the document and everything only it contributed (vectors, chunks, mentions, relations, orphans),
    and the uploaded file it came from once no other document comes from that file."""
    with audited(request, "delete", doc_id) as a, st.write_lock:
        res = kb.delete(doc_id)
        a.detail(chunks=res.chunks, entities=res.orphaned_entities_removed, upload_removed=res.upload_removed)
    return res
