"""Device-aware retrieval: the torch operators (CUDA's code path, run here on the CPU) rank as scipy does;
batched queries equal one-at-a-time; exact resident search equals the HNSW results on a small collection.
The CUDA leg runs when torch sees a GPU."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from kgfactory.retrieval.compute import ExactIndex, ScipyOps, TorchOps, resolve_device

QUESTIONS = ["Who founded Helios Robotics?", "Where is Helios Robotics headquartered?",
             "Which products does Helios sell?", "Who works for Helios Robotics?"]

devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _random_graph(n_e=400, n_c=600, seed=0):
    rng = np.random.default_rng(seed)
    a = sp.random(n_e, n_e, density=0.01, random_state=rng, format="csr", dtype=np.float32)
    a = (a + a.T).tocsr()
    a.setdiag(0)
    a.eliminate_zeros()
    m = sp.random(n_c, n_e, density=0.01, random_state=rng, format="csr", dtype=np.float32)
    from kgfactory.retrieval.graph_index import _transition

    subjects = (m > 0.8).astype(np.float32).tocsr()  # some links are subject links (asymmetric weights)
    return _transition(a, m, subjects), a, m


@pytest.mark.parametrize("device", devices)
def test_torch_ppr_and_khop_match_scipy(device):
    t, a, m = _random_graph()
    n = t.shape[0]
    rng = np.random.default_rng(1)
    restart = np.zeros((n, 8))
    for b in range(8):
        restart[rng.choice(n, 5, replace=False), b] = rng.random(5)
    restart /= restart.sum(axis=0)
    ref = ScipyOps(t, a, m).ppr(restart, 0.5, 30, 1e-6)
    got = TorchOps(t, a, m, device=device).ppr(restart, 0.5, 30, 1e-6)
    assert ref.shape == got.shape == (n, 8)
    assert np.abs(ref).sum() > 0
    np.testing.assert_allclose(got, ref, atol=2e-6, rtol=1e-3)
    seeds = np.zeros((a.shape[0], 3))
    seeds[[1, 2, 3], [0, 1, 2]] = 1.0
    kref = ScipyOps(t, a, m).khop(seeds, 2, 0.5)
    kgot = TorchOps(t, a, m, device=device).khop(seeds, 2, 0.5)
    np.testing.assert_allclose(kgot, kref, atol=1e-5, rtol=1e-4)


def test_batched_ppr_equals_one_at_a_time():
    t, a, m = _random_graph(seed=3)
    ops = ScipyOps(t, a, m)
    n = t.shape[0]
    restart = np.zeros((n, 4))
    restart[[0, 10, 20, 30], [0, 1, 2, 3]] = 1.0
    batch = ops.ppr(restart, 0.5, 100, 1e-12)
    for b in range(4):
        single = ops.ppr(restart[:, [b]], 0.5, 100, 1e-12)[:, 0]
        np.testing.assert_allclose(batch[:, b], single, atol=1e-10)


@pytest.mark.parametrize("device", devices)
def test_exact_index_topk_and_mask(device):
    rng = np.random.default_rng(0)
    v = rng.normal(size=(500, 32)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    idx = ExactIndex([f"c{i}" for i in range(500)], v, device)
    q = v[[7, 42]]
    hits = idx.search(q, 5)
    assert [h[0][0] for h in hits] == ["c7", "c42"]
    brute = np.argsort(-(v @ v[7]))[:5]
    assert [h for h, _ in hits[0]] == [f"c{i}" for i in brute]
    mask = np.ones(500, dtype=bool)
    mask[7] = False
    assert all(h != "c7" for h, _ in idx.search(q[:1], 5, mask)[0])


def test_resolve_device_cpu_and_auto():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.fixture
def sample_kb(make_services, sample_dir):
    svc = make_services()
    svc.pipeline.ingest([str(sample_dir)])
    return svc


def _same_ranking(a, b):
    assert [c.id for c in a.chunks] == [c.id for c in b.chunks], (a.query, [c.title for c in a.chunks],
                                                                  [c.title for c in b.chunks])
    np.testing.assert_allclose([c.score for c in a.chunks], [c.score for c in b.chunks], atol=1e-4)


@pytest.mark.parametrize("mode", ["graph", "hybrid"])
def test_torch_backend_ranks_like_scipy_on_the_sample(sample_kb, mode):
    r = sample_kb.retriever
    ref = [r.search(q, mode=mode, top_k=5) for q in QUESTIONS]
    assert any(res.chunks for res in ref)
    for device in ["torch-cpu"] + (["cuda"] if torch.cuda.is_available() else []):
        r.device = device
        r.invalidate()
        for a, q in zip(ref, QUESTIONS):
            _same_ranking(a, r.search(q, mode=mode, top_k=5))
    r.device = "cpu"
    r.invalidate()


@pytest.mark.parametrize("mode", ["vector", "graph", "hybrid"])
def test_search_many_equals_search(sample_kb, mode):
    r = sample_kb.retriever
    batch = r.search_many(QUESTIONS, mode=mode, top_k=4)
    assert len(batch) == len(QUESTIONS)
    for q, res in zip(QUESTIONS, batch):
        one = r.search(q, mode=mode, top_k=4)
        assert res.query == q
        _same_ranking(res, one)
        assert [e.id for e in res.seeds] == [e.id for e in one.seeds]
        assert res.timings["batch"] == len(QUESTIONS)


def test_exact_vector_search_matches_hnsw_and_honours_filters(sample_kb):
    r = sample_kb.retriever
    hnsw = [r.search(q, mode="vector", top_k=3) for q in QUESTIONS]
    r.vector_search = "exact"
    try:
        for q, h in zip(QUESTIONS, hnsw):
            e = r.search(q, mode="vector", top_k=3)
            assert [c.id for c in e.chunks] == [c.id for c in h.chunks]
            np.testing.assert_allclose([c.score for c in e.chunks], [c.score for c in h.chunks], atol=1e-4)
        doc = hnsw[0].chunks[0].doc_id
        only = r.search(QUESTIONS[0], mode="hybrid", top_k=5, filters={"doc_id": doc})
        assert only.chunks and {c.doc_id for c in only.chunks} == {doc}
        none = r.search(QUESTIONS[0], mode="vector", top_k=5, filters={"tenant": "nobody"})
        assert none.chunks == []
        # a delete moves the revision: the resident vectors are dropped with the index
        sample_kb.pipeline.delete(doc)
        after = r.search(QUESTIONS[0], mode="vector", top_k=5)
        assert doc not in {c.doc_id for c in after.chunks}
    finally:
        r.vector_search = "hnsw"


def test_search_many_rejects_an_empty_batch(sample_kb):
    from kgfactory.errors import RetrievalError

    with pytest.raises(RetrievalError, match="non-empty list"):
        sample_kb.retriever.search_many([])
    with pytest.raises(RetrievalError, match="empty"):
        sample_kb.retriever.search_many(["ok question", "  "])
