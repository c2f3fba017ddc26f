"""Distributed ingest on Ray (issue 19): a local Ray (2 CPUs) ingesting into server stores (the Milvus 2.3.5
server, a FalkorDB server on loopback) gives the in-process ingest's documents, chunks, entities, edges and
vectors; a spaCy actor killed in the middle of a batch is restarted by Ray and the result is still exact; the
embedded default is refused before anything is written. One Ray session for the module (start-up is slow)."""
from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="the Ray leg needs the [ray] extra (pip install 'kgfactory[ray]')")
pytest.importorskip("ray.data", reason="the Ray leg needs ray[data] (pip install 'kgfactory[ray]')")

pytestmark = pytest.mark.timeout(600)

GROUP = 4  # documents per group: small, so both engines cut the corpus into several groups
VARYING = {"ingested_at", "run_id", "completed_at", "updated_at", "created_at"}  # per run, not content


@pytest.fixture(scope="module")
def ray_session():
    tmp = tempfile.mkdtemp(prefix="kgfray", dir="/tmp")  # short: Ray's Unix sockets live under it
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _temp_dir=tmp, _node_ip_address="127.0.0.1")
    yield
    ray.shutdown()
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def falkordb_server(tmp_path_factory):
    from _servers import FalkorDBServer

    srv = FalkorDBServer(tmp_path_factory.mktemp("falkordb-server")).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, sample_dir_path):
    """The sample four times over (other paths, so other documents): 24 documents, several groups and batches."""
    root = tmp_path_factory.mktemp("corpus")
    for copy in "abcd":
        shutil.copytree(sample_dir_path, root / copy)
    return root


@pytest.fixture(scope="module")
def sample_dir_path():
    from kgfactory.cli.main import sample_dir

    return Path(sample_dir())


def _services(**settings):
    from kgfactory.bootstrap import build_services
    from kgfactory.settings import Settings

    svc = build_services(Settings(**settings))
    svc.pipeline.group_size = GROUP
    return svc


def _server_services(tmp: Path, milvus_server, falkordb_server, name: str):
    from pymilvus import MilvusClient

    client = MilvusClient(uri=milvus_server.uri)
    client.create_database(name)
    client.close()
    return _services(data_dir=tmp, milvus_uri=milvus_server.uri, milvus_db=name, falkordb_url=falkordb_server.url,
                     graph_name=name)


def _snapshot(svc) -> dict:
    """Everything stored, comparable across runs: nodes and edges by content, vector ids, the vectors."""
    from kgfactory.graph.cypher import VIEW_LABELS

    snap: dict = {}
    for label in VIEW_LABELS:
        snap[label] = sorted(repr(sorted((k, v) for k, v in n.props.items() if k not in VARYING))
                             for n in svc.graph.export_view_nodes(label, "default"))
        snap[f"{label} edges"] = sorted(repr((e.a, e.type, e.b, sorted((e.props or {}).items())))
                                        for e in svc.graph.export_view_edges(label, "default"))
    snap["stats"] = svc.graph.stats()
    for kind in ("chunks", "entities"):
        ids, vecs, _ = svc.vectors.export_vectors(kind)
        order = np.argsort(ids)
        snap[f"{kind} ids"] = [ids[i] for i in order]
        snap[f"{kind} vectors"] = vecs[order]
    return snap


def _assert_same(got: dict, want: dict) -> None:
    for key in want:
        if key.endswith("vectors"):  # batching changes the last bits of a float, never more
            assert got[key].shape == want[key].shape, key
            assert np.allclose(got[key], want[key], atol=1e-4), key
        else:
            assert got[key] == want[key], f"{key} differs: Ray {len(got[key])} vs in-process {len(want[key])}"


@pytest.fixture(scope="module")
def in_process(tmp_path_factory, sample_dir_path, corpus):
    """The in-process ingest (the embedded default) of the sample and of the larger corpus."""
    out = {}
    for name, path in (("sample", sample_dir_path), ("corpus", corpus)):
        svc = _services(data_dir=tmp_path_factory.mktemp(f"local-{name}"))
        try:
            run = svc.pipeline.ingest([str(path)])
            out[name] = (run, _snapshot(svc))
        finally:
            svc.close()
    return out


