"""Shared fixtures: real engines only (Milvus Lite, embedded FalkorDB, MiniLM, spaCy)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("KGF_EMBED_BACKEND", "torch")  # the suite's shared embedder; test_embed_backends.py picks its own

REPO = Path(__file__).resolve().parents[1]
BENCH_DATA = REPO.parent / "shared" / "bench-data"


@pytest.fixture(scope="session")
def embedder():
    """One real MiniLM for the session (loading costs seconds)."""
    from kgfactory.ingest.embedder import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(sha256_prefix="53aa5117", device="cpu")


@pytest.fixture(scope="session")
def ontology():
    from kgfactory.ontology.loader import load_ontology

    return load_ontology()


@pytest.fixture(scope="session")
def extractor(ontology):
    from kgfactory.ingest.spacy_extractor import SpacyExtractor

    ex = SpacyExtractor(ontology)
    ex._load()
    return ex


@pytest.fixture
def make_services(tmp_path, embedder, extractor):
    """Build real Services over a fresh data dir, sharing the session's loaded models."""
    from kgfactory.bootstrap import build_services
    from kgfactory.settings import Settings

    opened = []

    def make(data_dir: Path | None = None, **kw):
        s = Settings(data_dir=data_dir or tmp_path / "data", **kw)
        svc = build_services(s)
        svc.embedder = svc.pipeline.embedder = svc.retriever.embedder = svc.answerer.embedder = embedder
        if svc.extractor is not None:
            svc.extractor = svc.pipeline.extractor = extractor
        opened.append(svc)
        return svc

    yield make
    for svc in opened:
        svc.close()


@pytest.fixture
def sample_dir():
    from kgfactory.cli.main import sample_dir

    return sample_dir()


# --- server legs (issue 5): a real Milvus 2.3.5 server here; Neo4j/Milvus containers where Docker answers ---
@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory):
    """A Milvus 2.3.5 standalone server on loopback, started once per session (see tests/_servers.py)."""
    from _servers import MilvusServer235

    srv = MilvusServer235(tmp_path_factory.mktemp("milvus-server")).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def neo4j_container():
    """Neo4j 5 community by testcontainers; skips with the reason when no Docker engine answers."""
    from _servers import NEO4J_IMAGE, require_docker

    require_docker()
    from testcontainers.community.neo4j import Neo4jContainer

    with Neo4jContainer(NEO4J_IMAGE, password="kgf-test-password") as c:
        yield c


@pytest.fixture(scope="session")
def milvus_container():
    """Milvus standalone by testcontainers; skips with the reason when no Docker engine answers."""
    from _servers import MILVUS_IMAGE, require_docker

    require_docker()
    from testcontainers.community.milvus import MilvusContainer

    with MilvusContainer(MILVUS_IMAGE) as c:
        yield c
