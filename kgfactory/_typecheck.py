"""Static proof that every adapter fits its port: the type checker reads these functions, nothing calls them.

Each function takes an adapter and returns it as its port (or capability), so `mypy kgfactory/_typecheck.py`
fails when an adapter's method drifts from the port's signature (a renamed parameter, a changed return type, a
missing method). The imports are for the checker only: importing this module at run time loads no adapter.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .bootstrap import Services
    from .graph.falkordb_store import FalkorDBGraphStore
    from .graph.falkordb_views import FalkorDBTenantViews
    from .graph.neo4j_store import Neo4jGraphStore
    from .ingest.embedder import SentenceTransformerEmbedder
    from .ingest.spacy_extractor import SpacyExtractor
    from .llm.answerer import GeneratingAnswerer
    from .llm.llm_extractor import LLMExtractor
    from .llm.openai_llm import OpenAILLM
    from .migration import CopyableVectorStore
    from .ontology.rdf_view import RdfView, SemanticSync
    from .ports import (LLM, BatchVectorSearch, CypherViews, Embedder, Extractor, ExtractorRun, GraphStore,
                        IngestListener, StreamingAnswerer, VectorStore)
    from .retrieval.answer import ExtractiveAnswerer
    from .vector.milvus_store import MilvusVectorStore


def _falkordb(x: FalkorDBGraphStore) -> GraphStore:
    return x


def _neo4j(x: Neo4jGraphStore) -> GraphStore:
    return x


def _milvus(x: MilvusVectorStore) -> VectorStore:
    return x


def _milvus_batch(x: MilvusVectorStore) -> BatchVectorSearch:
    return x


def _milvus_copy(x: MilvusVectorStore) -> CopyableVectorStore:
    return x


def _embedder(x: SentenceTransformerEmbedder) -> Embedder:
    return x


def _spacy(x: SpacyExtractor) -> Extractor:
    return x


def _llm_extractor(x: LLMExtractor) -> Extractor:
    return x


def _llm_extractor_run(x: LLMExtractor) -> ExtractorRun:
    return x


def _openai(x: OpenAILLM) -> LLM:
    return x


def _extractive(x: ExtractiveAnswerer) -> StreamingAnswerer:
    return x


def _generating(x: GeneratingAnswerer) -> StreamingAnswerer:
    return x


def _semantic_sync_listens(x: SemanticSync) -> IngestListener:
    return x


def _rdf_view_listens(x: RdfView) -> IngestListener:
    return x


def _views(x: FalkorDBTenantViews) -> CypherViews:
    return x


def _services(x: Services) -> Services:  # keeps bootstrap in the checked set when this file is checked alone
    return x
