"""Extractive answers (no LLM): how often the gold answer is quoted, and what the answer step costs.

    python -m bench.answer [--kb-dir DIR] [--questions N] [--max-embedded 0 4 8 12] [--quick]

MuSiQue questions, hybrid retrieval (top 5), then `ExtractiveAnswerer` with each `max_embedded` setting (0 =
embed every candidate sentence). Reported per setting: answers that contain the gold answer or an alias
(normalised substring), the same for the top-5 chunks (the ceiling an extractive answer can reach), and the
answer step's p50/p95 ms. The KB in --kb-dir is ingested on first use (the MuSiQue corpus) and reused.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.common import bench_data, header, provenance, publish
from bench.retrieval import quick_subset


def open_kb(kb_dir: Path, corpus_path: Path):
    """The KB in kb_dir; the corpus is ingested only when it holds no documents yet (a KB the API load
    benchmark filled through uploads is used as it is)."""
    from kgfactory.bootstrap import build_services
    from kgfactory.settings import Settings

    svc = build_services(Settings(data_dir=kb_dir))
    t = time.perf_counter()
    if not svc.graph.list_documents():
        print(f"ingesting {corpus_path.name} into {kb_dir} ...", flush=True)
        svc.pipeline.ingest([str(corpus_path)])
    return svc, time.perf_counter() - t


def evaluate(svc, data: list[dict], settings: list[int]) -> dict:
    from kgfactory.textnorm import normalise

    results = svc.retriever.search_many([d["question"] for d in data], mode="hybrid", top_k=5)
    golds = [[g for g in (normalise(a) for a in [d["answer"], *d.get("answer_aliases", [])]) if g] for d in data]
    ceiling = sum(any(g in normalise(" ".join(c.text for c in r.chunks)) for g in gs) for r, gs in zip(results, golds))
    svc.answerer.answer(results[0])  # warm
    out = {}
    for k in settings:
        svc.answerer.max_embedded = k or None
        hits, ms = 0, []
        for r, gs in zip(results, golds):
            t = time.perf_counter()
            a = svc.answerer.answer(r)
            ms.append((time.perf_counter() - t) * 1000)
            hits += any(g in normalise(a.text) for g in gs)
        ms.sort()
        out[str(k)] = {"answer_has_gold": hits, "p50_ms": round(statistics.median(ms), 1),
                       "p95_ms": round(ms[min(len(ms) - 1, int(0.95 * len(ms)))], 1)}
    return {"questions": len(data), "top5_chunks_have_gold": ceiling, "settings": out}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kb-dir", type=Path, default=Path(tempfile.gettempdir()) / "kgf-api-bench-kb")
    ap.add_argument("--questions", type=int, default=100)
    ap.add_argument("--max-embedded", type=int, nargs="+", default=[0, 4, 8, 12])
    ap.add_argument("--no-write", action="store_true", help="do not touch BENCHMARKS.md")
    ap.add_argument("--out", default="answer", help="results name under bench/results/")
    ap.add_argument("--quick", action="store_true", help="at most 10 questions over their own passages, fresh KB, JSON only")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    data = json.loads((bench_data() / "musique_train.json").read_text())[: args.questions]
    corpus_path = bench_data() / "musique_train_corpus.json"
    if args.quick:
        args.questions, args.no_write, args.out = min(args.questions, 10), True, "quick_answer"
        data = data[: args.questions]
        args.kb_dir = Path(tempfile.mkdtemp(prefix="kgf-bench-answer-"))
        corpus_path, _ = quick_subset("musique", args.questions, args.kb_dir)
    svc, ingest_s = open_kb(args.kb_dir, corpus_path)
    try:
        res = evaluate(svc, data, args.max_embedded)
    finally:
        svc.close()
    cmd = "python -m bench.answer" + (" --quick" if args.quick else f" --questions {args.questions} --max-embedded "
                                      + " ".join(map(str, args.max_embedded)))
    out = {**header(cmd), "ingest_s_this_run": round(ingest_s, 1), **res}
    return publish(out, args.out, "answer", _markdown, write=not args.no_write)


def _markdown(r: dict) -> str:
    lines = ["## Extractive answers (no LLM), MuSiQue", "",
             provenance(r),
             f"{r['questions']} MuSiQue questions over the 1,890-passage corpus, hybrid retrieval top 5, then the "
             "extractive answer step. 'Has gold': the answer text contains the gold answer or an alias (normalised). "
             f"Ceiling: the top-5 chunks contain it for {r['top5_chunks_have_gold']} questions. `max_embedded` 0 "
             "embeds every candidate sentence; N embeds the N best by the cheap features (question entities, word "
             "overlap, chunk rank) plus each chunk's best.", "",
             "| max_embedded | has gold | answer p50 ms | answer p95 ms |", "|---:|---:|---:|---:|"]
    for k, s in r["settings"].items():
        lines.append(f"| {k} | {s['answer_has_gold']} | {s['p50_ms']} | {s['p95_ms']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
