"""The one place that turns Settings into adapters. Nothing here runs at import time."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from .errors import ConfigError
from .ports import (LLM, Answerer, BatchVectorSearch, CypherViews, Embedder, Extractor, ExtractorRun, GraphStore,
                    Releasable, VectorReindex, VectorStore)
from .settings import Settings, get_settings

if TYPE_CHECKING:  # the adapters and subsystems are imported where they are built, never at import time
    from .graph.falkordb_views import FalkorDBTenantViews
    from .ingest.embedder import SentenceTransformerEmbedder
    from .ingest.onnx_embedder import OnnxEmbedder
    from .ingest.pipeline import IngestPipeline
    from .llm.openai_llm import OpenAILLM
    from .ontology.model import Ontology
    from .ontology.quarantine import Quarantine
    from .ontology.rdf_view import RdfView
    from .retrieval.retriever import Retriever
    from .vector.milvus_store import MilvusVectorStore

log = logging.getLogger(__name__)


@dataclass
class Services:
    """The wired-up stores and models for one data directory; close() releases them."""

    settings: Settings
    ontology: Ontology
    graph: GraphStore
    vectors: VectorStore
    embedder: Embedder
    extractor: Extractor | None  # None when KGF_EXTRACT=false
    pipeline: IngestPipeline
    retriever: Retriever | None = None
    answerer: Answerer | None = None
    _closers: list[Callable[[], None]] = field(default_factory=list)
    llm: LLM | None = None  # the LLM port adapter, None when no LLM is configured
    cypher_views: CypherViews | None = None  # analysts' read-only Cypher on per-tenant views (build_cypher_views)
    rdf: RdfView | None = None  # SPARQL over the RDF view (<data_dir>/rdf), in step with ingest
    quarantine: Quarantine | None = None  # edges the ontology refused (kgf ontology violations)
    vector_reindex: VectorReindex | None = None  # the vector store, when it records its embedder (kgf reindex)

    def on_close(self, fn: Callable[[], None]) -> None:
        """Run `fn` when the services close (after what was opened before it is closed: last in, first out)."""
        self._closers.append(fn)

    def close(self) -> None:
        for fn in reversed(self._closers):
            try:
                fn()
            except Exception as e:  # keep closing the rest
                log.warning("error while closing: %s", e)
        self._closers.clear()

    def __enter__(self) -> "Services":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def build_graph_store(settings: Settings, ontology: Ontology) -> GraphStore:
    if settings.graph_backend == "falkordb":
        from .graph.falkordb_server import EmbeddedFalkorDB
        from .graph.falkordb_store import FalkorDBGraphStore

        if settings.falkordb_url:  # a FalkorDB server other processes share (replicas, Ray ingest)
            return FalkorDBGraphStore(graph_name=settings.graph_name, labels_for=ontology.labels_for,
                                      call_timeout_s=settings.graph_call_timeout_s,
                                      change_retention=settings.changelog_retention,
                                      **falkordb_address(settings.falkordb_url))
        server = EmbeddedFalkorDB(settings.data_dir, detached=settings.falkordb_keep_running)
        sock = server.start()
        on_close = None if settings.falkordb_keep_running else server.stop
        try:
            return FalkorDBGraphStore(graph_name=settings.graph_name, unix_socket_path=str(sock),
                                      labels_for=ontology.labels_for, on_close=on_close,
                                      call_timeout_s=settings.graph_call_timeout_s,
                                      change_retention=settings.changelog_retention)
        except Exception:
            if on_close:
                on_close()
            raise
    if settings.graph_backend == "neo4j":
        from .graph.neo4j_store import Neo4jGraphStore

        return Neo4jGraphStore.from_settings(settings, labels_for=ontology.labels_for)
    raise ConfigError(f"KGF_GRAPH_BACKEND={settings.graph_backend!r} is not supported")


def falkordb_address(url: str) -> dict[str, Any]:
    """KGF_FALKORDB_URL as the FalkorDB adapter's connection arguments: unix:///path or redis://[:pw@]host:port."""
    from urllib.parse import urlsplit

    u = urlsplit(url)
    if u.scheme == "unix" and u.path:
        return {"unix_socket_path": u.path}
    if u.scheme in ("redis", "falkor", "falkordb") and u.hostname:
        return {"host": u.hostname, "port": u.port or 6379, "password": u.password or None}
    raise ConfigError(f"KGF_FALKORDB_URL={url!r} must look like redis://[:password@]host:port or unix:///path/to.sock")


