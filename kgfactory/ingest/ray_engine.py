"""Distributed ingest on Ray (`kgf ingest --engine ray`, the [ray] extra).

Ray Data does the store-free work on the cluster (ray_workers.py): parse and chunk (a task per file), embed (an
actor pool holding the model, `num_gpus=1` actors when the cluster has GPUs) and spaCy analysis (an actor pool).
The driver receives the rows in parse order (Ray Data's preserve_order) and runs the in-process pipeline's own
`ingest` over them, with ports that hand back what the cluster computed: the same admission (unchanged, repair,
replace), the same groups, the same assembly of a group's extraction (SpacyExtractor.assemble: names, classes,
short forms, subjects and entity-name vectors are decided per group, so the groups must be the in-process ones),
and the same commit half (crash-safe write order, rollback, the run record, the listeners). The result is the
in-process result: ids are content hashes and every group-wide decision is made on the same group.

A Ray worker that dies is retried by Ray (actors restart, their batch is resent; tasks retry); a row reaches
the driver once, and the driver is the only writer.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Iterator, Sequence, cast

import numpy as np

from ..errors import ConfigError
from ..types import Chunk, Document, Extraction, FileError, IngestRun
from . import ray_workers as W
from .chunker import Chunker
from .pipeline import IngestPipeline, Progress

log = logging.getLogger(__name__)

SERVER_STORES = ("KGF_MILVUS_URI=http://milvus:19530 (a Milvus server or cluster), and KGF_GRAPH_BACKEND=neo4j "
                 "with KGF_NEO4J_URI (a Neo4j server) or KGF_FALKORDB_URL=redis://host:6379 (a FalkorDB server)")


@dataclass
class RayOptions:
    address: str = ""  # a Ray cluster (ray://head:10001, auto); empty = a local Ray for this run
    workers: int = 0  # actors per pool; 0 = fitted to the cluster
    batch_docs: int = 16  # documents per actor call


@dataclass
class _Plan:
    workers: int
    embed_workers: int
    actor_cpus: float
    embed_gpus: float
    task_cpus: float = 0.25
    helper_cpus: float = 0.1


def check_server_stores(settings: Any) -> None:
    """Ray ingest writes to stores every process can reach: not the embedded Milvus Lite file or graph engine."""
    lite = "://" not in settings.milvus_uri
    embedded_graph = settings.graph_backend == "falkordb" and not settings.falkordb_url
    if lite or embedded_graph:
        what = " and ".join(w for w, bad in (("Milvus Lite", lite), ("the embedded FalkorDB", embedded_graph)) if bad)
        raise ConfigError(f"--engine ray needs server stores, not {what} in the data directory: set {SERVER_STORES}")


def _import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as e:
        raise ConfigError("--engine ray needs the [ray] extra: pip install 'kgfactory[ray]'") from e
    return ray


def _plan(ray: Any, options: RayOptions) -> _Plan:
    """Actors per pool and their CPU shares, so both pools, the parse tasks and the name embedder fit at once
    (a pool that cannot place its actors would starve the stages before it)."""
    res = ray.cluster_resources()
    cpus, gpus = float(res.get("CPU", 1.0)), int(res.get("GPU", 0))
    workers = options.workers or max(1, int((cpus - 0.5) // 2))
    embed_workers = min(workers, gpus) if gpus else workers
    spare = max(cpus - 0.35, 0.2)  # the parse tasks' and the name embedder's share stays free
    cpu_pools = workers + (0 if gpus else embed_workers)
    return _Plan(workers=workers, embed_workers=embed_workers, actor_cpus=min(1.0, spare / cpu_pools),
                 embed_gpus=1.0 if gpus else 0.0)


class _Rows:
    """What the cluster computed for documents admitted but not yet written, by document id. A document already
    complete in the store is never kept (the pipeline skips it unread); a group's rows go once it is written
    (the pipeline tells its listeners), so the driver holds about one group."""

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}

    def put(self, doc_id: str, row: dict[str, Any]) -> None:
        self.docs[doc_id] = row

    def get(self, doc_id: str) -> dict[str, Any]:
        row = self.docs.get(doc_id)
        if row is None:  # a loud error rather than a silent re-embed
            raise RuntimeError(f"Ray ingest: no computed row for document {doc_id}")
        return row

    # IngestListener: a written group's rows are done with
    def documents_written(self, docs: Sequence[Document], chunks: Sequence[Chunk], extraction: Extraction) -> None:
        for d in docs:
            self.docs.pop(d.id, None)

    def document_deleted(self, doc_id: str) -> None:
        pass


class _RayChunks:
    """Chunker port: the chunks a worker made (the same Chunker and settings, so the same ids)."""

    def __init__(self, rows: _Rows):
        self.rows = rows

    def split(self, doc: Document) -> list[Chunk]:
        row = self.rows.get(doc.id)
        if row["chunk_error"]:
            raise RuntimeError(row["chunk_error"])  # the pipeline reports "chunking failed: <message>"
        return W.row_chunks(row)


class _RayVectors:
    """Embedder port: chunk vectors from the embedding actors; anything else (entity names) from the name actor."""

    def __init__(self, rows: _Rows, names: Any, ray: Any):
        self.rows, self.names, self.ray = rows, names, ray
        self.model_id, self.dim = ray.get(names.describe.remote())

    def embed(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        known: dict[str, np.ndarray] = {}
        for row in self.rows.docs.values():
            if row["vectors"]:
                vecs = np.frombuffer(row["vectors"], dtype=np.float32).reshape(-1, self.dim)
                for c, v in zip(W.row_chunks(row), vecs):
                    known[c.text] = v
        missing = [t for t in dict.fromkeys(texts) if t not in known]
        if missing:
            for t, v in zip(missing, self.ray.get(self.names.embed.remote(missing, batch_size))):
                known[t] = v
        return np.stack([known[t] for t in texts]).astype(np.float32) if texts else np.zeros((0, self.dim), np.float32)


class _RayExtractor:
    """Extractor port: assembles a group's extraction from the spaCy actors' per-chunk analyses."""

    def __init__(self, spacy: Any, rows: _Rows):
        from .spacy_extractor import ChunkAnalysis

        self.spacy, self.rows, self._from = spacy, rows, ChunkAnalysis.from_json

    @property
    def name(self) -> str:
        return str(self.spacy.name)

    def extract(self, chunks: Sequence[Chunk], tenant: str = "default") -> Extraction:
        by_chunk: dict[str, Any] = {}
        for doc_id in dict.fromkeys(c.doc_id for c in chunks):
            row = self.rows.get(doc_id)
            for c, a in zip(W.row_chunks(row), json.loads(row["analyses"] or "[]")):
                by_chunk[c.id] = a
        return self.spacy.assemble(chunks, [self._from(by_chunk[c.id]) for c in chunks], tenant)


def _targets(paths: Sequence[str]) -> list[dict[str, str]]:
    """The files to parse, in the in-process parser's order (directories walked, a file listed twice once)."""
    from .parse_common import abs_source
    from .parsers import _expand

    out, seen = [], set()
    for item in _expand(paths):
        if isinstance(item, FileError):
            out.append({"path": "", "source": item.source, "error": item.reason})
            continue
        source = abs_source(item)
        if source not in seen:
            seen.add(source)
            out.append({"path": str(item), "source": source, "error": ""})
    return out


