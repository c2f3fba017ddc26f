"""Replica catch-up: how long an API replica that did not write takes to bring its graph index up to the store's
revision after another process writes or deletes one document, by a patch from the graph's change log, next to
the full reload it did before the log (and still does when the log no longer reaches back).

Per size (synthetic clustered KBs, bench/synthetic.py): the writer adds one 10-chunk document, then deletes it;
a second Retriever over the same stores (what another `kgf serve` holds: nobody tells it of the writes) catches
up through `catch_up()` exactly as its follower thread does. The replica shares this process's store handles
(embedded FalkorDB over its Unix socket, Milvus Lite), so the figures are the index work plus the store reads,
not a second process's start-up. `lag_s` adds the mean wait for the next poll (KGF_REPLICA_POLL_S / 2).

    python -m bench.replicas [--sizes 2000 20000 200000] [--poll 0.5]

Writes bench/results/replicas.json (BENCHMARKS.md is left alone).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import header, save_json


def run_size(n: int, centres: np.ndarray, root: Path, poll_s: float, rounds: int) -> dict:
    from bench.synthetic import build
    from kgfactory.bootstrap import build_services
    from kgfactory.retrieval.graph_index import GraphIndex
    from kgfactory.retrieval.retriever import Retriever
    from kgfactory.settings import Settings
    from kgfactory.types import content_id

    data = root / f"kb_{n}"
    shutil.rmtree(data, ignore_errors=True)
    svc = build_services(Settings(data_dir=data, device="cpu"))
    try:
        t = time.perf_counter()
        build(svc, n, centres)
        out: dict = {"chunks": n, "build_s": round(time.perf_counter() - t, 1)}
        replica = Retriever(svc.graph, svc.vectors, svc.embedder)
        t = time.perf_counter()
        replica.index()
        out["first_load_s"] = round(time.perf_counter() - t, 2)
        writes, deletes = [], []
        for k in range(rounds):
            seed = 987000 + k
            build(svc, 10, centres, seed=seed)  # one document on one topic, as an ingest writes it
            t = time.perf_counter()
            replica.catch_up()
            writes.append(time.perf_counter() - t)
            assert replica.last_refresh["catch_up"] == "patch", replica.last_refresh
            svc.pipeline.delete(content_id(f"syn-doc-{seed}-0", prefix="doc_"))
            t = time.perf_counter()
            replica.catch_up()
            deletes.append(time.perf_counter() - t)
            assert replica.last_refresh["catch_up"] == "patch", replica.last_refresh
        full = []
        for _ in range(max(1, min(rounds, 3))):
            t = time.perf_counter()
            GraphIndex.load(svc.graph)
            full.append(time.perf_counter() - t)
        med = lambda xs: round(float(np.median(xs)), 3)  # noqa: E731
        out.update({"patch_after_write_s": med(writes), "patch_after_delete_s": med(deletes),
                    "full_reload_s": med(full), "rounds": rounds,
                    "lag_after_write_s": round(med(writes) + poll_s / 2, 3),
                    "speedup": round(med(full) / max(med(writes), 1e-6), 1)})
        print(json.dumps(out), flush=True)
        return out
    finally:
        svc.close()
        shutil.rmtree(data, ignore_errors=True)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000, 200000])
    ap.add_argument("--centroids", type=int, default=None, help="real passages used as cluster centres (default all)")
    ap.add_argument("--poll", type=float, default=0.5, help="the replicas' KGF_REPLICA_POLL_S, for lag_after_write_s")
    ap.add_argument("--rounds", type=int, default=5, help="write+delete rounds per size (medians reported)")
    ap.add_argument("--quick", action="store_true", help="2,000 chunks, 300 centres, 2 rounds")
    ap.add_argument("--out", default="replicas", help="results name under bench/results/")
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.centroids, args.rounds, args.out = [2000], 300, 2, "quick_replicas"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from bench.synthetic import centroids

    centres = centroids(args.centroids)
    root = Path(tempfile.mkdtemp(prefix="kgf-bench-replicas-"))
    cmd = "python -m bench.replicas" + (" --quick" if args.quick else
                                         f" --sizes {' '.join(map(str, args.sizes))} --rounds {args.rounds}"
                                         + (f" --centroids {args.centroids}" if args.centroids else ""))
    out = {**header(cmd), "centres": len(centres), "poll_s": args.poll, "sizes": {}}
    try:
        for n in args.sizes:  # saved after each size, so a long run keeps what it measured
            out["sizes"][str(n)] = run_size(n, centres, root, args.poll, args.rounds)
            save_json(args.out, out)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return out


if __name__ == "__main__":
    main()
