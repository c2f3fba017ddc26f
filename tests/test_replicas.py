"""Two `kgf serve` processes over the same server stores, as API replicas behind a load balancer run: a FalkorDB
server both reach by its socket (KGF_FALKORDB_URL) and the Milvus 2.3.5 server (two processes cannot share a
Milvus Lite file). A document ingested through A is found through B by a patch of B's index from the graph's
change log (B's /readyz says so), a delete through A disappears from B, and a replica further behind than the
log's retention reloads whole and says why. Slow (two servers start): marked `replicas`."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest

from api_support import free_port, stop_gracefully, wait_ready

pytestmark = [pytest.mark.replicas, pytest.mark.timeout(600)]

TEXT = ("Zorblax Quantum was founded by Mira Tanaka in Reykjavik. Mira Tanaka works for Zorblax Quantum as its "
        "chief scientist. Zorblax Quantum builds photonic chips.")
QUESTION = "Who founded Zorblax Quantum?"


@pytest.fixture(scope="module")
def falkordb(tmp_path_factory):
    """A FalkorDB server (the engine `kgf` embeds, started on its own) that both replicas connect to."""
    from kgfactory.graph.falkordb_server import EmbeddedFalkorDB

    server = EmbeddedFalkorDB(tmp_path_factory.mktemp("falkordb"))
    sock = server.start()
    yield f"unix://{sock}"
    server.stop()


def _serve(name: str, root, falkordb: str, milvus_uri: str, **env: str):
    port = free_port()
    full = {**os.environ, "KGF_DATA_DIR": str(root / name), "KGF_FALKORDB_URL": falkordb,
            "KGF_MILVUS_URI": milvus_uri, "KGF_REPLICA_POLL_S": "0.2", "HF_HUB_OFFLINE": "1", **env}
    proc = subprocess.Popen([sys.executable, "-m", "kgfactory.cli.main", "serve", "--open", "--port", str(port)],
                            env=full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return proc, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def replicas(tmp_path_factory, falkordb, milvus_server):
    root = tmp_path_factory.mktemp("replicas")
    a = _serve("a", root, falkordb, milvus_server.uri)
    b = _serve("b", root, falkordb, milvus_server.uri)
    try:
        for proc, url in (a, b):
            wait_ready(proc, url, timeout=300)
        yield a[1], b[1]
    finally:
        stop_gracefully(a[0], b[0])


def _replica(url: str) -> dict:
    return httpx.get(url + "/readyz", timeout=10).json()["checks"]["graph"]["detail"]["replica"]


def _found(url: str, doc_id: str) -> bool:
    r = httpx.post(url + "/v1/search", json={"question": QUESTION, "top_k": 5}, timeout=60)
    assert r.status_code == 200, r.text
    return any(c["doc_id"] == doc_id for c in r.json()["chunks"])


def _wait(cond, timeout: float) -> float:
    """Seconds until cond() holds (polled every 0.1 s); fails past `timeout`."""
    t = time.monotonic()
    while not cond():
        assert time.monotonic() - t < timeout, "timed out"
        time.sleep(0.1)
    return time.monotonic() - t


def _ingest(url: str, title: str, text: str) -> str:
    r = httpx.post(url + "/v1/documents/texts", json={"texts": [{"title": title, "text": text}]}, timeout=60)
    assert r.status_code == 202, r.text
    job = r.json()["id"]
    _wait(lambda: httpx.get(f"{url}/v1/jobs/{job}", timeout=10).json()["state"] in ("succeeded", "failed"), 180)
    assert httpx.get(f"{url}/v1/jobs/{job}", timeout=10).json()["state"] == "succeeded"
    docs = [d for d in httpx.get(url + "/v1/documents", timeout=10).json() if d["title"] == title]
    assert len(docs) == 1
    return docs[0]["id"]


def test_a_write_through_one_replica_is_patched_into_the_other(replicas):
    a, b = replicas
    before = _replica(b)
    doc = _ingest(a, "Zorblax", TEXT)
    # B patches from the change log (polling every 0.2 s); no query is needed to wake it
    caught = _wait(lambda: _replica(b)["lag_revisions"] == 0 and _replica(b)["revision"] > (before["revision"] or 0),
                   30)
    rep = _replica(b)
    assert rep["last_catch_up"] == "patch" and rep["revision"] == rep["store_revision"], rep
    assert _wait(lambda: _found(b, doc), 30) < 30  # the vectors are the shared Milvus server's
    print(f"replica caught up {caught:.2f} s after the ingest job finished")

    assert httpx.delete(f"{a}/v1/documents/{doc}", timeout=60).json()["deleted"] is True
    _wait(lambda: not _found(b, doc), 30)
    assert _replica(b)["last_catch_up"] == "patch"


def test_a_replica_past_the_log_window_reloads_whole(replicas, tmp_path_factory, falkordb, milvus_server):
    """C keeps only one change (KGF_CHANGELOG_RETENTION=1: its own write trims the shared log to one entry) and
    does not follow (KGF_REPLICA_POLL_S=0), so after A's write and its own its next query finds the log short."""
    a, _ = replicas
    root = tmp_path_factory.mktemp("replica-c")
    proc, c = _serve("c", root, falkordb, milvus_server.uri, KGF_CHANGELOG_RETENTION="1", KGF_REPLICA_POLL_S="0")
    try:
        wait_ready(proc, c, timeout=300)
        held = _replica(c)["revision"]
        _ingest(a, "Filler one", "Petra Lind repairs boats in Tromso.")
        _ingest(c, "Filler two", "Quentin Vale sells lanterns in Bergen.")  # trims the log to this one entry
        rep = _replica(c)
        assert rep["lag_revisions"] >= 2 and rep["revision"] == held, rep
        httpx.post(c + "/v1/search", json={"question": "Who repairs boats?"}, timeout=60)  # catches up on use
        rep = _replica(c)
        assert rep["lag_revisions"] == 0 and rep["last_catch_up"] == "reload", rep
        assert "change log does not reach back" in rep["reason"], rep
    finally:
        stop_gracefully(proc)
