"""The benchmark suite in one command.

    python -m bench all [--quick]          every benchmark (full by default; --quick = CI-sized, JSON only)
    python -m bench quality|ingest|query|device|answer|abstain|replicas [options of that benchmark]

Full runs write bench/results/<name>.json, their BENCHMARKS.md sections (machine, date, commit, command) and
bench/results/scaling.png. Quick runs write bench/results/quick_<name>.json and leave BENCHMARKS.md alone, so a
CI-sized run never overwrites measured figures.
"""
from __future__ import annotations

import sys
import time

SUITE = {
    "quality": ("bench.retrieval", "recall@2/@5 per mode on MuSiQue and HotpotQA, latency per stage"),
    "ingest": ("bench.ingest", "passages/s per stage, graph vs vector-only"),
    "query": ("bench.query", "p50/p95 per stage at 2k/20k/200k chunks, load time, scaling plot"),
    "device": ("bench.device", "embedding throughput, PPR over 1M+ edges, CPU vs GPU"),
    "answer": ("bench.answer", "extractive answers: gold quoted, answer-step ms per max_embedded"),
    "abstain": ("bench.abstain", "abstention: false-abstain / false-answer rates per threshold, MuSiQue and HotpotQA"),
    "replicas": ("bench.replicas", "replica catch-up after another process writes: change-log patch vs full reload"),
}


def _quick_args(name: str) -> list[str]:
    return {"ingest": ["--limit", "100", "--no-write"]}.get(name, ["--quick"])


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        for name, (_, what) in SUITE.items():
            print(f"  {name:8} {what}")
        return 0
    import importlib

    cmd, rest = argv[0], argv[1:]
    if cmd == "all":
        quick = "--quick" in rest
        failed = []
        for name, (module, _) in SUITE.items():
            t = time.perf_counter()
            print(f"== bench {name}{' (quick)' if quick else ''}", flush=True)
            try:
                importlib.import_module(module).main(_quick_args(name) if quick else [])
            except SystemExit as e:
                if e.code not in (0, None):
                    failed.append(name)
            except Exception as e:  # keep going: one broken benchmark must not hide the others' figures
                print(f"bench {name} failed: {e!r}", file=sys.stderr)
                failed.append(name)
            print(f"== bench {name}: {time.perf_counter() - t:.0f} s", flush=True)
        if failed:
            print("failed: " + ", ".join(failed), file=sys.stderr)
        return 1 if failed else 0
    if cmd not in SUITE:
        print(f"unknown benchmark {cmd!r}; one of: all, {', '.join(SUITE)}", file=sys.stderr)
        return 2
    importlib.import_module(SUITE[cmd][0]).main(rest)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