def _dataset(ray: Any, services: Any, paths: Sequence[str], tenant: str, tags: Sequence[str],
             metadata: dict[str, Any] | None, plan: _Plan, options: RayOptions) -> Any:
    s, pipe = services.settings, services.pipeline
    targets = _targets(paths)
    chunking: dict[str, Any] = {"size": s.chunk_size, "overlap": s.chunk_overlap, "unit": s.chunk_unit,
                                "tokenizer_path": None}
    if s.chunk_unit == "tokens":
        from .embedder import resolve_model_path

        chunking["tokenizer_path"] = str(resolve_model_path(s.embed_model))
    parse = {"tenant": tenant, "tags": list(tags), "metadata": dict(metadata or {}),
             "max_file_bytes": pipe.max_file_bytes, "max_record_chars": pipe.max_record_chars}
    embed = {"model": s.embed_model, "sha256_prefix": s.embed_sha256_prefix, "batch_size": s.embed_batch_size,
             "device": s.device}
    ds = ray.data.from_items(targets, override_num_blocks=max(1, len(targets)))
    ds = ds.flat_map(W.parse_and_chunk, fn_kwargs={"chunking": chunking, "parse": parse}, num_cpus=plan.task_cpus)
    ds = ds.map_batches(W.EmbedActor, fn_constructor_kwargs={"embed": embed, "batch_size_cuda": s.embed_batch_size_cuda},
                        batch_size=options.batch_docs, batch_format="numpy",
                        compute=ray.data.ActorPoolStrategy(size=plan.embed_workers),
                        num_cpus=plan.actor_cpus, num_gpus=plan.embed_gpus)
    if services.extractor is not None:
        spacy = {"model": s.spacy_model, "noun_phrases": s.extract_noun_phrases}
        ds = ds.map_batches(W.SpacyActor, fn_constructor_kwargs={"ontology": services.ontology, "spacy": spacy,
                                                                  "tenant": tenant},
                            batch_size=options.batch_docs, batch_format="numpy",
                            compute=ray.data.ActorPoolStrategy(size=plan.workers),
                            num_cpus=plan.actor_cpus)
    return ds


