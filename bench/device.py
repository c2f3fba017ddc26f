"""Device figures: embedding throughput, personalised PageRank over a graph of at least 1M edges, and exact
batched top-k, on the CPU (scipy / numpy, the default path) and, where torch sees one, the GPU (torch).

    python -m bench.device [--quick] [--edges 1000000]

The graph is synthetic but clustered (entities in communities, chunks mentioning entities of one community,
a few cross-community links), with the retriever's own transition matrix (graph_index._transition). GPU rows
read "not measured yet" when no GPU was present for the run: never an estimate.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import scipy.sparse as sp

from bench.common import RESULTS, bench_data, header, publish


def clustered_graph(n_edges: int, seed: int = 0):
    """Entities in communities of 50; each chunk mentions 4 entities of one community; co-occurrence edges
    inside communities plus 5% links across. Returns (transition, adjacency, mentions, undirected edge count)."""
    from kgfactory.retrieval.graph_index import _transition

    rng = np.random.default_rng(seed)
    n_chunks = int(n_edges * 0.21)  # 4 mentions + ~1 entity edge per chunk, with room for merged duplicates
    n_ent = max(n_chunks // 2, 100)
    comm = 50
    n_comm = n_ent // comm
    c_comm = rng.integers(n_comm, size=n_chunks)
    m_rows = np.repeat(np.arange(n_chunks), 4)
    m_cols = (np.repeat(c_comm, 4) * comm + rng.integers(comm, size=n_chunks * 4)) % n_ent
    mentions = sp.csr_matrix((np.ones(len(m_rows), np.float32), (m_rows, m_cols)), shape=(n_chunks, n_ent))
    mentions.sum_duplicates()
    n_e = n_edges - mentions.nnz
    a = rng.integers(n_ent, size=n_e)
    same = rng.random(n_e) > 0.05
    b = np.where(same, (a // comm) * comm + rng.integers(comm, size=n_e), rng.integers(n_ent, size=n_e)) % n_ent
    keep = a != b
    a, b = a[keep], b[keep]
    w = rng.integers(1, 4, size=len(a)).astype(np.float32)
    adj = sp.csr_matrix((np.r_[w, w], (np.r_[a, b], np.r_[b, a])), shape=(n_ent, n_ent))
    adj.sum_duplicates()
    return _transition(adj, mentions), adj, mentions, int(adj.nnz // 2 + mentions.nnz)


def _timeit(fn, repeat: int) -> dict:
    fn()  # warm (and, on the GPU, compile / allocate)
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t) * 1000)
    return {"p50_ms": round(float(np.percentile(ts, 50)), 3), "min_ms": round(min(ts), 3)}


def ppr_bench(n_edges: int, devices: list[str], repeat: int) -> dict:
    from kgfactory.retrieval.compute import make_ops

    t = time.perf_counter()
    trans, adj, men, edges = clustered_graph(n_edges)
    if edges < n_edges:  # duplicates merged: ask for a little more so the graph has at least n_edges
        trans, adj, men, edges = clustered_graph(int(n_edges * n_edges / edges * 1.005))
    build_s = time.perf_counter() - t
    n = trans.shape[0]
    rng = np.random.default_rng(1)
    out = {"edges": edges, "nodes": n, "build_s": round(build_s, 2)}
    for dev in devices:
        ops = make_ops(trans, adj, men, dev)
        for B in (1, 64):
            restart = np.zeros((n, B))
            for b in range(B):
                restart[rng.choice(adj.shape[0], 5, replace=False), b] = 0.2
            if dev == "cuda":
                import torch

                def fn(r=restart):
                    ops.ppr(r, 0.5, 30, 1e-6)
                    torch.cuda.synchronize()
            else:
                def fn(r=restart):
                    ops.ppr(r, 0.5, 30, 1e-6)
            res = _timeit(fn, repeat if B == 1 else max(2, repeat // 4))
            res["per_query_ms"] = round(res["p50_ms"] / B, 3)
            out[f"{dev}_batch{B}"] = res
    return out


def embed_bench(devices: list[str], n_texts: int) -> dict:
    from kgfactory.ingest.embedder import SentenceTransformerEmbedder

    corpus = json.loads((bench_data() / "musique_train_corpus.json").read_text())
    texts = [f"{r['title']}\n{r['text']}" for r in corpus][:n_texts]
    out = {"texts": len(texts), "mean_chars": round(float(np.mean([len(t) for t in texts])))}
    for dev in devices:
        batch = 256 if dev == "cuda" else 16
        emb = SentenceTransformerEmbedder(sha256_prefix="53aa5117", device=dev, batch_size=batch)
        emb.embed(texts[:32])
        if dev == "cuda":
            import torch

            torch.cuda.synchronize()
        t = time.perf_counter()
        emb.embed(texts)
        dt = time.perf_counter() - t
        out[dev] = {"batch": batch, "dtype": "fp16" if dev == "cuda" else "fp32", "chunks_per_s": round(len(texts) / dt, 1)}
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--edges", type=int, default=1_000_000)
    ap.add_argument("--texts", type=int, default=500, help="passages for the embedding throughput run")
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="100k edges, 64 texts; JSON only")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--out", default="device")
    args = ap.parse_args(argv)
    if args.quick:
        args.edges, args.texts, args.repeat, args.no_write, args.out = 100_000, 64, 3, True, "quick_device"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    out = {**header(f"python -m bench.device --edges {args.edges} --texts {args.texts}" + (" --quick" if args.quick else "")),
           "devices": devices, "gpu": torch.cuda.get_device_name(0) if "cuda" in devices else None,
           "embed": embed_bench(devices, args.texts), "ppr": ppr_bench(args.edges, devices, args.repeat)}
    qpath = RESULTS / "query.json"  # batched end-to-end throughput is measured by bench.query on a real KB
    if qpath.exists() and not args.quick:
        sizes = json.loads(qpath.read_text()).get("sizes", {})
        if "20000" in sizes:
            out["batched_queries"] = {"chunks": 20000, "cpu": sizes["20000"]["batched_exact"]["queries_per_s"]}
    return publish(out, args.out, "device", _markdown, write=not args.no_write)


def _markdown(r: dict) -> str:
    gpu = r.get("gpu")
    nm = "not measured yet (no GPU in this run)"
    p = r["ppr"]

    def cell(key, field="per_query_ms"):
        return str(p[key][field]) if key in p else nm

    emb = r["embed"]
    lines = ["## Device figures: embedding, PageRank over 1M+ edges, batched queries", "",
             f"Machine: {r['machine']}{'; GPU ' + gpu if gpu else ''}. Date: {r['date']}. Commit: `{r['commit']}`. "
             f"Command: `{r['command']}`.",
             f"PPR: {p['edges']:,} edges (entity-entity + chunk-entity), {p['nodes']:,} nodes, 30 iterations max, "
             "damping 0.5; a batch of 64 is one sparse-matrix x dense-matrix pass per iteration.", "",
             "| figure | CPU | GPU | target |", "|---|---:|---:|---|",
             f"| embedding, chunks/s ({emb['texts']} MuSiQue passages, mean {emb['mean_chars']} chars) | "
             f"{emb['cpu']['chunks_per_s']} | {emb['cuda']['chunks_per_s'] if 'cuda' in emb else nm} | GPU >= 20x CPU |",
             f"| PPR, ms per query, one at a time | {cell('cpu_batch1')} | {cell('cuda_batch1')} | GPU < 10 ms |",
             f"| PPR, ms per query, batch of 64 | {cell('cpu_batch64')} | {cell('cuda_batch64')} | |"]
    q = r.get("batched_queries")
    if q:
        lines.append(f"| batched queries end to end (hybrid, exact index, 64 per call, {q['chunks']:,} chunks; "
                     f"from bench.query), queries/s | {q['cpu']} | {q.get('cuda', nm)} | GPU > 1,000 |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
