"""Ingest benchmark on the MuSiQue corpus (1,890 passages): per-stage seconds (parse, chunk, embed chunks,
extract, embed entities, write graph, write vectors), peak RSS, and the graph ingest's cost as a ratio of a
vector-only ingest of the same corpus, both measured in this one run. `--synthetic 2000,20000` adds ingests of
that many synthetic passages (MuSiQue sentences recombined), each in its own process, recording its peak RSS
(memory must stay flat as the corpus grows).

    python -m bench.ingest [--limit N] [--corpus musique|hotpotqa] [--mode threaded|serial] [--synthetic N,M]

In threaded mode (the default, KGF_INGEST_PIPELINE) the stages overlap, so their seconds (each stage's own busy
time) add up to more than the wall time.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import psutil

from bench.common import bench_data, header, provenance, publish

CORPORA = {"musique": "musique_train_corpus.json", "hotpotqa": "hotpotqa_train_corpus.json"}
STAGES = ("parse", "chunk", "embed_chunks", "extract", "embed_entities", "write_graph", "write_vectors")


def _corpus_file(name: str, limit: int | None, tmp: Path) -> tuple[Path, int]:
    """The corpus as is, or its first `limit` records in a temp file (never inside the repo)."""
    src = bench_data() / CORPORA[name]
    data = json.loads(src.read_text())
    if isinstance(data, dict):
        data = [{"title": t, "text": "".join(s)} for t, s in data.items()]
    if limit:
        data = data[:limit]
    out = tmp / f"{name}.json"
    out.write_text(json.dumps(data))
    return out, len(data)


def _graph_rss(data_dir: Path) -> float:
    """RSS of the embedded FalkorDB server (a separate process), in MiB."""
    for p in psutil.process_iter(["cmdline", "memory_info"]):
        cmd = " ".join(p.info.get("cmdline") or [])
        if "redis-server" in cmd and str(data_dir) in cmd:
            return p.info["memory_info"].rss / 2**20
    return 0.0


def synthetic_corpus(n: int, out: Path, seed: int = 0) -> Path:
    """n passages of 3-5 MuSiQue sentences drawn at random (real names and grammar, new combinations)."""
    import random
    import re

    rng = random.Random(seed)
    src = json.loads((bench_data() / CORPORA["musique"]).read_text())
    sents = [s for r in src for s in re.split(r"(?<=[.!?])\s+", r["text"]) if len(s) > 20]
    titles = [r["title"] for r in src]
    with out.open("w") as f:
        for i in range(n):
            text = " ".join(rng.choice(sents) for _ in range(rng.randint(3, 5)))
            f.write(json.dumps({"title": f"{rng.choice(titles)} {i}", "text": text}) + "\n")
    return out


def bench_embedder(backend: str, cache: Path):
    """The embedder a KB gets from these settings (KGF_EMBED_BACKEND; auto: see bootstrap.embed_backend), exported into
    `cache` once, outside the timed runs."""
    from kgfactory.bootstrap import build_embedder
    from kgfactory.settings import Settings

    return build_embedder(Settings(data_dir=cache, embed_backend=backend, embed_cache_dir=cache / "models"))


def bench_extractor(ontology):
    """The extractor a KB gets from the default settings (KGF_EXTRACT_PROCESSES auto included)."""
    from kgfactory.bootstrap import extract_processes
    from kgfactory.ingest.spacy_extractor import SpacyExtractor
    from kgfactory.settings import Settings

    return SpacyExtractor(ontology, processes=extract_processes(Settings()))


def synthetic_child(n: int, mode: str, backend: str = "auto") -> dict:
    """Run in a fresh process: ingest n synthetic passages; report wall, stages and this process's peak RSS."""
    from kgfactory.ontology.loader import load_ontology

    tmp = Path(tempfile.mkdtemp(prefix="kgf-bench-syn-"))
    embedder = bench_embedder(backend, tmp)
    embedder.embed(["warm up"])
    extractor = bench_extractor(load_ontology())
    extractor._load()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    try:
        corpus = synthetic_corpus(n, tmp / "synthetic.jsonl")
        r = run_once(corpus, tmp / "kb", True, embedder, extractor, mode, backend)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    r.update(passages=n, peak_rss_python_mib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
             rss_after_model_load_mib=round(base, 1))
    return r


