"""Issue 14, defect 12: ingest jobs are durable. A `kgf serve` killed (-9) mid-job finds the job again at its next
start and runs it to the end, with exact document counts; a job queued behind it runs after it. Plus the job
table's own rules (re-queue order, retention per tenant), on its own."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import kgfactory

from api_support import free_port, h, make_keys, stop_gracefully, wait_ready

pytestmark = pytest.mark.timeout(600)
CODE = Path(kgfactory.__file__).resolve().parents[1]  # the kgfactory under test, for child processes
N = 400  # texts in the long job: enough groups (64 documents each) that it is caught running


def _serve(data: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "KGF_DATA_DIR": str(data), "KGF_SPACY_MODEL": "blank", "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": str(CODE)}
    return subprocess.Popen([sys.executable, "-m", "kgfactory.cli.main", "serve", "--port", str(port),
                             "--log-format", "text"], env=env, cwd=CODE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _texts(n: int, prefix: str) -> list[dict]:
    return [{"title": f"{prefix} {i}", "text": f"{prefix} report {i}: Company{i} Holdings was founded by Person{i} "
                                             f"in City{i % 17}. Company{i} Holdings builds product line {i}."}
            for i in range(n)]


def test_a_job_survives_kill_9_and_finishes_with_exact_counts(tmp_path):
    from kgfactory.graph.falkordb_server import kill_stale

    data = tmp_path / "data"
    keys = make_keys(data)
    key = keys["a_admin"]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = _serve(data, port)
    try:
        wait_ready(proc, url)
        with httpx.Client(base_url=url, timeout=60, headers=h(key)) as c:
            r = c.post("/v1/documents/texts", json={"texts": _texts(N, "Long")})
            assert r.status_code == 202, r.text
            long_id = r.json()["id"]
            r = c.post("/v1/documents/texts", json={"texts": _texts(3, "Short")})
            assert r.status_code == 202, r.text
            short_id = r.json()["id"]
            end = time.monotonic() + 300
            while True:  # catch the long job running, part-way through
                j = c.get(f"/v1/jobs/{long_id}").json()
                if j["state"] == "running" and j["progress"]["documents_processed"] > 0:
                    break
                assert j["state"] in ("queued", "running") and time.monotonic() < end, j
                time.sleep(0.05)
        assert j["progress"]["documents_processed"] < N
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

        proc = _serve(data, port)
        wait_ready(proc, url)
        with httpx.Client(base_url=url, timeout=60, headers=h(key)) as c:
            jobs = {j["id"]: j for j in c.get("/v1/jobs").json()}
            assert set(jobs) == {long_id, short_id}, jobs  # neither was forgotten
            end = time.monotonic() + 400
            while any(j["state"] in ("queued", "running") for j in jobs.values()):
                assert time.monotonic() < end, jobs
                time.sleep(0.3)
                jobs = {j["id"]: j for j in c.get("/v1/jobs").json()}
            long_job, short_job = jobs[long_id], jobs[short_id]
            assert long_job["state"] == "succeeded" and long_job["errors"] == [] and long_job["restarts"] == 1, long_job
            run = long_job["run"]
            # ingest is idempotent: what the killed attempt completed is 'unchanged' now, the rest is added
            assert run["documents_added"] + run["documents_unchanged"] == N and run["documents_unchanged"] > 0, run
            assert short_job["state"] == "succeeded" and short_job["restarts"] == 0
            assert short_job["run"]["documents_added"] == 3
            assert short_job["started_at"] >= long_job["finished_at"]  # queued jobs keep their order
            docs = c.get("/v1/documents").json()
            assert len(docs) == N + 3 and {d["status"] for d in docs} == {"complete"}
            assert len({d["title"] for d in docs}) == N + 3
            assert c.get("/v1/documents?status=pending").json() == []
        staging = data / "api" / "staging"
        assert not staging.exists() or not any(staging.iterdir())  # inputs kept until the job ended, not after
    finally:
        stop_gracefully(proc)
        kill_stale(data)  # the killed server's graph engine outlives it; the second one re-attached to it


# --- the table on its own -------------------------------------------------------------------------------
def test_running_jobs_are_queued_again_in_order_and_queued_ones_kept(tmp_path):
    from kgfactory.api.job_store import Job, JobStore

    s = JobStore(tmp_path / "jobs.sqlite")
    for i in range(3):
        s.add(Job(id=f"j{i}", tenant="acme", who="t", files=[f"f{i}.txt"], tags=[]))
    first = s.claim_next()
    assert first.id == "j0" and first.state == "running" and first.started_at
    s.progress("j0", 7)
    s.close()  # the process dies with j0 running

    s = JobStore(tmp_path / "jobs.sqlite")
    assert s.requeue_interrupted() == ["j0"]
    j0 = s.get("j0")
    assert j0.state == "queued" and j0.restarts == 1 and j0.documents_processed == 0 and j0.started_at is None
    assert [s.claim_next().id for _ in range(3)] == ["j0", "j1", "j2"] and s.claim_next() is None
    s.close()


def test_finished_jobs_are_bounded_per_tenant(tmp_path):
    from kgfactory.api.job_store import Job, JobStore

    s = JobStore(tmp_path / "jobs.sqlite", keep_per_tenant=3)
    for tenant in ("acme", "globex"):
        for i in range(5):
            s.add(Job(id=f"{tenant}{i}", tenant=tenant, who="t", files=[], tags=[]))
    s.add(Job(id="acme-queued", tenant="acme", who="t", files=[], tags=[]))
    for _ in range(10):
        j = s.claim_next()
        j.state, j.finished_at = "succeeded", "2030-01-01T00:00:00+00:00"
        s.finish(j)
    assert [j.id for j in s.list("acme")] == ["acme2", "acme3", "acme4", "acme-queued"]  # unfinished never dropped
    assert [j.id for j in s.list("globex")] == ["globex2", "globex3", "globex4"]
    assert s.get("acme0") is None and s.active() == 1
    s.close()
