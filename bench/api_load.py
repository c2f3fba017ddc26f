"""HTTP load on POST /v1/query: `kgf serve` in its own process, load from this one, on loopback.

    python -m bench.api_load [--kb-dir DIR] [--duration 30] [--concurrency 1 8 32] [--mode hybrid]

The server is started with KGF_DATA_DIR=--kb-dir (open mode, loopback only, no rate limit). If that
directory holds no documents, the MuSiQue corpus is ingested first through the API (POST /v1/documents,
then the job is polled). Then, for each concurrency level, that many client threads send MuSiQue
questions back to back for --duration seconds. Reported: throughput, latency p50/p95/p99, errors, and
the server's RSS (its own process, and with its children: the embedded FalkorDB and Milvus Lite).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

from bench.common import bench_data, header, save_json, write_section


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(kb_dir: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "KGF_DATA_DIR": str(kb_dir), "KGF_API_RATE_LIMIT_PER_MINUTE": "0", "HF_HUB_OFFLINE": "1"}
    log = open(kb_dir.parent / f"{kb_dir.name}-server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "kgfactory.cli.main", "serve", "--open", "--port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    end = time.monotonic() + 300
    while time.monotonic() < end:
        if proc.poll() is not None:
            sys.exit(f"server exited ({proc.returncode}); see {log.name}")
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    proc.kill()
    sys.exit("server did not become ready in 300 s")


def ensure_corpus(url: str) -> int:
    with httpx.Client(base_url=url, timeout=600) as c:
        docs = c.get("/v1/documents").json()
        if docs:
            return len(docs)
        corpus = bench_data() / "musique_train_corpus.json"
        print(f"ingesting {corpus.name} through the API ...", flush=True)
        with corpus.open("rb") as fh:
            job = c.post("/v1/documents", files=[("files", (corpus.name, fh))]).json()
        while job["state"] in ("queued", "running"):
            time.sleep(2)
            job = c.get(f"/v1/jobs/{job['id']}").json()
        if job["state"] != "succeeded":
            sys.exit(f"ingest failed: {job}")
        return len(c.get("/v1/documents").json())


def rss(pid: int) -> tuple[float, float]:
    p = psutil.Process(pid)
    own = p.memory_info().rss
    total = own + sum(ch.memory_info().rss for ch in p.children(recursive=True) if ch.is_running())
    return own / 2**20, total / 2**20


def load(url: str, questions: list[str], concurrency: int, duration: float, mode: str, pid: int) -> dict:
    lat: list[float] = []
    errors: dict[str, int] = {}
    lock = threading.Lock()
    stop = time.monotonic() + duration
    peak = [0.0, 0.0]

    def worker(i: int) -> None:
        n = i
        with httpx.Client(base_url=url, timeout=120) as c:
            while time.monotonic() < stop:
                q = questions[n % len(questions)]
                n += concurrency
                t = time.perf_counter()
                try:
                    r = c.post("/v1/query", json={"question": q, "mode": mode, "top_k": 5})
                    ok = r.status_code == 200
                    kind = None if ok else str(r.status_code)
                except httpx.HTTPError as e:
                    ok, kind = False, type(e).__name__
                dt = time.perf_counter() - t
                with lock:
                    if ok:
                        lat.append(dt)
                    else:
                        errors[kind] = errors.get(kind, 0) + 1

    def sampler() -> None:
        while time.monotonic() < stop:
            own, total = rss(pid)
            peak[0], peak[1] = max(peak[0], own), max(peak[1], total)
            time.sleep(0.5)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)] + [threading.Thread(target=sampler)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    lat.sort()

    def pct(p: float) -> float:
        return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 1) if lat else float("nan")

    return {"concurrency": concurrency, "requests_ok": len(lat), "errors": errors, "wall_s": round(wall, 1),
            "throughput_rps": round(len(lat) / wall, 2), "p50_ms": pct(0.50), "p95_ms": pct(0.95), "p99_ms": pct(0.99),
            "mean_ms": round(statistics.fmean(lat) * 1000, 1) if lat else None,
            "server_rss_peak_mib": round(peak[0], 1), "server_rss_with_children_peak_mib": round(peak[1], 1)}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kb-dir", type=Path, default=Path(tempfile.gettempdir()) / "kgf-api-bench-kb")
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--mode", default="hybrid", choices=["vector", "graph", "hybrid"])
    ap.add_argument("--note", default="", help="Printed in BENCHMARKS.md (e.g. other load on the machine).")
    ap.add_argument("--no-write", action="store_true", help="Do not touch bench/results or BENCHMARKS.md.")
    args = ap.parse_args(argv)
    args.kb_dir.mkdir(parents=True, exist_ok=True)
    questions = [q["question"] for q in json.loads((bench_data() / "musique_train.json").read_text())]
    port = _free_port()
    proc = start_server(args.kb_dir, port)
    url = f"http://127.0.0.1:{port}"
    try:
        n_docs = ensure_corpus(url)
        httpx.post(url + "/v1/query", json={"question": questions[0]}, timeout=120)  # first query builds the index
        idle_own, idle_total = rss(proc.pid)
        runs = []
        for c in args.concurrency:
            print(f"concurrency {c} for {args.duration:.0f} s ...", flush=True)
            runs.append(load(url, questions, c, args.duration, args.mode, proc.pid))
            print(json.dumps(runs[-1]), flush=True)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
    cmd = "python -m bench.api_load " + " ".join(argv if argv is not None else sys.argv[1:])
    out = {**header(cmd.strip()), "documents": n_docs, "mode": args.mode, "duration_s": args.duration,
           "server_rss_idle_mib": round(idle_own, 1), "server_rss_idle_with_children_mib": round(idle_total, 1),
           "note": args.note, "runs": runs}
    if not args.no_write:
        save_json("api_load", out)
        rows = "\n".join(f"| {r['concurrency']} | {r['requests_ok']} | {r['throughput_rps']} | {r['p50_ms']} | {r['p95_ms']} | "
                         f"{r['p99_ms']} | {sum(r['errors'].values())} | {r['server_rss_peak_mib']} | "
                         f"{r['server_rss_with_children_peak_mib']} |" for r in runs)
        write_section("api_load", f"""## HTTP API load (`POST /v1/query`, MuSiQue)

Machine: {out['machine']}. Date: {out['date']}. Commit: {out['commit']}. Command: `{out['command']}`.
`kgf serve --open` in one process, the load from another (threads, httpx, keep-alive) on loopback; {n_docs}
MuSiQue passages, mode `{args.mode}`, top_k 5, extractive answers (no LLM), {args.duration:.0f} s per level,
questions cycled from `musique_train.json`. RSS: the server process alone, and with its children (embedded
FalkorDB, Milvus Lite). Idle after warm-up: {out['server_rss_idle_mib']} MiB ({out['server_rss_idle_with_children_mib']} MiB with children).
{('Note: ' + args.note) if args.note else ''}

| concurrency | requests ok | req/s | p50 ms | p95 ms | p99 ms | errors | server RSS peak MiB | with children MiB |
|---|---|---|---|---|---|---|---|---|
{rows}
""")
    return out


if __name__ == "__main__":
    main()
