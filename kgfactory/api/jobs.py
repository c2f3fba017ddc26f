"""Ingest jobs: the request stages files and returns 202; one worker thread in the server ingests them.

One worker, so ingests (and deletes, which take the same write lock) never interleave their writes.
Uploaded files land in `<data_dir>/uploads/<tenant>/<name>` when the job runs, so the document source is
stable per tenant and file name: uploading a changed file of the same name replaces the old version, an
unchanged one is a no-op, and two tenants uploading the same bytes get separate documents.
Jobs live in memory (the lineage of every run is kept in the graph: `kgf runs`); a restart forgets them.
"""
from __future__ import annotations

import logging
import queue
import shutil
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger(__name__)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class Job:
    id: str
    tenant: str
    who: str
    files: list[str]
    tags: list[str]
    state: str = "queued"  # queued, running, succeeded, failed
    created_at: str = field(default_factory=_now)
    started_at: str | None = None
    finished_at: str | None = None
    documents_processed: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)
    run: dict[str, Any] | None = None
    error: str | None = None

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "tenant": self.tenant, "state": self.state, "files": self.files, "tags": self.tags,
                "created_at": self.created_at, "started_at": self.started_at, "finished_at": self.finished_at,
                "progress": {"files": len(self.files), "documents_processed": self.documents_processed},
                "errors": self.errors, "run": self.run, "error": self.error}


class JobManager:
    def __init__(self, services, data_dir: Path, write_lock: threading.Lock,
                 on_done: Callable[[Job], None] | None = None, max_jobs_kept: int = 1000):
        self.services = services
        self.staging = Path(data_dir) / "api" / "staging"
        self.uploads = Path(data_dir) / "uploads"
        self.write_lock = write_lock
        self.on_done = on_done
        self.max_jobs_kept = max_jobs_kept
        self.jobs: dict[str, Job] = {}
        self._q: queue.Queue[Job | None] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        shutil.rmtree(self.staging, ignore_errors=True)  # staged files of jobs a restart forgot

    def start(self) -> None:
        self._thread = threading.Thread(target=self._work, name="kgf-ingest-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        if self._thread is not None:
            self._q.put(None)
            self._thread.join(timeout)
            self._thread = None

    def stage_dir(self, job_id: str) -> Path:
        d = self.staging / job_id
        d.mkdir(parents=True, exist_ok=True)
        return d

    @staticmethod
    def new_id() -> str:
        return "job_" + uuid.uuid4().hex[:16]

    def submit(self, job_id: str, tenant: str, who: str, files: list[str], tags: list[str]) -> Job:
        job = Job(id=job_id, tenant=tenant, who=who, files=files, tags=tags)
        with self._lock:
            self.jobs[job.id] = job
            if len(self.jobs) > self.max_jobs_kept:  # forget the oldest finished jobs
                for jid in [j.id for j in self.jobs.values() if j.state in ("succeeded", "failed")][:100]:
                    self.jobs.pop(jid, None)
        self._q.put(job)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self.jobs.get(job_id)

    def list(self, tenant: str) -> list[Job]:
        with self._lock:
            return [j for j in self.jobs.values() if j.tenant == tenant]

    def wait_idle(self, timeout: float = 120.0) -> bool:
        """For tests and shutdown: block until every queued job has run."""
        import time

        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self._lock:
                if all(j.state in ("succeeded", "failed") for j in self.jobs.values()):
                    return True
            time.sleep(0.05)
        return False

    def _work(self) -> None:
        while True:
            job = self._q.get()
            if job is None:
                return
            try:
                self._run(job)
            except Exception as e:  # a failed job must not kill the worker
                log.exception("ingest job %s failed", job.id)
                job.state, job.error = "failed", f"{type(e).__name__}: {e}"
            finally:
                job.finished_at = _now()
                shutil.rmtree(self.staging / job.id, ignore_errors=True)
                if self.on_done:
                    try:
                        self.on_done(job)
                    except Exception:
                        log.exception("job callback failed")

    def _run(self, job: Job) -> None:
        job.state, job.started_at = "running", _now()
        dest = self.uploads / job.tenant
        dest.mkdir(parents=True, exist_ok=True)
        paths = []
        for name in job.files:
            src = self.staging / job.id / name
            target = dest / name
            shutil.move(str(src), str(target))
            paths.append(str(target))

        def progress(event: str, n: int) -> None:
            if event == "document":
                job.documents_processed += n

        with self.write_lock:
            run = self.services.pipeline.ingest(paths, tenant=job.tenant, tags=job.tags, progress=progress)
        prefix = str(dest) + "/"
        job.errors = [{"file": e.source.removeprefix(prefix), "reason": e.reason} for e in run.errors]
        job.run = {"id": run.id, "documents_added": run.documents_added, "documents_replaced": run.documents_replaced,
                   "documents_unchanged": run.documents_unchanged, "chunks": run.chunks, "entities": run.entities,
                   "relations": run.relations, "timings": run.timings}
        job.state = "succeeded"
