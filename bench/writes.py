"""Store write cost per 1,000 chunks: embedded FalkorDB (the graph half of an ingest's commit), Milvus Lite and
a Milvus 2.3.5 server (chunk and entity vectors), at the pipeline's group size and at larger write batches.

    python -m bench.writes [--chunks 5000] [--groups 64,512] [--no-server]

The rows are shaped like the spaCy extraction of a MuSiQue passage (measured: ~10 mentions, ~8 new entities
and ~38 CO_OCCURS pairs per chunk; entities clustered so some recur across chunks); vectors are random unit vectors (insert cost does not depend on them). Each
store starts empty; the times are the ports' calls as IngestPipeline.commit makes them (refresh excluded).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import header

DIM = 384


def _rows(n_chunks: int, seed: int = 0, chunks_per_doc: int = 1, tenant: str = "default"):
    """Documents, chunks, entities, mentions and CO_OCCURS relations for n_chunks (one doc per chunk, as MuSiQue)."""
    from kgfactory.types import Chunk, Document, Entity, Mention, Relation, content_id

    rng = np.random.default_rng(seed)
    docs, chunks, ents, mentions, rels = [], [], {}, [], {}
    for i in range(n_chunks):
        did = content_id(f"w-doc-{seed}-{i}", prefix="doc_")
        docs.append(Document(id=did, source=f"bench://{i}", title=f"Doc {i}", mime="text/plain", tenant=tenant, text=""))
        text = " ".join(f"word{int(w)}" for w in rng.integers(0, 5000, 110))  # ~110 tokens, as a passage
        cid = content_id(did, "0", prefix="chk_")
        chunks.append(Chunk(id=cid, doc_id=did, tenant=tenant, index=0, text=text, start=0, end=len(text)))
        cluster = int(rng.integers(0, max(1, n_chunks // 4)))
        picks = sorted({int(k) for k in rng.choice(40, 10, replace=False)})
        ids = []
        for k in picks:
            eid = content_id(f"w-ent-{cluster}-{k}", prefix="ent_")
            ents.setdefault(eid, Entity(id=eid, name=f"Cluster{cluster} Thing{k}", label="Concept", tenant=tenant))
            mentions.append(Mention(chunk_id=cid, entity_id=eid, count=1))
            ids.append(eid)
        ids.sort()
        for a in range(len(ids)):
            for b in range(a + 1, min(len(ids), a + 6)):  # sentence windows: ~38 pairs, not all 45
                rels.setdefault((ids[a], ids[b]), []).append(cid)
    relations = [Relation(source_id=s, target_id=t, type="CO_OCCURS", chunk_ids=c) for (s, t), c in rels.items()]
    return docs, chunks, list(ents.values()), mentions, relations


def _unit(n: int, rng) -> np.ndarray:
    x = rng.normal(size=(n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def measure(graph, vectors, n_chunks: int, group: int) -> dict:
    """Write n_chunks in groups of `group` documents through the ports, timing graph and vectors apart."""
    docs, chunks, ents, mentions, rels = _rows(n_chunks, seed=group)
    rng = np.random.default_rng(1)
    cvec, evec = _unit(len(chunks), rng), _unit(len(ents), rng)
    ent_index = {e.id: i for i, e in enumerate(ents)}
    vectors.ensure(DIM)
    graph.ensure_schema(["Concept"])
    t_graph = t_vec = 0.0
    written: set[str] = set()
    for g0 in range(0, len(docs), group):
        gd, gc = docs[g0:g0 + group], chunks[g0:g0 + group]
        cids = {c.id for c in gc}
        gm = [m for m in mentions if m.chunk_id in cids]
        gids = {m.entity_id for m in gm}
        ge = [e for e in ents if e.id in gids]
        gr = [r for r in rels if r.chunk_ids[0] in cids]
        new = [e for e in ge if e.id not in written]
        written.update(e.id for e in new)
        t = time.perf_counter()
        graph.begin_documents(gd)
        graph.write_chunks(gc)
        graph.write_extraction(ge, gm, gr)
        graph.complete_documents([{"id": d.id, "chunks": 1, "entities": 0, "run_id": "bench"} for d in gd])
        t_graph += time.perf_counter() - t
        t = time.perf_counter()
        vectors.upsert_chunks(gc, cvec[g0:g0 + group])
        if new:
            vectors.upsert_entities(new, evec[[ent_index[e.id] for e in new]])
        t_vec += time.perf_counter() - t
    per = 1000 / n_chunks
    return {"group_docs": group, "chunks": n_chunks, "entities": len(ents), "mentions": len(mentions),
            "relations": len(rels), "graph_s_per_1k_chunks": round(t_graph * per, 3),
            "vectors_s_per_1k_chunks": round(t_vec * per, 3)}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", type=int, default=5000)
    ap.add_argument("--groups", default="64,512", help="documents per write group (the pipeline's is 64)")
    ap.add_argument("--no-server", action="store_true", help="skip the Milvus 2.3.5 server leg")
    args = ap.parse_args(argv)
    from kgfactory.graph.falkordb_server import EmbeddedFalkorDB
    from kgfactory.graph.falkordb_store import FalkorDBGraphStore
    from kgfactory.vector.milvus_store import MilvusVectorStore

    groups = [int(g) for g in args.groups.split(",") if g.strip()]
    out: dict = {**header("python -m bench.writes " + " ".join(argv or sys.argv[1:])), "runs": []}
    tmp = Path(tempfile.mkdtemp(prefix="kgf-bench-writes-"))
    server = None
    try:
        if not args.no_server:
            sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
            from _servers import MilvusServer235

            server = MilvusServer235(tmp / "milvus-server").start()
        for group in groups:
            for backend in ["lite"] + (["server-2.3.5"] if server else []):
                d = tmp / f"{backend}-{group}"
                falkor = EmbeddedFalkorDB(d)
                sock = falkor.start()
                graph = FalkorDBGraphStore(graph_name=f"w{group}", unix_socket_path=str(sock))
                uri = server.uri if backend != "lite" else str(d / "milvus.db")
                vectors = MilvusVectorStore(uri, db_name="")
                try:
                    r = measure(graph, vectors, args.chunks, group)
                finally:
                    if backend != "lite":  # leave the server empty for the next leg
                        for name in vectors.client.list_collections():
                            vectors.client.drop_collection(name)
                    vectors.close()
                    graph.close()
                    falkor.stop()
                r["vector_store"] = backend
                out["runs"].append(r)
                print(json.dumps(r), flush=True)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return out


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