def build_vector_store(settings: Settings) -> MilvusVectorStore:
    from .vector.milvus_store import MilvusVectorStore

    if settings.milvus_uri:
        return MilvusVectorStore(settings.milvus_uri, token=settings.milvus_token, db_name=settings.milvus_db)
    return MilvusVectorStore.embedded(settings.data_dir)


def llm_enabled(settings: Settings) -> bool:
    """KGF_LLM forces it on or off; unset, an LLM is used when KGF_LLM_BASE_URL is set."""
    return settings.llm if settings.llm is not None else bool(settings.llm_base_url)


def build_llm(settings: Settings, ledger: bool = True) -> OpenAILLM:
    """The OpenAI-compatible chat adapter, with its breaker and the per-tenant token ledger under data_dir/llm
    (`ledger=False`: no accounting, for `kgf llm check`)."""
    from .llm.breaker import CircuitBreaker
    from .llm.ledger import TokenLedger
    from .llm.openai_llm import OpenAILLM

    return OpenAILLM(settings.llm_base_url, settings.llm_model, api_key=settings.llm_api_key,
                     timeout_s=settings.llm_timeout_s, max_retries=settings.llm_max_retries,
                     backoff_s=settings.llm_backoff_s,
                     breaker=CircuitBreaker(settings.llm_breaker_failures, settings.llm_breaker_reset_s),
                     ledger=TokenLedger(settings.data_dir / "llm" / "usage.json", settings.llm_tenant_token_budget)
                     if ledger else None,
                     temperature=settings.llm_temperature, max_tokens=settings.llm_max_tokens)


