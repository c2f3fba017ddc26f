"""Milvus adapter for the VectorStore port: Milvus Lite (a file in the data dir) or a server by URI.

HNSW (M=16, efConstruction=200), COSINE. Collections are loaded after opening; readiness is checked by a
real query rather than by describe_index, which reports success before the index serves.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from ..errors import RetrievalError, VectorInputError, VectorStoreError
from ..types import Chunk, Entity
from .milvus_embedding import EmbeddingRecord

log = logging.getLogger(__name__)

CHUNKS = "kgf_chunks"
ENTITIES = "kgf_entities"
FILTER_FIELDS = {"doc_id", "tenant", "tag"}
_BATCH = 1000
_READS = {"search", "query", "get", "query_iterator"}


def lite_held_elsewhere(db: Path) -> bool:
    """Whether another process has this Milvus Lite database open. Lite holds an flock on `<db>/LOCK` while open;
    a second opener gets only "Open local milvus failed" (and a logged traceback), so look at the lock first."""
    import fcntl
    import os

    lock = db / "LOCK"
    if not lock.exists():
        return False
    try:  # this process's own Lite server for the path (kept until exit) holds the lock too: that is not another
        from milvus_lite.server_manager import server_manager_instance  # type: ignore[import-untyped]

        if os.path.abspath(db) in getattr(server_manager_instance, "_servers", {}):
            return False
    except ImportError:
        pass

    try:
        fd = os.open(lock, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


class _LiteTimestampNoise(logging.Filter):
    """pymilvus 3 asks Milvus Lite's in-process gRPC server for AllocTimestamp, which Lite does not implement;
    the client falls back and the operation succeeds, but grpc logs a traceback. Drop exactly that record."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        tb = record.exc_info[2] if record.exc_info else None
        if isinstance(exc, NotImplementedError) and tb is not None:
            while tb.tb_next is not None:
                tb = tb.tb_next
            return tb.tb_frame.f_code.co_name != "AllocTimestamp"
        return True


_NOISE = _LiteTimestampNoise()


def _storable(value: str) -> str:
    """Refuse, before sending, text Milvus cannot take: control characters (its expression parser has no
    \\u escape) and unpaired surrogates (not encodable). VectorInputError: bad input, not a store outage."""
    if any(ord(ch) < 32 for ch in value):
        raise VectorInputError("Milvus cannot match text holding control characters (NUL included)")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise VectorInputError("Milvus cannot match text holding an unpaired surrogate") from e
    return value


def _q(value: str) -> str:
    """Quote a string for a Milvus filter expression: JSON escaping of quotes and backslashes is a valid Milvus
    string literal; other characters go as they are (Milvus has no \\u escape, so no ASCII-only JSON)."""
    return json.dumps(_storable(str(value)), ensure_ascii=False)


def _ids(ids: Sequence[str]) -> list[str]:
    return [_storable(str(i)) for i in ids]


def build_filter(filters: dict[str, Any] | None, kind: str) -> str:
    """Translate {doc_id, tenant, tag} filters into a Milvus boolean expression; unknown keys are an error."""
    if not filters:
        return ""
    unknown = set(filters) - FILTER_FIELDS
    if unknown:
        raise RetrievalError(f"unknown filter field(s) {sorted(unknown)}; allowed: {sorted(FILTER_FIELDS)}")
    parts = []
    for key, value in filters.items():
        if value is None:
            continue
        values = list(value) if isinstance(value, (list, tuple, set)) else [value]
        if key == "tag":
            if kind != CHUNKS:
                continue
            parts.append("(" + " or ".join(f"array_contains(tags, {_q(v)})" for v in values) + ")")
        elif key == "doc_id" and kind != CHUNKS:
            continue
        else:
            parts.append(f"{key} in [{', '.join(_q(v) for v in values)}]")
    return " and ".join(parts)


