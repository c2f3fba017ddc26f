"""Ingest benchmark on the MuSiQue corpus (1,890 passages): per-stage throughput, peak RSS, and the graph
ingest's cost as a ratio of a vector-only ingest of the same corpus, both measured in this one run.

    python -m bench.ingest [--limit N] [--corpus musique|hotpotqa]
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


def run_once(corpus: Path, data_dir: Path, extract: bool, embedder, extractor) -> dict:
    from kgfactory.bootstrap import build_services
    from kgfactory.settings import Settings

    svc = build_services(Settings(data_dir=data_dir, extract=extract))
    svc.embedder = svc.pipeline.embedder = embedder
    if extract:
        svc.extractor = svc.pipeline.extractor = extractor
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
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from kgfactory.ingest.embedder import SentenceTransformerEmbedder
    from kgfactory.ingest.spacy_extractor import SpacyExtractor
    from kgfactory.ontology.loader import load_ontology

    t = time.perf_counter()
    embedder = SentenceTransformerEmbedder(sha256_prefix="53aa5117")
    embedder.embed(["warm up"])
    extractor = SpacyExtractor(load_ontology())
    extractor._load()
    load_s = time.perf_counter() - t

    tmp = Path(tempfile.mkdtemp(prefix="kgf-bench-"))
    try:
        corpus, n = _corpus_file(args.corpus, args.limit, tmp)
        vec = run_once(corpus, tmp / "vector-only", False, embedder, extractor)
        full = run_once(corpus, tmp / "graph", True, embedder, extractor)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cmd = "python -m bench.ingest" + (f" --corpus {args.corpus}" if args.corpus != "musique" else "") + (
        f" --limit {args.limit}" if args.limit else "")
    result = {**header(cmd), "corpus": args.corpus, "passages": n, "model_load_s": round(load_s, 2),
              "peak_rss_python_mib": round(peak, 1), "vector_only": vec, "graph": full,
              "graph_over_vector_ratio": round(full["wall_s"] / vec["wall_s"], 2)}
    return publish(result, f"ingest_{args.corpus}" + (f"_{args.limit}" if args.limit else ""), f"ingest-{args.corpus}",
                   _markdown, write=not args.no_write)


def _markdown(r: dict) -> str:
    v, g = r["vector_only"], r["graph"]
    rows = []
    for stage in ("parse", "chunk", "embed", "extract", "write"):
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
        f"Model loading ({r['model_load_s']} s) is outside the timed runs.",
    ])


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
