"""Synthetic clustered knowledge bases for latency and scaling runs at sizes no 2-core ingest reaches.

Never pure random vectors (HNSW recall and graph walks mean nothing on them): every synthetic chunk is a
noisy copy of a real MiniLM passage embedding from the MuSiQue corpus (its cluster centre), and it mentions
entities from its cluster's pool, so the graph has the clustered, skewed shape of a real one. The stores are
written through the same GraphStore / VectorStore ports as an ingest, minus embedding and extraction.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np

from bench.common import bench_data

CACHE = Path(__file__).resolve().parent / "results" / ".cache"


def centroids(limit: int | None = None) -> np.ndarray:
    """Real MiniLM embeddings of MuSiQue passages (cached under bench/results/.cache, git-ignored)."""
    corpus = json.loads((bench_data() / "musique_train_corpus.json").read_text())
    texts = [f"{r['title']}\n{r['text']}" for r in corpus][:limit]
    key = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:16]
    path = CACHE / f"musique_centroids_{key}.npy"
    if path.exists():
        return np.load(path)
    from kgfactory.ingest.embedder import SentenceTransformerEmbedder

    vecs = SentenceTransformerEmbedder(sha256_prefix="53aa5117", device="cpu").embed(texts)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, vecs)
    return vecs


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def build(svc, n_chunks: int, centres: np.ndarray, seed: int = 0, chunks_per_doc: int = 10,
          entities_per_cluster: int = 8, mentions_per_chunk: int = 4, noise: float = 0.5,
          tenant: str = "default", progress=None) -> dict:
    """Write a synthetic KB of n_chunks into svc's stores; returns the seconds spent per store."""
    from kgfactory.types import Chunk, Document, Entity, Mention, Relation, content_id

    rng = np.random.default_rng(seed)
    K, dim = centres.shape
    svc.vectors.ensure(dim)
    svc.graph.ensure_schema(["Concept"])
    # entity pools: a noisy copy of the cluster centre each, named after the cluster
    ent_ids = [[content_id(f"syn-e-{c}-{k}", prefix="ent_") for k in range(entities_per_cluster)] for c in range(K)]
    times = {"graph_s": 0.0, "vector_s": 0.0}
    zipf = 1.0 / np.arange(1, entities_per_cluster + 1)
    zipf /= zipf.sum()
    written_entities: set[int] = set()
    n_docs = (n_chunks + chunks_per_doc - 1) // chunks_per_doc
    batch_docs = max(1, 2000 // chunks_per_doc)
    for d0 in range(0, n_docs, batch_docs):
        docs, chunks, mentions, rel = [], [], [], {}
        new_entities: list[Entity] = []
        for d in range(d0, min(n_docs, d0 + batch_docs)):
            c = int(rng.integers(K))  # a document stays on one topic
            doc_id = content_id(f"syn-doc-{seed}-{d}", prefix="doc_")
            docs.append(Document(id=doc_id, source=f"synthetic://{d}", title=f"Synthetic {d}", mime="text/plain",
                                 tenant=tenant, text=""))
            for i in range(min(chunks_per_doc, n_chunks - d * chunks_per_doc)):
                picks = sorted(set(rng.choice(entities_per_cluster, mentions_per_chunk, p=zipf)))
                names = [f"Topic{c} Thing{k}" for k in picks]
                text = f"Synthetic passage {d}.{i} on topic {c} mentions " + ", ".join(names) + "."
                cid = content_id(doc_id, str(i), prefix="chk_")
                chunks.append(Chunk(id=cid, doc_id=doc_id, tenant=tenant, index=i, text=text, start=i * 200,
                                    end=i * 200 + len(text)))
                for k in picks:
                    mentions.append(Mention(chunk_id=cid, entity_id=ent_ids[c][k], count=1))
                    if c * entities_per_cluster + k not in written_entities:
                        written_entities.add(c * entities_per_cluster + k)
                        new_entities.append(Entity(id=ent_ids[c][k], name=f"Topic{c} Thing{k}", label="Concept",
                                                   tenant=tenant))
                for a in range(len(picks)):
                    for b in range(a + 1, len(picks)):
                        key = (ent_ids[c][picks[a]], ent_ids[c][picks[b]])
                        rel.setdefault(key, []).append(cid)
        relations = [Relation(source_id=s, target_id=t, type="CO_OCCURS", chunk_ids=cids[:5])
                     for (s, t), cids in rel.items()]
        cvec = _unit(centres[[int(ch.text.split(" on topic ")[1].split()[0]) for ch in chunks]]
                     + noise * rng.normal(size=(len(chunks), dim)) / np.sqrt(dim))
        evec = _unit(np.stack([centres[int(e.name[5:].split()[0])] for e in new_entities])
                     + 0.8 * noise * rng.normal(size=(len(new_entities), dim)) / np.sqrt(dim)) if new_entities else None
        t = time.perf_counter()
        svc.graph.begin_documents(docs)
        svc.graph.write_chunks(chunks)
        svc.graph.write_extraction(new_entities, mentions, relations)
        counts = {}
        for ch in chunks:
            counts[ch.doc_id] = counts.get(ch.doc_id, 0) + 1
        svc.graph.complete_documents([{"id": k, "chunks": v, "entities": 0, "run_id": "synthetic"}
                                      for k, v in counts.items()])
        times["graph_s"] += time.perf_counter() - t
        t = time.perf_counter()
        svc.vectors.upsert_chunks(chunks, cvec)
        if new_entities:
            svc.vectors.upsert_entities(new_entities, evec)
        times["vector_s"] += time.perf_counter() - t
        if progress:
            progress(len(chunks))
    t = time.perf_counter()
    svc.vectors.refresh()  # flush and build the HNSW index, as an ingest does at its end
    times["vector_index_s"] = time.perf_counter() - t
    times["entities"] = len(written_entities)
    return times
