"""Ingest jobs: the request stages files and returns 202; one worker thread in the server ingests them.

One worker, so ingests (and deletes, which take the same write lock) never interleave their writes; it takes
queued jobs in submission order. Jobs are durable (job_store.py: SQLite in the data dir): a server killed
mid-job finds it again at start-up and runs it again (ingest is idempotent: documents already complete are
skipped as unchanged, the half-written one is repaired), and queued jobs resume. A job's files stay in
`<data_dir>/api/staging/<job id>/` until it runs; then they move to `<data_dir>/uploads/<tenant>/<name>`, so the
document source is stable per tenant and file name: uploading a changed file of the same name replaces the old
version, an unchanged one is a no-op, and two tenants uploading the same bytes get separate documents.
"""
from __future__ import annotations

import builtins
import logging
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Callable

from .job_store import Job, JobStore, jobs_path, now
from ..service.documents import run_summary
from ..service.uploads import tenant_dir

log = logging.getLogger(__name__)

__all__ = ["Job", "JobManager"]

_PROGRESS_EVERY_S = 0.5  # how often a running job's progress is written to the table


class JobManager:
    def __init__(self, services, data_dir: Path, write_lock: threading.Lock,
                 on_done: Callable[[Job], None] | None = None, keep_per_tenant: int = 1000):
        self.services = services
        self.data_dir = Path(data_dir)
        self.staging = self.data_dir / "api" / "staging"
        self.write_lock = write_lock
        self.on_done = on_done
        self.store = JobStore(jobs_path(self.data_dir), keep_per_tenant=keep_per_tenant)
        requeued = self.store.requeue_interrupted()
        if requeued:
            log.warning("%d ingest job(s) were running when the server stopped; queued again: %s", len(requeued),
                        ", ".join(requeued))
        self._drop_orphan_staging()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def _drop_orphan_staging(self) -> None:
        """Staged files of no queued job: a request that died before its job was recorded, or a finished job."""
        if not self.staging.is_dir():
            return
        keep = self.store.pending_ids()
        for d in self.staging.iterdir():
            if d.name not in keep:
                shutil.rmtree(d, ignore_errors=True)

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._work, name="kgf-ingest-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        """Let the running job finish (up to `timeout`); queued jobs stay queued for the next start."""
        if self._thread is not None:
            self._stopping.set()
            self._wake.set()
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("ingest job still running at shutdown; it runs again at the next start")
            self._thread = None
        self.store.close()

    def stage_dir(self, job_id: str) -> Path:
        d = self.staging / job_id
        d.mkdir(parents=True, exist_ok=True)
        return d

    @staticmethod
    def new_id() -> str:
        return "job_" + uuid.uuid4().hex[:16]

    def submit(self, job_id: str, tenant: str, who: str, files: list[str], tags: list[str]) -> Job:
        job = Job(id=job_id, tenant=tenant, who=who, files=files, tags=tags)
        self.store.add(job)
        self._wake.set()
        return job

    def get(self, job_id: str) -> Job | None:
        return self.store.get(job_id)

    def list(self, tenant: str) -> list[Job]:
        return self.store.list(tenant)

    def active(self) -> int:
        """Jobs queued or running (the jobs_queued gauge)."""
        return self.store.active()

    def wait_idle(self, timeout: float = 120.0) -> bool:
        """For tests and shutdown: block until every queued job has run."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.store.active() == 0:
                return True
            time.sleep(0.05)
        return False

    def _work(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            job = self.store.claim_next()
            if job is None:
                self._wake.wait(1.0)
                continue
            try:
                self._run(job)
                job.state = "succeeded"
            except Exception as e:  # a failed job must not kill the worker
                log.exception("ingest job %s failed", job.id)
                job.state, job.error = "failed", f"{type(e).__name__}: {e}"
            job.finished_at = now()
            try:
                self.store.finish(job)
            except Exception:
                log.exception("could not record the end of ingest job %s", job.id)
            shutil.rmtree(self.staging / job.id, ignore_errors=True)
            if self.on_done:
                try:
                    self.on_done(job)
                except Exception:
                    log.exception("job callback failed")

    def _inputs(self, job: Job, dest: Path) -> builtins.list[str]:
        """Move the staged files into the tenant's upload folder. A job run again after a restart may find a
        file already moved by its first attempt; one neither staged nor moved is reported, not guessed at."""
        paths = []
        for name in job.files:
            src, target = self.staging / job.id / name, dest / name
            if src.exists():
                shutil.move(str(src), str(target))
            elif not (job.restarts and target.is_file()):
                job.errors.append({"file": name, "reason": "the staged file is gone (removed from "
                                                           f"{self.staging / job.id}); send it again"})
                continue
            paths.append(str(target))
        return paths

    def _run(self, job: Job) -> None:
        dest = tenant_dir(self.data_dir, job.tenant)
        dest.mkdir(parents=True, exist_ok=True)
        paths = self._inputs(job, dest)
        last = [0.0]

        def progress(event: str, n: int) -> None:
            if event == "document":
                job.documents_processed += n
                t = time.monotonic()
                if t - last[0] >= _PROGRESS_EVERY_S:
                    last[0] = t
                    self.store.progress(job.id, job.documents_processed)

        if not paths:
            return
        with self.write_lock:
            run = self.services.pipeline.ingest(paths, tenant=job.tenant, tags=job.tags, progress=progress)
        prefix = str(dest) + "/"
        job.errors += [{"file": e.source.removeprefix(prefix), "reason": e.reason} for e in run.errors]
        job.run = run_summary(run)