def extract_processes(settings: Settings) -> int:
    """KGF_EXTRACT_PROCESSES with auto (-1) resolved: none on up to 3 cores (measured on 2: no gain, the embedder
    and the writes already fill them), else one per 2 cores past the first 2, at most 4."""
    if settings.extract_processes >= 0:
        return settings.extract_processes
    from .ingest.onnx_embedder import cpu_cores

    return min(4, max(0, (cpu_cores() - 2) // 2))


def embed_backend(settings: Settings, device: str, recorded: str | None = None) -> str:
    """KGF_EMBED_BACKEND with auto resolved: the backend the vector collections record when they exist (so an
    upgrade or a move between CPU and GPU never refuses an existing KB), else on the CPU OpenVINO bf16 where the
    CPU has native bf16 (fastest, same recall) and fp32 ONNX elsewhere (int8 lost up to 2.3 points of vector
    recall@5 on MuSiQue/HotpotQA, over the 1-point bar), and torch (fp16) on CUDA."""
    if settings.embed_backend == "auto":
        if recorded:
            return recorded
        if device == "cuda":
            return "torch"
        from .ingest.openvino_embedder import native_bf16

        return "openvino-bf16" if native_bf16() else "onnx"
    return settings.embed_backend


def build_embedder(settings: Settings, recorded: str | None = None) -> SentenceTransformerEmbedder | OnnxEmbedder:
    from .ingest.embedder import SentenceTransformerEmbedder
    from .retrieval.compute import resolve_device

    device = resolve_device(settings.device)
    backend = embed_backend(settings, device, recorded)
    if recorded and settings.embed_backend == "auto" and backend != "torch":
        device = "cpu"  # a KB filled by ONNX keeps its vector space on a GPU machine: ONNX runs on the CPU there
    batch = settings.embed_batch_size_cuda if device == "cuda" else settings.embed_batch_size
    if backend != "torch":  # CPU backends refuse a CUDA device (ConfigError) rather than mix backends silently
        from .ingest.onnx_embedder import OnnxEmbedder
        from .ingest.openvino_embedder import OpenVinoEmbedder

        cls = OpenVinoEmbedder if backend.startswith("openvino") else OnnxEmbedder
        return cls(settings.embed_model, backend=backend, sha256_prefix=settings.embed_sha256_prefix,
                   cache_dir=settings.embed_cache_dir or settings.data_dir / "models", batch_size=batch,
                   threads=settings.embed_threads, device=device)
    return SentenceTransformerEmbedder(settings.embed_model, sha256_prefix=settings.embed_sha256_prefix,
                                       batch_size=batch, device=device)


def class_cues(ontology: Ontology) -> dict[str, set[str]]:
    """Question words -> the ontology classes they ask for: class labels and alt labels, plus who/where.

    A cue covers the class family (subclasses, and superclasses short of the fallback class), because the
    extractor can often only say Location where the question says country."""
    fallback = ontology.FALLBACK_CLASS

    def family(cls: str) -> set[str]:
        fam = {cls} | {c for c in ontology.classes if ontology.is_a(c, cls)}
        fam |= {a for a in ontology.ancestors(cls) if a != fallback}
        return fam

    cues: dict[str, set[str]] = {}
    for c in ontology.classes.values():
        if c.name == fallback:
            continue
        for label in [c.label, *c.alt_labels]:
            words = label.lower().split()
            if len(words) == 1:
                cues.setdefault(words[0], set()).update(family(c.name))
    for word, cls in (("who", "Person"), ("whom", "Person"), ("where", "Location")):
        if cls in ontology.classes:
            cues.setdefault(word, set()).update(family(cls))
    return cues


_PREPS = {"in", "for", "at", "of", "by", "with", "on", "to", "from"}


def relation_cues(ontology: Ontology) -> dict[str, set[str]]:
    """Trigger phrase -> relation types (and their inverses). 'headquartered in' also answers to
    'headquartered' alone when that word is long enough to be specific."""
    cues: dict[str, set[str]] = {}
    for p in ontology.object_properties.values():
        types = {p.name} | ({p.inverse_of} if p.inverse_of else set())
        for phrase in {p.label.lower(), *(a.lower() for a in p.alt_labels)}:
            words = phrase.split()
            if not words:
                continue
            cues.setdefault(" ".join(words), set()).update(types)
            if len(words) == 2 and words[1] in _PREPS and len(words[0]) >= 6:
                cues.setdefault(words[0], set()).update(types)
    return cues


def build_services(settings: Settings | None = None) -> Services:
    """Open every store for the settings' data directory. Models load lazily on first use."""
    from .ingest.chunker import Chunker
    from .ingest.embedder import embedding_identity, resolve_model_path
    from .ingest.pipeline import IngestPipeline
    from .ingest.spacy_extractor import SpacyExtractor
    from .ontology.loader import load_ontology

    settings = settings or get_settings()
    settings.data_dir = settings.data_dir.expanduser().resolve()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    from .ontology.evolution import active_ontology_path

    # KGF_ONTOLOGY_PATH, else the one `kgf ontology load` made current for this data dir, else the bundled one
    ontology = load_ontology(settings.ontology_path or active_ontology_path(settings.data_dir))
    closers: list[Callable[[], None]] = []
    graph = build_graph_store(settings, ontology)
    closers.append(graph.close)
    try:
        vectors: VectorStore = build_vector_store(settings)
        closers.append(vectors.close)
        # auto follows the backend that filled the collections (None: no collections yet, or not recorded there)
        recorded = vectors.embedding_record() if settings.embed_backend == "auto" and isinstance(
            vectors, VectorReindex) else None
        embedder: Embedder = build_embedder(settings, recorded.get("backend") if recorded else None)
        extractor: Extractor | None = SpacyExtractor(ontology, model=settings.spacy_model,
                                                     noun_phrases=settings.extract_noun_phrases,
                                                     processes=extract_processes(settings)) \
            if settings.extract else None
        run_resources: list[Releasable] = [extractor] if isinstance(extractor, Releasable) else []  # before an LLM wraps it
        llm: LLM | None = build_llm(settings) if llm_enabled(settings) else None
        if llm is not None:
            closers.append(llm.close)
        if settings.llm_extract and extractor is not None:
            if llm is None:
                raise ConfigError("KGF_LLM_EXTRACT=true needs an LLM: set KGF_LLM_BASE_URL (or KGF_LLM=true)")
            from .llm.extract_cache import ExtractionCache
            from .llm.llm_extractor import LLMExtractor

            cache = ExtractionCache(settings.data_dir / "llm" / "extract_cache.sqlite")
            closers.append(cache.close)
            extractor = LLMExtractor(extractor, llm, ontology, cache, json_mode=settings.llm_extract_json,
                                     concurrency=settings.llm_extract_concurrency)
        tok = str(resolve_model_path(settings.embed_model)) if settings.chunk_unit == "tokens" else None
        chunker = Chunker(settings.chunk_size, settings.chunk_overlap, settings.chunk_unit, tokenizer_path=tok)
        # optional capabilities are checked here, once: the pipeline and the retriever never probe for them
        pipeline = IngestPipeline(graph, vectors, embedder, extractor, chunker, ontology_version=ontology.version,
                                  max_file_bytes=settings.max_file_bytes, max_record_chars=settings.max_record_chars,
                                  extractor_run=extractor if isinstance(extractor, ExtractorRun) else None,
                                  run_resources=run_resources,
                                  mode=settings.ingest_pipeline, inflight_groups=settings.ingest_inflight_groups)
    except Exception:
        for fn in reversed(closers):
            fn()
        raise
    from .retrieval.answer import ExtractiveAnswerer
    from .retrieval.compute import resolve_device
    from .retrieval.retriever import Retriever

    retriever = Retriever(graph, vectors, embedder, class_cues=class_cues(ontology),
                          relation_cues=relation_cues(ontology), device=resolve_device(settings.device),
                          vector_search=settings.vector_search,
                          batch_search=vectors if isinstance(vectors, BatchVectorSearch) else None)
    answerer: Answerer = ExtractiveAnswerer(embedder, abstain_below=settings.abstain_threshold)
    if llm is not None:
        from .llm.answerer import GeneratingAnswerer
        from .llm.grounding import GateThresholds
        from .llm.prompts import load_prompt

        ground = GateThresholds(settings.llm_ground_min_sim, settings.llm_ground_min_names,
                                settings.llm_ground_min_words, settings.llm_ground_min_supported)
        answerer = GeneratingAnswerer(llm, answerer, prompt=load_prompt(settings.llm_answer_prompt),
                                      context_chars=settings.llm_context_chars, default_tenant=settings.tenant,
                                      ground=ground if settings.llm_ground else None)
    from .ontology.quarantine import Quarantine
    from .ontology.rdf_view import RdfView, SemanticSync
    from .ontology.sparql_guard import Limits

    rdf = RdfView(settings.data_dir / "rdf", graph, ontology, Limits.from_settings(settings))  # opens on first use
    quarantine = Quarantine(settings.data_dir / "quarantine.sqlite")
    closers[1:1] = [rdf.close, quarantine.close]  # closed before the graph store they read
    pipeline.listeners.append(SemanticSync(rdf, quarantine, ontology, graph))
    services = Services(settings, ontology, graph, vectors, embedder, extractor, pipeline, retriever, answerer,
                        closers, llm=llm, rdf=rdf, quarantine=quarantine)
    if isinstance(vectors, VectorReindex):  # collections refuse another embedder's vectors (read when first used)
        vectors.bind_embedding(lambda: embedding_identity(services.embedder))
        services.vector_reindex = vectors
    return services


def build_cypher_views(services: Services) -> CypherViews | None:
    """Analysts' Cypher runs on per-tenant copies of the graph: in a private engine with FalkorDB (see
    graph/falkordb_views.py), started on the first analyst query; in a database per tenant on Neo4j
    Enterprise/Aura, or for all-tenant keys only on Community (graph/neo4j_views.py). The API calls this once at
    start-up; Services.close() stops the engine."""
    s = services.settings
    if services.cypher_views is not None:  # one set of views per Services, however often this is called
        return services.cypher_views
    if s.graph_backend == "neo4j":
        from .graph.neo4j_store import Neo4jGraphStore
        from .graph.neo4j_views import Neo4jTenantViews

        if not isinstance(services.graph, Neo4jGraphStore):
            raise ConfigError("KGF_GRAPH_BACKEND=neo4j but the graph store is not Neo4j's")
        services.cypher_views = Neo4jTenantViews(services.graph, max_timeout_ms=s.cypher_timeout_ms)
        services.on_close(services.cypher_views.close)
    if s.graph_backend == "falkordb":
        from .graph.falkordb_views import FalkorDBTenantViews

        from .graph.falkordb_store import FalkorDBGraphStore

        if not isinstance(services.graph, FalkorDBGraphStore):
            raise ConfigError("KGF_GRAPH_BACKEND=falkordb but the graph store is not FalkorDB's")
        views = FalkorDBTenantViews(services.graph, s.data_dir, call_timeout_s=s.graph_call_timeout_s,
                                    max_timeout_ms=s.cypher_timeout_ms, legacy_prefix=f"{s.graph_name}__tenant_view__")
        services.cypher_views = views
        services.on_close(views.close)
    return services.cypher_views
