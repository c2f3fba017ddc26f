"""Query latency and scaling: p50/p95 per stage at growing corpus sizes, and the time to load each size.

    python -m bench.query [--sizes 2000 20000 200000] [--questions 100] [--quick]

Each size is a synthetic clustered KB (bench/synthetic.py: noisy copies of real MuSiQue passage embeddings,
entities per cluster) written into fresh embedded stores; the questions are MuSiQue's, embedded at query time
like any query. Per size: hybrid and vector latency with Milvus HNSW, hybrid with the exact resident index,
and batched throughput (search_many, 64 questions per call). Writes bench/results/query.json, the
BENCHMARKS.md section and bench/results/scaling.png.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import RESULTS, bench_data, header, provenance, save_json, write_section

STAGES = ["graph_index", "embed", "vector_search", "seed_entities", "graph_traversal", "fuse", "enrich", "total"]


def _pct(values: list[float]) -> dict:
    return {"p50": round(float(np.percentile(values, 50)), 2), "p95": round(float(np.percentile(values, 95)), 2)}


def latency(retriever, questions: list[str], mode: str) -> dict:
    retriever.search(questions[0], mode=mode)  # warm: model, graph index, resident vectors
    stage: dict[str, list[float]] = {}
    for q in questions:
        out = retriever.search(q, mode=mode, top_k=5)
        for k, v in out.timings.items():
            stage.setdefault(k, []).append(v)
    return {k: _pct(v) for k, v in stage.items() if k in STAGES}


def batched(retriever, questions: list[str], mode: str = "hybrid", batch: int = 64) -> dict:
    qs = (questions * (batch // max(len(questions), 1) + 1))[:batch]
    retriever.search_many(qs[:2], mode=mode)
    t = time.perf_counter()
    rounds = 3
    for _ in range(rounds):
        retriever.search_many(qs, mode=mode, top_k=5)
    dt = time.perf_counter() - t
    return {"batch": batch, "queries_per_s": round(rounds * batch / dt, 1)}


def refresh_after_small_change(svc, centres: np.ndarray) -> dict:
    """Seconds to bring the graph index (and the exact resident vectors) up to date after one more 10-chunk
    document is written, and after it is deleted again: the incremental patch, next to a full reload."""
    from bench.synthetic import build
    from kgfactory.retrieval.graph_index import GraphIndex
    from kgfactory.types import content_id

    r = svc.retriever
    r.index()
    build(svc, 10, centres, seed=987654)  # one document on one topic: its entities already exist, as usual
    doc_id = content_id("syn-doc-987654-0", prefix="doc_")
    t = time.perf_counter()
    idx = r.index()
    write_s = time.perf_counter() - t
    written = dict(r.last_refresh)
    svc.pipeline.delete(doc_id)  # both moves are in the graph store's change log
    t = time.perf_counter()
    r.index()
    delete_s = time.perf_counter() - t
    deleted = dict(r.last_refresh)
    t = time.perf_counter()
    GraphIndex.load(svc.graph)
    full_s = time.perf_counter() - t
    assert written["kind"] == deleted["kind"] == "incremental", (written, deleted)
    return {"after_write_s": round(write_s, 3), "after_delete_s": round(delete_s, 3), "full_reload_s": round(full_s, 2),
            "entities_touched": written["entities_touched"], "edges_read": written["edges_read"],
            "with_exact_vectors": r._exact is not None, "chunks_after_write": idx.n_chunks}


def run_size(n: int, centres: np.ndarray, questions: list[str], root: Path, device: str) -> dict:
    import psutil

    from bench.synthetic import build
    from kgfactory.bootstrap import build_services
    from kgfactory.settings import Settings

    data = root / f"kb_{n}"
    shutil.rmtree(data, ignore_errors=True)
    svc = build_services(Settings(data_dir=data, device=device))
    try:
        t = time.perf_counter()
        done = [0]

        def progress(k: int) -> None:  # a line every ~10% on long loads
            step = max(n // 10, 1)
            if (done[0] + k) // step > done[0] // step:
                print(f"  {done[0] + k:,}/{n:,} chunks written, {time.perf_counter() - t:.0f} s", flush=True)
            done[0] += k

        load = build(svc, n, centres, progress=progress)
        load["total_s"] = round(time.perf_counter() - t, 1)
        r = svc.retriever
        t = time.perf_counter()
        idx = r.index()
        out = {"chunks": n, "load": {k: round(v, 1) if isinstance(v, float) else v for k, v in load.items()},
               "graph": {"entities": idx.n_entities, "entity_edges": int(idx.adjacency.nnz // 2),
                         "mentions": int(idx.mentions.nnz), "index_load_s": round(time.perf_counter() - t, 2)},
               "device": r.device}
        out["hybrid_hnsw"] = latency(r, questions, "hybrid")
        out["vector_hnsw"] = latency(r, questions, "vector")
        out["batched_hnsw"] = batched(r, questions)
        r.vector_search = "exact"
        t = time.perf_counter()
        r.exact_indexes(idx)
        out["exact_load_s"] = round(time.perf_counter() - t, 2)
        out["hybrid_exact"] = latency(r, questions, "hybrid")
        out["batched_exact"] = batched(r, questions)
        out["refresh"] = refresh_after_small_change(svc, centres)
        r.vector_search = "hnsw"
        out["rss_mib"] = round(psutil.Process().memory_info().rss / 2**20)
        print(json.dumps({"chunks": n, "hybrid_hnsw_total": out["hybrid_hnsw"]["total"],
                          "hybrid_exact_total": out["hybrid_exact"]["total"]}), flush=True)
        return out
    finally:
        svc.close()
        shutil.rmtree(data, ignore_errors=True)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000, 200000])
    ap.add_argument("--questions", type=int, default=100)
    ap.add_argument("--centroids", type=int, default=None, help="real passages used as cluster centres (default all)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    ap.add_argument("--quick", action="store_true", help="2,000 chunks, 20 questions, 300 centres; JSON only")
    ap.add_argument("--no-write", action="store_true", help="do not touch BENCHMARKS.md or the plot")
    ap.add_argument("--out", default="query", help="results name under bench/results/")
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.questions, args.centroids, args.no_write = [2000], 20, 300, True
        args.out = "quick_query"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from bench.synthetic import centroids

    centres = centroids(args.centroids)
    questions = [q["question"] for q in json.loads((bench_data() / "musique_train.json").read_text())][:args.questions]
    root = Path(tempfile.mkdtemp(prefix="kgf-bench-query-"))
    cmd = "python -m bench.query" + (" --quick" if args.quick else f" --sizes {' '.join(map(str, args.sizes))}"
                                      f" --questions {args.questions}")
    out = {**header(cmd), "centres": len(centres), "questions": len(questions), "sizes": {}}
    try:
        for n in args.sizes:  # results are saved after each size, so a long run keeps what it measured
            out["sizes"][str(n)] = run_size(n, centres, questions, root, args.device)
            save_json(args.out, out)
            if not args.no_write:
                write_section("query", _markdown(out))
                plot(out, RESULTS / "scaling.png")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return out


def _markdown(r: dict) -> str:
    lines = ["## Query latency and scaling (CPU, no LLM)", "",
             provenance(r),
             f"Synthetic clustered KBs: noisy copies of {r['centres']:,} real MuSiQue passage embeddings, 10 chunks per "
             f"document, 4 entity mentions per chunk from 8-entity cluster pools; {r['questions']} MuSiQue questions "
             "embedded at query time. 'load' is writing the stores through the ports (no embedding, no extraction: "
             "see the ingest section for those). Plot: `bench/results/scaling.png`.", "",
             "| chunks | entities | entity edges | load s (graph / vectors / index) | hybrid HNSW p50 / p95 ms | "
             "vector HNSW p50 / p95 ms | hybrid exact p50 / p95 ms | batched q/s (HNSW / exact) | RSS MiB |",
             "|---:|---:|---:|---|---:|---:|---:|---:|---:|"]
    for n, s in r["sizes"].items():
        ld = s["load"]
        lines.append(
            f"| {int(n):,} | {s['graph']['entities']:,} | {s['graph']['entity_edges']:,} | "
            f"{ld['graph_s']} / {ld['vector_s']} / {ld['vector_index_s']} | "
            f"{s['hybrid_hnsw']['total']['p50']} / {s['hybrid_hnsw']['total']['p95']} | "
            f"{s['vector_hnsw']['total']['p50']} / {s['vector_hnsw']['total']['p95']} | "
            f"{s['hybrid_exact']['total']['p50']} / {s['hybrid_exact']['total']['p95']} | "
            f"{s['batched_hnsw']['queries_per_s']} / {s['batched_exact']['queries_per_s']} | {s['rss_mib']} |")
    lines += ["", "Keeping the graph index current: one more 10-chunk document written, then deleted again (the "
              "incremental patch reads only the touched rows; the resident exact vectors are patched with it), "
              "next to a full reload of the index:", "",
              "| chunks | after write s | after delete s | full reload s | entities touched | edges read |",
              "|---:|---:|---:|---:|---:|---:|"]
    for n, s in r["sizes"].items():
        f = s.get("refresh")
        if f:
            lines.append(f"| {int(n):,} | {f['after_write_s']} | {f['after_delete_s']} | {f['full_reload_s']} | "
                         f"{f['entities_touched']:,} | {f['edges_read']:,} |")
    lines += ["", "Hybrid per-stage p50 ms (HNSW | exact):", "",
              "| chunks | " + " | ".join(STAGES[:-1]) + " |", "|---:|" + "---:|" * (len(STAGES) - 1)]
    for n, s in r["sizes"].items():
        cells = [f"{s['hybrid_hnsw'].get(k, {}).get('p50', '-')} \\| {s['hybrid_exact'].get(k, {}).get('p50', '-')}"
                 for k in STAGES[:-1]]
        lines.append(f"| {int(n):,} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(r: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = [int(n) for n in r["sizes"]]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in [("hybrid_hnsw", "hybrid, HNSW"), ("vector_hnsw", "vector, HNSW"), ("hybrid_exact", "hybrid, exact")]:
        a.plot(ns, [r["sizes"][str(n)][key]["total"]["p50"] for n in ns], marker="o", label=label + " p50")
    a.axhline(50, ls="--", c="grey", lw=0.8, label="50 ms target")
    a.set(xscale="log", xlabel="chunks", ylabel="ms per query", title="Query latency")
    a.legend(fontsize=8)
    b.plot(ns, [r["sizes"][str(n)]["load"]["total_s"] for n in ns], marker="o", label="store load (s)")
    b.plot(ns, [r["sizes"][str(n)]["graph"]["index_load_s"] for n in ns], marker="o", label="graph index load (s)")
    if all("refresh" in r["sizes"][str(n)] for n in ns):
        b.plot(ns, [r["sizes"][str(n)]["refresh"]["after_write_s"] for n in ns], marker="o",
               label="index refresh after a 10-chunk write (s)")
    b.set(xscale="log", yscale="log", xlabel="chunks", ylabel="seconds", title="Load time")
    b.legend(fontsize=8)
    fig.suptitle(f"kgfactory scaling — {r['machine']} — {r['date']}", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
