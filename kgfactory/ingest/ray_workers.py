"""The store-free stages of a Ray ingest, as Ray Data runs them on the cluster's workers.

One row per parsed document (or per file error), in parse order. Each stage adds columns and keeps the rest:
parse+chunk (a task per file) -> `chunks`; the embedding actors (the model loaded once per actor) -> `vectors`;
the spaCy actors -> `analyses` (SpacyExtractor.analyse: one chunk at a time, no state across chunks, so any
batching gives the same result). Nothing here touches a store or imports ray: the driver (ray_engine.py) folds
the rows into groups exactly as the in-process pipeline forms them and writes them there.
Rows carry JSON text and float32 bytes, which Arrow stores without pickling.
"""
from __future__ import annotations

import json
import os
from typing import Any, Iterator

import numpy as np

from ..types import Chunk, Document

# the columns of every row (Arrow needs one schema for a block): "doc" rows and "error" rows
EMPTY_ROW: dict[str, Any] = {"kind": "", "source": "", "reason": "", "doc": "", "chunks": "", "chunk_error": "",
                             "vectors": b"", "analyses": ""}


def parse_and_chunk(row: dict[str, Any], chunking: dict[str, Any], parse: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """One file -> its documents (each chunked) and its errors, in the order the in-process parser yields them."""
    from .chunker import Chunker
    from .parsers import iter_documents

    if row["error"]:
        yield {**EMPTY_ROW, "kind": "error", "source": row["source"], "reason": row["error"]}
        return
    chunker = Chunker(**chunking)
    for item in iter_documents([row["path"]], **parse):
        if not isinstance(item, Document):
            yield {**EMPTY_ROW, "kind": "error", "source": item.source, "reason": item.reason}
            continue
        out = {**EMPTY_ROW, "kind": "doc", "source": item.source, "doc": item.model_dump_json()}
        try:
            chunks = chunker.split(item)
        except Exception as e:  # reported by the driver as the in-process pipeline reports it
            out["chunk_error"] = str(e) or type(e).__name__
        else:
            out["chunks"] = json.dumps([c.model_dump(mode="json") for c in chunks])
        yield out


def row_chunks(row: dict[str, Any]) -> list[Chunk]:
    return [Chunk.model_validate(c) for c in json.loads(row["chunks"])] if row["chunks"] else []


class EmbedActor:
    """Holds the embedding model (on the GPU when Ray gave the actor one) and embeds a batch's chunks at once."""

    def __init__(self, embed: dict[str, Any], batch_size_cuda: int):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from .embedder import SentenceTransformerEmbedder

        self.embedder = SentenceTransformerEmbedder(**embed)
        if self.embedder.device == "cuda":  # as bootstrap.build_embedder sizes it
            self.embedder.batch_size = batch_size_cuda
        self.embedder.embed(["warm up"])

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        per_row = [[c.text for c in row_chunks({"chunks": s})] for s in batch["chunks"]]
        texts = [t for ts in per_row for t in ts]
        vecs = self.embedder.embed(texts) if texts else np.zeros((0, 0), dtype=np.float32)
        out, i = [], 0
        for ts in per_row:
            out.append(np.ascontiguousarray(vecs[i:i + len(ts)], dtype=np.float32).tobytes() if ts else b"")
            i += len(ts)
        batch["vectors"] = np.array(out, dtype=object)
        return batch


class SpacyActor:
    """Holds the spaCy pipeline and analyses a batch's chunks (SpacyExtractor.analyse)."""

    def __init__(self, ontology: Any, spacy: dict[str, Any], tenant: str):
        from .spacy_extractor import SpacyExtractor

        self.extractor = SpacyExtractor(ontology, **spacy)
        self.extractor.warm_up()
        self.tenant = tenant

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        per_row = [row_chunks({"chunks": s}) for s in batch["chunks"]]
        flat = [c for cs in per_row for c in cs]
        analyses = self.extractor.analyse(flat, tenant=self.tenant) if flat else []
        out, i = [], 0
        for cs in per_row:
            out.append(json.dumps([a.to_json() for a in analyses[i:i + len(cs)]]) if cs else "")
            i += len(cs)
        batch["analyses"] = np.array(out, dtype=object)
        return batch


class NameEmbedder:
    """The driver's embedder for entity names (they are known only once a group is assembled): one small actor,
    so the driver never loads the model. `describe` gives the model id and dimension the run records."""

    def __init__(self, embed: dict[str, Any]):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from .embedder import SentenceTransformerEmbedder

        self.embedder = SentenceTransformerEmbedder(**embed)

    def describe(self) -> tuple[str, int]:
        dim = self.embedder.dim  # loads the model, which sets model_id (name@sha)
        return self.embedder.model_id, dim

    def embed(self, texts: list[str], batch_size: int | None = None) -> np.ndarray:
        return self.embedder.embed(texts, batch_size=batch_size)