def _collection(kind: str) -> str:
    """'chunks' / 'entities' to the collection name; a collection name passes through."""
    return {"chunks": CHUNKS, "entities": ENTITIES}.get(kind, kind)


class MilvusVectorStore(EmbeddingRecord):
    """Chunk and entity collections in one Milvus (Lite file or server), recording the embedder that filled them
    (milvus_embedding.py)."""

    CHUNKS, ENTITIES = CHUNKS, ENTITIES

    def __init__(self, uri: str, token: str = "", ef: int = 64, db_name: str = ""):
        self.uri = uri
        self.token = token
        self.ef = ef
        self.db_name = db_name
        # a Milvus server (standalone or cluster) rather than a Milvus Lite file: see refresh() and _call()
        self.is_server = uri.startswith(("http://", "https://", "tcp://", "grpc://"))
        self._deleted_since_write = False
        self._client = None
        self._dim: int | None = None

    @classmethod
    def embedded(cls, data_dir: Path) -> "MilvusVectorStore":
        data_dir.mkdir(parents=True, exist_ok=True)
        return cls(str(data_dir / "milvus.db"))

    @property
    def client(self):
        if self._client is None:
            if not self.is_server and lite_held_elsewhere(Path(self.uri)):
                raise VectorStoreError(f"{Path(self.uri).parent} is in use by another process (a `kgf` command, a "
                                       "script's KnowledgeBase or `kgf serve`): Milvus Lite lets one process open "
                                       "it; wait for that process to finish, or stop it")
            try:
                from pymilvus import MilvusClient

                if _NOISE not in logging.getLogger("grpc._server").filters:
                    logging.getLogger("grpc._server").addFilter(_NOISE)
                kw = {"token": self.token} if self.token else {}
                if self.db_name:
                    kw["db_name"] = self.db_name
                self._client = MilvusClient(uri=self.uri, **kw)
                self.recover_swap(self._client)
                # a new process sees existing collections as released: load them so reads work without ensure()
                for name in set(self._client.list_collections()) & {CHUNKS, ENTITIES}:
                    self._client.load_collection(name)
            except Exception as e:
                self._client = None
                hint = "KGF_MILVUS_URI, KGF_MILVUS_TOKEN, KGF_MILVUS_DB" if self.is_server else "KGF_MILVUS_URI"
                raise VectorStoreError(f"cannot open Milvus at {self.uri!r} (check {hint}): {e}") from e
        return self._client

    def _call(self, what: str, fn, *args, **kwargs):
        if self.is_server and what in _READS:
            # a server's default (Bounded) consistency hides this client's own writes for a few seconds;
            # Session sees them at once and costs nothing when this client has not written. A delete does not
            # move the session timestamp (2.3.5), so reads are Strong until the next upsert.
            kwargs.setdefault("consistency_level", "Strong" if self._deleted_since_write else "Session")
        elif what == "delete":
            self._deleted_since_write = True
        elif what == "upsert":
            self._deleted_since_write = False
        try:
            return fn(*args, **kwargs)
        except RetrievalError:
            raise
        except Exception as e:
            raise VectorStoreError(f"Milvus {what} failed: {e}") from e

    def ensure(self, dim: int) -> None:
        """Create the collections if missing (idempotent) and load them."""

        c = self.client
        existing = set(self._call("list_collections", c.list_collections))
        for name in (CHUNKS, ENTITIES):
            if name not in existing:
                self._create_collection(name, name == CHUNKS, dim)
            else:
                have = self._collection_dim(name)
                if have is not None and have != dim:
                    raise VectorStoreError(
                        f"collection {name} holds {have}-dim vectors but the embedder gives {dim}; "
                        "run `kgf reindex`, or use a new KGF_DATA_DIR")
        self.check_embedding(created=CHUNKS not in existing)
        self._dim = dim
        if not self.is_server:  # a server loaded them above (create_collection / client); a flush here costs ~1 s
            self.refresh()

    def _create_collection(self, name: str, chunks: bool, dim: int) -> None:
        from pymilvus import DataType, MilvusClient

        c = self.client
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
        schema.add_field("tenant", DataType.VARCHAR, max_length=128)
        if chunks:
            schema.add_field("doc_id", DataType.VARCHAR, max_length=64)
            schema.add_field("tags", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=64, max_length=128)
        else:
            schema.add_field("label", DataType.VARCHAR, max_length=128)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        index = c.prepare_index_params()
        index.add_index(field_name="vector", index_type="HNSW", metric_type="COSINE",
                        params={"M": 16, "efConstruction": 200})
        self._call("create_collection", c.create_collection, name, schema=schema, index_params=index)

    def refresh(self) -> None:
        """Make recent writes searchable through the index: flush, then release and load the collections.

        Milvus Lite keeps unflushed rows in a memtable that every search scans (measured: 1.3 s per search at
        20k chunks, 39 ms after flush + reload). Called after each ingest run and delete, and at open.
        A server indexes sealed segments in the background and serves growing ones itself, so there a flush
        is enough; release + load would take the collection offline for every other client (10 s on 2.3.5)."""
        c = self.client
        for name in (CHUNKS, ENTITIES):
            self._call("flush", c.flush, name)
            if self.is_server:
                continue
            try:
                c.release_collection(name)
            except Exception as e:  # not loaded yet
                log.debug("release %s: %s", name, e)
            self._load_with_retry(name)

    def _load_with_retry(self, name: str, tries: int = 4) -> None:
        """Milvus Lite can fail a load with EAGAIN ('Resource temporarily unavailable') while it is still
        writing the index file it just built (seen under CPU contention); a short wait fixes it."""
        for attempt in range(tries):
            try:
                self.client.load_collection(name)
                return
            except Exception as e:
                if attempt == tries - 1 or "temporarily unavailable" not in str(e):
                    raise VectorStoreError(f"Milvus load_collection failed: {e}") from e
                log.info("load %s: %s; retrying", name, e)
                time.sleep(0.25 * (attempt + 1))

    def _collection_dim(self, name: str) -> int | None:
        desc = self._call("describe_collection", self.client.describe_collection, name)
        for f in desc.get("fields", []):
            if f.get("name") == "vector":
                return int(f.get("params", {}).get("dim", 0)) or None
        return None

    def _upsert(self, name: str, rows: list[dict]) -> None:
        if name in (CHUNKS, ENTITIES):
            self.check_embedding()
        for i in range(0, len(rows), _BATCH):
            self._call("upsert", self.client.upsert, name, rows[i:i + _BATCH])

    def upsert_chunks(self, chunks: Sequence[Chunk], vectors: np.ndarray,
                      tags_by_doc: dict[str, Sequence[str]] | None = None) -> None:
        if len(chunks) != len(vectors):
            raise VectorStoreError(f"{len(chunks)} chunks but {len(vectors)} vectors")
        tags_by_doc = tags_by_doc or {}
        rows = [{"id": c.id, "tenant": c.tenant, "doc_id": c.doc_id,
                 "tags": [str(t) for t in tags_by_doc.get(c.doc_id, ())][:64], "vector": v.tolist()}
                for c, v in zip(chunks, vectors)]
        self._upsert(CHUNKS, rows)

    def upsert_entities(self, entities: Sequence[Entity], vectors: np.ndarray) -> None:
        if len(entities) != len(vectors):
            raise VectorStoreError(f"{len(entities)} entities but {len(vectors)} vectors")
        rows = [{"id": e.id, "tenant": e.tenant, "label": e.label, "vector": v.tolist()} for e, v in zip(entities, vectors)]
        self._upsert(ENTITIES, rows)

    def existing_entity_ids(self, ids: Sequence[str]) -> set[str]:
        out: set[str] = set()
        ids = _ids(ids)
        for i in range(0, len(ids), _BATCH):
            rows = self._call("get", self.client.get, ENTITIES, ids=ids[i:i + _BATCH], output_fields=["id"])
            out.update(r["id"] for r in rows)
        return out

    def chunk_ids_for_document(self, doc_id: str) -> list[str]:
        rows = self._call("query", self.client.query, CHUNKS, filter=f"doc_id == {_q(doc_id)}", output_fields=["id"])
        return [r["id"] for r in rows]

    def delete_document(self, doc_id: str) -> int:
        n = len(self.chunk_ids_for_document(doc_id))
        self._call("delete", self.client.delete, CHUNKS, filter=f"doc_id == {_q(doc_id)}")
        return n

    def delete_entities(self, entity_ids: Sequence[str]) -> int:
        ids = _ids(entity_ids)
        for i in range(0, len(ids), _BATCH):
            self._call("delete", self.client.delete, ENTITIES, ids=ids[i:i + _BATCH])
        return len(ids)

    def _search(self, name: str, vector: np.ndarray, top_k: int, filters: dict[str, Any] | None) -> list[tuple[str, float]]:
        self.check_embedding()
        expr = build_filter(filters, name)
        res = self._call("search", self.client.search, name, data=[np.asarray(vector, dtype=np.float32).tolist()],
                         limit=top_k, filter=expr, search_params={"metric_type": "COSINE", "params": {"ef": max(self.ef, top_k)}})
        return [(hit["id"], float(hit["distance"])) for hit in res[0]]

    def search_chunks(self, vector: np.ndarray, top_k: int, filters: dict[str, Any] | None = None) -> list[tuple[str, float]]:
        return self._search(CHUNKS, vector, top_k, filters)

    def search_entities(self, vector: np.ndarray, top_k: int, filters: dict[str, Any] | None = None) -> list[tuple[str, float]]:
        return self._search(ENTITIES, vector, top_k, filters)

    def _search_many(self, name: str, vectors: np.ndarray, top_k: int,
                     filters: dict[str, Any] | None) -> list[list[tuple[str, float]]]:
        """One request for a batch of query vectors (the batched-query path)."""
        self.check_embedding()
        expr = build_filter(filters, name)
        data = np.atleast_2d(np.asarray(vectors, dtype=np.float32)).tolist()
        res = self._call("search", self.client.search, name, data=data, limit=top_k, filter=expr,
                         search_params={"metric_type": "COSINE", "params": {"ef": max(self.ef, top_k)}})
        return [[(hit["id"], float(hit["distance"])) for hit in hits] for hits in res]

    def search_chunks_many(self, vectors: np.ndarray, top_k: int,
                           filters: dict[str, Any] | None = None) -> list[list[tuple[str, float]]]:
        return self._search_many(CHUNKS, vectors, top_k, filters)

    def search_entities_many(self, vectors: np.ndarray, top_k: int,
                             filters: dict[str, Any] | None = None) -> list[list[tuple[str, float]]]:
        return self._search_many(ENTITIES, vectors, top_k, filters)

    def export_vectors(self, kind: str, batch_size: int = 4096) -> tuple[list[str], np.ndarray, list[str]]:
        """Every stored (id, vector, tenant) of `kind` ('chunks' or 'entities'): for the exact resident index."""
        name = _collection(kind)
        if name not in self._call("list_collections", self.client.list_collections):
            return [], np.zeros((0, self._dim or 0), dtype=np.float32), []
        self.check_embedding()
        ids, vecs, tenants = [], [], []
        # Milvus Lite has no mvccTs; pymilvus warns and uses a client-side timestamp, which is what we want
        logging.getLogger("pymilvus.client.iterator.query_iterator").setLevel(logging.ERROR)
        it = self._call("query_iterator", self.client.query_iterator, name, batch_size=batch_size, filter="",
                        output_fields=["id", "tenant", "vector"])
        try:
            while True:
                rows = self._call("query_iterator.next", it.next)
                if not rows:
                    break
                for r in rows:
                    ids.append(r["id"])
                    tenants.append(r.get("tenant") or "")
                    vecs.append(r["vector"])
        finally:
            it.close()
        mat = np.asarray(vecs, dtype=np.float32) if vecs else np.zeros((0, self._dim or 0), dtype=np.float32)
        return ids, mat, tenants

    def get_vectors(self, kind: str, ids: Sequence[str]) -> tuple[list[str], np.ndarray, list[str]]:
        """(id, vector, tenant) of those `ids` that are stored, in the order found."""
        name = _collection(kind)
        ids = list(dict.fromkeys(_ids(ids)))
        out_ids, vecs, tenants = [], [], []
        for i in range(0, len(ids), _BATCH):
            rows = self._call("get", self.client.get, name, ids=ids[i:i + _BATCH],
                              output_fields=["id", "tenant", "vector"])
            for r in rows:
                out_ids.append(r["id"])
                tenants.append(r.get("tenant") or "")
                vecs.append(r["vector"])
        mat = np.asarray(vecs, dtype=np.float32) if vecs else np.zeros((0, self._dim or 0), dtype=np.float32)
        return out_ids, mat, tenants

    def count(self, kind: str, exact: bool = False) -> int:
        """Rows of `kind`. count(*) is cheap but is the engine's own tally, which has read double after a
        crash (62 entity vectors for 31 ids until the next open); `exact` counts distinct ids instead
        (a scan of the id column: for `kgf stats`, not for every health check)."""
        name = _collection(kind)
        if name not in self._call("list_collections", self.client.list_collections):
            return 0
        if exact:
            return len(self._distinct_ids(name))
        rows = self._call("query", self.client.query, name, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    def _distinct_ids(self, name: str, batch_size: int = 16384) -> set[str]:
        logging.getLogger("pymilvus.client.iterator.query_iterator").setLevel(logging.ERROR)
        it = self._call("query_iterator", self.client.query_iterator, name, batch_size=batch_size, filter="",
                        output_fields=["id"])
        ids: set[str] = set()
        try:
            while rows := self._call("query_iterator.next", it.next):
                ids.update(r["id"] for r in rows)
        finally:
            it.close()
        return ids

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            except Exception as e:  # closing must not mask the real error
                log.warning("closing Milvus client: %s", e)
            self._client = None

    # -- bulk copy for `kgf migrate` --------------------------------------------------------------
    def vector_dim(self) -> int | None:
        """The stored vectors' dimension, None before the collections exist."""
        if CHUNKS not in self._call("list_collections", self.client.list_collections):
            return None
        return self._collection_dim(CHUNKS)

    def export_rows(self, kind: str, batch_size: int = 1000) -> Iterator[list[dict[str, Any]]]:
        """Every stored row of `kind` ('chunks'/'entities') with all its fields, vector included, in batches."""
        name = {"chunks": CHUNKS, "entities": ENTITIES}[kind]
        if name not in self._call("list_collections", self.client.list_collections):
            return
        fields = ["id", "tenant", "doc_id", "tags", "vector"] if name == CHUNKS else ["id", "tenant", "label", "vector"]
        logging.getLogger("pymilvus.client.iterator.query_iterator").setLevel(logging.ERROR)  # Lite: no mvccTs
        it = self._call("query_iterator", self.client.query_iterator, name, batch_size=batch_size, filter="",
                        output_fields=fields)
        try:
            while True:
                rows = self._call("query_iterator.next", it.next)
                if not rows:
                    break
                yield [{f: (list(r[f]) if f in ("vector", "tags") else r[f]) for f in fields} for r in rows]
        finally:
            it.close()

    def import_rows(self, kind: str, rows: list[dict[str, Any]]) -> None:
        """Upsert rows as export_rows gives them (ids are content hashes, so a repeated import is harmless)."""
        self._upsert({"chunks": CHUNKS, "entities": ENTITIES}[kind], rows)