def run_synthetic(n: int, mode: str, backend: str) -> dict:
    import subprocess

    out = subprocess.run([sys.executable, "-m", "bench.ingest", "--synthetic-child", str(n), "--mode", mode,
                          "--backend", backend],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_once(corpus: Path, data_dir: Path, extract: bool, embedder, extractor, mode: str = "threaded",
             backend: str = "auto") -> dict:
    from kgfactory.bootstrap import build_services
    from kgfactory.settings import Settings

    svc = build_services(Settings(data_dir=data_dir, extract=extract, ingest_pipeline=mode, embed_backend=backend))
    svc.embedder = svc.pipeline.embedder = embedder
    if extract:
        svc.extractor = svc.pipeline.extractor = extractor
        svc.pipeline.run_resources = [extractor]
    try:
        t = time.perf_counter()
        run = svc.pipeline.ingest([str(corpus)])
        wall = time.perf_counter() - t
        stats = svc.graph.stats()
        graph_rss = _graph_rss(data_dir)
    finally:
        svc.close()
    return {"wall_s": round(wall, 2), "documents": run.documents_added, "chunks": run.chunks,
            "entities": run.entities, "relations": run.relations, "errors": len(run.errors),
            "stages_s": run.timings, "graph": stats, "falkordb_rss_mib": round(graph_rss, 1)}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", choices=sorted(CORPORA), default="musique")
    ap.add_argument("--limit", type=int, default=None, help="first N passages only (quick runs)")
    ap.add_argument("--no-write", action="store_true", help="do not touch BENCHMARKS.md")
    ap.add_argument("--mode", choices=("threaded", "serial"), default="threaded", help="KGF_INGEST_PIPELINE")
    ap.add_argument("--backend", default="auto", choices=("auto", "torch", "onnx", "onnx-int8", "openvino", "openvino-bf16"),
                    help="KGF_EMBED_BACKEND (auto = openvino-bf16 on a CPU with native bf16, else onnx fp32)")
    ap.add_argument("--synthetic", default="", help="comma-separated passage counts, e.g. 2000,20000")
    ap.add_argument("--synthetic-child", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.synthetic_child:
        print(json.dumps(synthetic_child(args.synthetic_child, args.mode, args.backend)))
        return {"synthetic": True}

    from kgfactory.ontology.loader import load_ontology

    tmp = Path(tempfile.mkdtemp(prefix="kgf-bench-"))
    t = time.perf_counter()
    embedder = bench_embedder(args.backend, tmp)
    embedder.embed(["warm up"])
    extractor = bench_extractor(load_ontology())
    extractor._load()
    load_s = time.perf_counter() - t
    backend = getattr(embedder, "backend", "torch")
    try:
        corpus, n = _corpus_file(args.corpus, args.limit, tmp)
        vec = run_once(corpus, tmp / "vector-only", False, embedder, extractor, args.mode, backend)
        full = run_once(corpus, tmp / "graph", True, embedder, extractor, args.mode, backend)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    synthetic = {str(k): run_synthetic(int(k), args.mode, args.backend) for k in args.synthetic.split(",") if k.strip()}
    cmd = "python -m bench.ingest" + (f" --corpus {args.corpus}" if args.corpus != "musique" else "") + (
        f" --limit {args.limit}" if args.limit else "") + (f" --mode {args.mode}" if args.mode != "threaded" else "") + (
        f" --synthetic {args.synthetic}" if args.synthetic else "") + (
        f" --backend {args.backend}" if args.backend != "auto" else "")
    result = {**header(cmd), "corpus": args.corpus, "passages": n, "mode": args.mode, "backend": backend,
              "model_load_s": round(load_s, 2),
              "peak_rss_python_mib": round(peak, 1), "vector_only": vec, "graph": full,
              "graph_over_vector_ratio": round(full["wall_s"] / vec["wall_s"], 2), "synthetic": synthetic}
    return publish(result, f"ingest_{args.corpus}" + (f"_{args.limit}" if args.limit else ""), f"ingest-{args.corpus}",
                   _markdown, write=not args.no_write)


def _markdown(r: dict) -> str:
    v, g = r["vector_only"], r["graph"]
    rows = []
    for stage in STAGES:
        gs, vs = g["stages_s"].get(stage, 0.0), v["stages_s"].get(stage, 0.0)
        rate = f"{r['passages'] / gs:,.0f}" if gs > 0 else "-"
        rows.append(f"| {stage} | {vs:.2f} | {gs:.2f} | {rate} |")
    return "\n".join([
        f"## Ingest: {r['corpus']} corpus ({r['passages']:,} passages)",
        "",
        provenance(r),
        "",
        "| stage | vector-only s | graph s | graph passages/s |",
        "|---|---:|---:|---:|",
        *rows,
        f"| **total (wall)** | **{v['wall_s']:.1f}** | **{g['wall_s']:.1f}** | **{r['passages'] / g['wall_s']:,.1f}** |",
        "",
        f"- Graph ingest / vector-only ingest: **{r['graph_over_vector_ratio']}x** (target at most 1.5x).",
        f"- Chunks: {g['chunks']:,} ({g['chunks'] / g['wall_s']:,.1f} chunks/s in the graph ingest); "
        f"entities {g['graph'].get('Entity', 0):,}; MENTIONS {g['graph'].get('MENTIONS', 0):,}; "
        f"CO_OCCURS {g['graph'].get('CO_OCCURS', 0):,}; typed relations "
        f"{sum(v for k, v in g['graph'].items() if k not in ('Document', 'Chunk', 'Entity', 'MENTIONS', 'CO_OCCURS', 'HAS_CHUNK', 'NEXT')):,}.",
        f"- Peak RSS: Python {r['peak_rss_python_mib']:,.0f} MiB; FalkorDB server {g['falkordb_rss_mib']:,.0f} MiB. "
        f"Model loading ({r['model_load_s']} s) is outside the timed runs. Pipeline mode: {r.get('mode', 'serial')}; "
        f"embedding backend: {r.get('backend', 'torch')} "
        "(threaded: stage seconds are each stage's busy time and overlap).",
        *[f"- Synthetic {int(k):,} passages (graph ingest, own process): {s['wall_s']:.1f} s wall, peak RSS "
          f"{s['peak_rss_python_mib']:,.0f} MiB (after model load {s['rss_after_model_load_mib']:,.0f} MiB), "
          f"FalkorDB {s['falkordb_rss_mib']:,.0f} MiB." for k, s in (r.get("synthetic") or {}).items()],
    ])


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