def _run_counts(run) -> tuple:
    return (run.documents_added, run.documents_unchanged, run.chunks, run.entities, run.relations, len(run.errors))


def test_ray_ingest_equals_in_process_ingest(ray_session, milvus_server, falkordb_server, in_process, tmp_path,
                                             sample_dir_path):
    from kgfactory.sdk.local import KnowledgeBase

    svc = _server_services(tmp_path, milvus_server, falkordb_server, "ray_same")
    try:
        with KnowledgeBase(svc, own=False) as kb:
            res = kb.ingest([str(sample_dir_path)], engine="ray")
        assert res.ok and not res.errors, res
        run = svc.graph.list_runs(1)[0]  # the lineage record the driver wrote
        want_run, want = in_process["sample"]
        assert _run_counts(run) == _run_counts(want_run)
        assert run.embed_model == want_run.embed_model and run.extractor == want_run.extractor
        got = _snapshot(svc)
        _assert_same(got, want)
        assert got["stats"]["Document"] == 6 and got["stats"]["Entity"] > 20
        # a second Ray run finds every document complete: nothing re-written
        with KnowledgeBase(svc, own=False) as kb:
            again = kb.ingest([str(sample_dir_path)], engine="ray")
        assert again.jobs[0].run["documents_unchanged"] == 6 and again.jobs[0].run["documents_added"] == 0
        _assert_same(_snapshot(svc), want)
    finally:
        svc.close()


def _kill_spacy_actor_mid_batch(stop: threading.Event, killed: list[int]) -> None:
    """SIGKILL the spaCy actor's process while it is working on a batch (its title ends in `.submit` then)."""
    import psutil

    pid = None
    while not stop.is_set():
        if pid is None:
            for p in psutil.process_iter(["cmdline"]):
                if " ".join(p.info["cmdline"] or []).startswith("ray::MapWorker(MapBatches(SpacyActor))"):
                    pid = p.pid
                    break
            time.sleep(0.02)
            continue
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            pid = None
            continue
        if b".submit" in title:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            return
        time.sleep(0.001)


def test_a_worker_killed_mid_batch_is_retried_and_the_result_is_exact(ray_session, milvus_server, falkordb_server,
                                                                      in_process, tmp_path, corpus):
    from kgfactory.ingest.ray_engine import RayOptions, ray_ingest

    svc = _server_services(tmp_path, milvus_server, falkordb_server, "ray_killed")
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=_kill_spacy_actor_mid_batch, args=(stop, killed), daemon=True)
    killer.start()
    try:
        run = ray_ingest(svc, [str(corpus)], options=RayOptions(workers=1, batch_docs=2))
        stop.set()
        killer.join(5)
        assert killed, "the spaCy actor was never caught working on a batch: nothing was tested"
        want_run, want = in_process["corpus"]
        assert _run_counts(run) == _run_counts(want_run) and run.documents_added == 24
        _assert_same(_snapshot(svc), want)  # exact counts, no duplicate node, edge or vector
    finally:
        stop.set()
        svc.close()


def test_embedded_default_is_refused_with_the_settings_to_use(tmp_path, sample_dir_path):
    from typer.testing import CliRunner

    from kgfactory.cli.main import app
    from kgfactory.sdk.errors import KGFactoryError
    from kgfactory.sdk.local import KnowledgeBase

    with KnowledgeBase.open(tmp_path / "data") as kb:
        with pytest.raises(KGFactoryError) as e:  # the layer's ConfigError, as the SDK raises it
            kb.ingest([str(sample_dir_path)], engine="ray")
        for name in ("KGF_MILVUS_URI", "KGF_FALKORDB_URL", "KGF_NEO4J_URI", "Milvus Lite", "embedded FalkorDB"):
            assert name in str(e.value)
        assert kb.documents() == []
    res = CliRunner().invoke(app, ["ingest", "--sample", "--engine", "ray", "-d", str(tmp_path / "cli")])
    assert res.exit_code != 0 and "KGF_MILVUS_URI" in res.output, res.output