def _items(ds: Any, rows: _Rows, graph: Any) -> Iterator[Document | FileError]:
    for row in ds.iter_rows():
        if row["kind"] == "error":
            yield FileError(source=row["source"], reason=row["reason"])
            continue
        doc = Document.model_validate_json(row["doc"])
        existing = graph.get_document(doc.id)
        if existing is None or existing.status != "complete":  # else unchanged: the pipeline skips it
            rows.put(doc.id, row)
        yield doc


def ray_ingest(services: Any, paths: Sequence[str], tenant: str = "default", tags: Sequence[str] = (),
               metadata: dict[str, Any] | None = None, progress: Progress | None = None,
               options: RayOptions | None = None) -> IngestRun:
    """Ingest `paths` as services.pipeline.ingest does, the store-free stages on Ray (see the module doc)."""
    options = options or RayOptions()
    check_server_stores(services.settings)
    from .spacy_extractor import SpacyExtractor

    if services.extractor is not None and not isinstance(services.extractor, SpacyExtractor):
        raise ConfigError("--engine ray extracts with spaCy: KGF_LLM_EXTRACT=true is not supported with it yet")
    ray = _import_ray()
    started = not ray.is_initialized()
    if started:
        local = {} if options.address else {"_node_ip_address": "127.0.0.1"}  # a Ray of this machine stays on it
        ray.init(address=options.address or None, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.WARNING, **local)
    ctx = ray.data.DataContext.get_current()
    saved = (ctx.execution_options.preserve_order, ctx.enable_progress_bars)
    ctx.execution_options.preserve_order = True  # the driver forms the in-process groups from the parse order
    ctx.enable_progress_bars = False
    names = None
    try:
        plan = _plan(ray, options)
        log.info("Ray ingest: %s", plan)
        s = services.settings
        names = ray.remote(W.NameEmbedder).options(num_cpus=plan.helper_cpus, max_restarts=-1,
                                                   max_task_retries=-1).remote(
            {"model": s.embed_model, "sha256_prefix": s.embed_sha256_prefix, "batch_size": s.embed_batch_size,
             "device": "cpu"})
        base: IngestPipeline = services.pipeline
        rows = _Rows()
        pipeline = IngestPipeline(base.graph, base.vectors, _RayVectors(rows, names, ray),
                                  _RayExtractor(services.extractor, rows) if services.extractor else None,
                                  cast(Chunker, _RayChunks(rows)), ontology_version=base.ontology_version,
                                  group_size=base.group_size, max_file_bytes=base.max_file_bytes,
                                  max_record_chars=base.max_record_chars, listeners=[*base.listeners, rows],
                                  mode="serial")  # assembling a group here is cheap; the cluster did the work
        ds = _dataset(ray, services, paths, tenant, tags, metadata, plan, options)
        return pipeline.ingest(paths, tenant=tenant, tags=tags, metadata=metadata, progress=progress,
                               items=_items(ds, rows, base.graph))
    finally:
        ctx.execution_options.preserve_order, ctx.enable_progress_bars = saved
        if names is not None:
            ray.kill(names)
        if started:
            ray.shutdown()


__all__ = ["RayOptions", "check_server_stores", "ray_ingest"]
