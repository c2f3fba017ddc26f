"""Ingest jobs on disk: `<data_dir>/api/jobs.sqlite` (WAL), one row per job, so a restart loses none.

A job's input files wait in `<data_dir>/api/staging/<job id>/` until it runs, then move to
`<data_dir>/uploads/<tenant>/<name>` (see jobs.py). The table is bounded: finished jobs beyond the newest
`keep_per_tenant` of a tenant are dropped (KGF_API_JOBS_KEEP).
"""
from __future__ import annotations

import builtins
import json
import sqlite3
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

STATES = ("queued", "running", "succeeded", "failed")
FINISHED = ("succeeded", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,     -- submission order: the worker takes queued jobs by it
    id TEXT NOT NULL UNIQUE, tenant TEXT NOT NULL, who TEXT, state TEXT NOT NULL,
    files TEXT NOT NULL, tags TEXT NOT NULL,   -- JSON lists: file names (in staging, then uploads/<tenant>/)
    created_at TEXT NOT NULL, started_at TEXT, finished_at TEXT,
    documents_processed INTEGER NOT NULL DEFAULT 0,
    errors TEXT NOT NULL DEFAULT '[]', run TEXT, error TEXT,
    restarts INTEGER NOT NULL DEFAULT 0);      -- times a server restart found it running and queued it again
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, seq);
CREATE INDEX IF NOT EXISTS jobs_tenant ON jobs (tenant, seq);
"""
_COLUMNS = ("id", "tenant", "who", "state", "files", "tags", "created_at", "started_at", "finished_at",
            "documents_processed", "errors", "run", "error", "restarts")


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class Job:
    id: str
    tenant: str
    who: str
    files: list[str]
    tags: list[str]
    state: str = "queued"  # queued, running, succeeded, failed
    created_at: str = field(default_factory=now)
    started_at: str | None = None
    finished_at: str | None = None
    documents_processed: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)
    run: dict[str, Any] | None = None
    error: str | None = None
    restarts: int = 0

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "tenant": self.tenant, "state": self.state, "files": self.files, "tags": self.tags,
                "created_at": self.created_at, "started_at": self.started_at, "finished_at": self.finished_at,
                "progress": {"files": len(self.files), "documents_processed": self.documents_processed},
                "errors": self.errors, "run": self.run, "error": self.error, "restarts": self.restarts}


def _job(row: tuple) -> Job:
    d = dict(zip(_COLUMNS, row))
    for k in ("files", "tags", "errors"):
        d[k] = json.loads(d[k])
    d["run"] = json.loads(d["run"]) if d["run"] else None
    return Job(**d)


class JobStore:
    """The jobs table. One connection shared under a lock (the API's threads and the worker)."""

    def __init__(self, path: Path, keep_per_tenant: int = 1000):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.keep_per_tenant = keep_per_tenant
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a job the API answered 202 for survives a power cut
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def _select(self, where: str, args: tuple = ()) -> list[Job]:
        with self._lock:
            rows = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM jobs {where}", args).fetchall()
        return [_job(r) for r in rows]

    def add(self, job: Job) -> None:
        with self._lock:
            self._db.execute("INSERT INTO jobs (id, tenant, who, state, files, tags, created_at) VALUES (?,?,?,?,?,?,?)",
                             (job.id, job.tenant, job.who, job.state, json.dumps(job.files), json.dumps(job.tags),
                              job.created_at))

    def get(self, job_id: str) -> Job | None:
        found = self._select("WHERE id = ?", (job_id,))
        return found[0] if found else None

    def list(self, tenant: str) -> list[Job]:
        return self._select("WHERE tenant = ? ORDER BY seq", (tenant,))

    def active(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')").fetchone()[0]

    def pending_ids(self) -> set[str]:
        with self._lock:
            return {r[0] for r in self._db.execute("SELECT id FROM jobs WHERE state IN ('queued', 'running')")}

    def requeue_interrupted(self) -> builtins.list[str]:  # in the class body `list` is the method above
        """At start-up: jobs a dead server left 'running' go back to the queue, in their place (ingest is
        idempotent: unchanged documents are skipped and half-written ones repaired)."""
        with self._lock:
            ids = [r[0] for r in self._db.execute("SELECT id FROM jobs WHERE state = 'running' ORDER BY seq")]
            self._db.execute("UPDATE jobs SET state = 'queued', started_at = NULL, documents_processed = 0, "
                             "errors = '[]', restarts = restarts + 1 WHERE state = 'running'")
        return ids

    def claim_next(self) -> Job | None:
        """The oldest queued job, now marked running; None when the queue is empty."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT seq FROM jobs WHERE state = 'queued' ORDER BY seq LIMIT 1").fetchone()
                if row is not None:
                    self._db.execute("UPDATE jobs SET state = 'running', started_at = ? WHERE seq = ?", (now(), row[0]))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        if row is None:
            return None
        return self._select("WHERE seq = ?", (row[0],))[0]

    def progress(self, job_id: str, documents_processed: int) -> None:
        with self._lock:
            self._db.execute("UPDATE jobs SET documents_processed = ? WHERE id = ?", (documents_processed, job_id))

    def finish(self, job: Job) -> None:
        """Record the outcome, then drop the tenant's finished jobs beyond the newest keep_per_tenant."""
        with self._lock:
            self._db.execute("UPDATE jobs SET state = ?, finished_at = ?, documents_processed = ?, errors = ?, "
                             "run = ?, error = ? WHERE id = ?",
                             (job.state, job.finished_at, job.documents_processed, json.dumps(job.errors),
                              json.dumps(job.run) if job.run is not None else None, job.error, job.id))
            self._db.execute("DELETE FROM jobs WHERE tenant = ? AND state IN ('succeeded', 'failed') AND seq NOT IN "
                             "(SELECT seq FROM jobs WHERE tenant = ? AND state IN ('succeeded', 'failed') "
                             "ORDER BY seq DESC LIMIT ?)", (job.tenant, job.tenant, self.keep_per_tenant))

    def close(self) -> None:
        with self._lock:
            self._db.close()


def jobs_path(data_dir: Path) -> Path:
    return Path(data_dir) / "api" / "jobs.sqlite"
