"""End to end on the production stack: ingest -> ask against Neo4j 5 + Milvus in containers (testcontainers).
Marked `integration`; skipped with the reason when no Docker engine answers (as on the CI machine)."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def test_ingest_then_ask_on_neo4j_and_milvus(tmp_path, make_services, sample_dir, neo4j_container, milvus_container):
    svc = make_services(tmp_path / "api-state", graph_backend="neo4j", neo4j_uri=neo4j_container.get_connection_url(),
                        neo4j_user=neo4j_container.username, neo4j_password=neo4j_container.password,
                        milvus_uri=milvus_container.get_connection_url())
    svc.graph.query("MATCH (n) DETACH DELETE n", read_only=False)
    run = svc.pipeline.ingest([str(sample_dir)])
    assert run.documents_added == 6 and not run.errors
    stats = svc.graph.stats()
    assert stats["Document"] == 6 and svc.vectors.count("chunks") == stats["Chunk"]
    answer = svc.answerer.answer(svc.retriever.search("Who founded Helios Robotics?", top_k=3))
    assert "Marie Dubois" in answer.text and answer.citations
    again = svc.pipeline.ingest([str(sample_dir)])  # re-ingest is a MERGE: nothing changes
    assert again.documents_unchanged == 6 and svc.graph.stats() == stats
