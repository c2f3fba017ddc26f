"""A real served LLM in the loop: plumbing figures for generated answers with llama.cpp's OpenAI-compatible
server and Gemma 3 270M (Q4_K_M) on CPU. Not a quality claim: a 270M base model is the smallest thing a
factory might serve; the figures say what the service does with it.

    python -m bench.llm_loop [--questions 100] [--prompts answer_v2 answer_v1] [--max-seconds 2400]

MuSiQue questions over their own passages (the 1,890-passage corpus, ingested vector-only into --kb-dir on
first use and reused), vector retrieval top 5, then the generating answerer streamed exactly as `kgf ask --llm`
does (prompt, citation check, groundedness gate, extractive fallback). Per prompt version: share of answers
that pass the gate, share whose model text cites at least one given source, latency p50/p95 (whole answer
and first token), decode tokens/s (completion tokens over the time after the first token, server-reported
token counts), and how often the final answer (generated or fallback) contains the gold answer, for context.
The server comes from scripts/llm_server.py (the cached wheel; `--build` builds it when absent).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import REPO, bench_data, header, provenance, publish
from bench.retrieval import quick_subset


def llm_server_module():
    spec = importlib.util.spec_from_file_location("kgf_llm_server", REPO / "scripts" / "llm_server.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(p * len(xs)))], 1) if xs else 0.0


def run_prompt(svc, prompt: str, data: list[dict], results, deadline: float) -> dict:
    from kgfactory.llm.citations import check_citations
    from kgfactory.llm.prompts import load_prompt
    from kgfactory.textnorm import normalise
    from kgfactory.types import Answer

    ans = svc.answerer
    ans.prompt = load_prompt(prompt)
    rows = []
    for d, r in zip(data, results):
        if time.monotonic() > deadline:
            break
        t0, first, final = time.perf_counter(), None, None
        for item in ans.stream(r):
            if isinstance(item, Answer):
                final = item
            elif first is None:
                first = time.perf_counter() - t0
        total = time.perf_counter() - t0
        g = final.grounding
        raw = g.rejected_text if g is not None and g.rejected_text is not None else final.text
        _, order, _ = check_citations(raw or "", len(ans.sources(r)))
        u = final.usage or {}
        gen_s = total - (first or total)
        golds = [x for x in (normalise(a) for a in [d["answer"], *d.get("answer_aliases", [])]) if x]
        rows.append({"question": d["question"], "generated": g is not None, "passed": bool(g and g.passed),
                     "cites": bool(order), "kind": final.kind, "total_s": total, "first_s": first,
                     "completion_tokens": u.get("completion_tokens", 0), "prompt_tokens": u.get("prompt_tokens", 0),
                     "decode_tps": (u.get("completion_tokens", 0) - 1) / gen_s if gen_s > 0.05 else None,
                     "final_has_gold": any(x in normalise(final.text) for x in golds),
                     "reason": (g.reasons[0] if g and g.reasons else None), "model_text": (raw or "")[:300]})
        print(f"[{prompt}] {len(rows)}/{len(data)} {total:.1f}s passed={rows[-1]['passed']} cites={rows[-1]['cites']}",
              flush=True)
    n = len(rows)
    gen = [x for x in rows if x["generated"]]
    tps = [x["decode_tps"] for x in rows if x["decode_tps"]]
    return {"prompt": prompt, "prompt_version": ans.prompt.version, "questions": n,
            "llm_answers": len(gen),  # the rest: the LLM failed and the extractive fallback answered
            "passed_gate": sum(x["passed"] for x in rows), "cites": sum(x["cites"] for x in rows),
            "passed_share": round(sum(x["passed"] for x in rows) / n, 3) if n else 0.0,
            "cites_share": round(sum(x["cites"] for x in rows) / n, 3) if n else 0.0,
            "latency_s": {"p50": _pct([x["total_s"] for x in rows], 0.5), "p95": _pct([x["total_s"] for x in rows], 0.95)},
            "first_token_s": {"p50": _pct([x["first_s"] for x in rows if x["first_s"]], 0.5),
                              "p95": _pct([x["first_s"] for x in rows if x["first_s"]], 0.95)},
            "decode_tokens_per_s_p50": round(statistics.median(tps), 1) if tps else None,
            "prompt_tokens_p50": statistics.median([x["prompt_tokens"] for x in rows]) if rows else 0,
            "completion_tokens_p50": statistics.median([x["completion_tokens"] for x in rows]) if rows else 0,
            "final_has_gold": sum(x["final_has_gold"] for x in rows),
            "rejection_reasons": _reasons(rows), "examples": rows[:5]}


def _reasons(rows: list[dict]) -> dict[str, int]:
    out: dict[str, int] = {}
    for x in rows:
        if x["generated"] and not x["passed"] and x["reason"]:
            key = x["reason"].split(" (")[0].split(":")[0]
            key = "sentence(s) not supported" if "not supported" in key else key
            out[key] = out.get(key, 0) + 1
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kb-dir", type=Path, default=Path(tempfile.gettempdir()) / "kgf-llm-loop-kb")
    ap.add_argument("--questions", type=int, default=100)
    ap.add_argument("--prompts", nargs="+", default=["answer_v2"])
    ap.add_argument("--max-seconds", type=float, default=2400, help="stop starting questions after this long")
    ap.add_argument("--max-tokens", type=int, default=64, help="completion token cap (KGF_LLM_MAX_TOKENS)")
    ap.add_argument("--build", action="store_true", help="build the llama.cpp wheel when none is cached")
    ap.add_argument("--no-write", action="store_true", help="do not touch BENCHMARKS.md")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    srv_mod = llm_server_module()
    model, why = srv_mod.prepare(build=args.build)
    if model is None:
        raise SystemExit(why)
    data = json.loads((bench_data() / "musique_train.json").read_text())[: args.questions]
    args.kb_dir.mkdir(parents=True, exist_ok=True)
    corpus_path, _ = quick_subset("musique", args.questions, args.kb_dir)
    srv = srv_mod.LlamaServer(model, log=args.kb_dir / "llama-server.log").start()
    from kgfactory.bootstrap import build_services
    from kgfactory.settings import Settings

    settings = Settings(data_dir=args.kb_dir / "data", extract=False, llm_base_url=srv.url,
                        llm_model=srv_mod.MODEL_ALIAS, llm_timeout_s=180, llm_max_retries=0,
                        llm_max_tokens=args.max_tokens)
    svc = build_services(settings)
    try:
        t = time.perf_counter()
        if not svc.graph.list_documents():
            print(f"ingesting {corpus_path.name} (vector-only) into {args.kb_dir} ...", flush=True)
            svc.pipeline.ingest([str(corpus_path)])
        ingest_s = time.perf_counter() - t
        results = svc.retriever.search_many([d["question"] for d in data], mode="vector", top_k=5)
        deadline = time.monotonic() + args.max_seconds
        per_prompt = [run_prompt(svc, p, data, results, deadline) for p in args.prompts]
    finally:
        svc.close()
        srv.stop()
    cmd = (f"python -m bench.llm_loop --questions {args.questions} --prompts {' '.join(args.prompts)} "
           f"--max-tokens {args.max_tokens} --max-seconds {args.max_seconds:.0f}")
    g = settings
    out = {**header(cmd), "server": f"llama-cpp-python {srv_mod.LLAMA_VERSION} server, chat format "
           f"{srv_mod.CHAT_FORMAT}, n_ctx {srv.n_ctx}, {srv.threads} threads, CMAKE_ARGS {srv_mod.CMAKE_ARGS}",
           "model": f"{model.name} ({srv_mod.MODEL_PACKAGE})", "ingest_s_this_run": round(ingest_s, 1),
           "gate": {"min_sim": g.llm_ground_min_sim, "min_names": g.llm_ground_min_names,
                    "min_words": g.llm_ground_min_words, "min_supported": g.llm_ground_min_supported},
           "context_chars": g.llm_context_chars, "max_tokens": g.llm_max_tokens, "prompts": per_prompt}
    return publish(out, "llm_loop", "llm-loop", _markdown, write=not args.no_write)


def _markdown(r: dict) -> str:
    lines = ["## A served LLM in the loop (plumbing figures, not quality)", "",
             provenance(r),
             f"Server: {r['server']}. Model: {r['model']}, temperature 0, max {r['max_tokens']} completion tokens, "
             f"{r['context_chars']} context characters. MuSiQue questions over their 1,890 passages (vector-only "
             "ingest), vector retrieval top 5, answers streamed as `kgf ask --llm` streams them. Gate thresholds: "
             + ", ".join(f"{k} {v}" for k, v in r["gate"].items()) + ". 'Cites': the model's text carries at least "
             "one marker to a source it was given (anywhere, including `[n]` source headers copied from the prompt). "
             "'Final has gold': the answer returned (generated, or the extractive fallback) contains the gold "
             "answer, for context only. Latency is per question, end to end, on a CPU shared with other work. "
             "Token counts are estimates (4 characters a token): llama-cpp-python's streams report no usage; "
             "decode tokens/s is completion tokens after the first over the time after the first token.", "",
             "| prompt | questions | passed gate | cites | latency p50 / p95 s | first token p50 / p95 s | decode tok/s p50 "
             "| prompt tokens p50 | completion tokens p50 | final has gold |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for p in r["prompts"]:
        n = p["questions"] or 1
        lines.append(f"| {p['prompt_version']} | {p['questions']} | {p['passed_gate']} ({100 * p['passed_gate'] / n:.0f}%) "
                     f"| {p['cites']} ({100 * p['cites'] / n:.0f}%) | {p['latency_s']['p50']} / {p['latency_s']['p95']} "
                     f"| {p['first_token_s']['p50']} / {p['first_token_s']['p95']} | {p['decode_tokens_per_s_p50']} "
                     f"| {p['prompt_tokens_p50']} | {p['completion_tokens_p50']} | {p['final_has_gold']} |")
    for p in r["prompts"]:
        if p["rejection_reasons"]:
            lines.append("")
            lines.append(f"Why {p['prompt']} answers were rejected: "
                         + ", ".join(f"{k}: {v}" for k, v in sorted(p["rejection_reasons"].items(), key=lambda kv: -kv[1])) + ".")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
