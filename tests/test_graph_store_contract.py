"""GraphStore contract (kgfactory/testing/graph_store.py), run against every adapter: embedded FalkorDB here, and
Neo4j 5 through testcontainers (`integration`; skipped with the reason when no Docker engine answers, as on the CI
machine)."""
from __future__ import annotations

import pytest

from kgfactory.testing.graph_store import LABELS_FOR, GraphStoreContract, make_document


class TestFalkorDBEmbedded(GraphStoreContract):
    @pytest.fixture
    def graph(self, tmp_path):
        from kgfactory.graph.falkordb_server import EmbeddedFalkorDB
        from kgfactory.graph.falkordb_store import FalkorDBGraphStore

        server = EmbeddedFalkorDB(tmp_path / "data")
        sock = server.start()
        g = FalkorDBGraphStore(unix_socket_path=str(sock), labels_for=LABELS_FOR, on_close=server.stop)
        g.ensure_schema()
        yield g
        g.close()


@pytest.mark.integration
class TestNeo4jContainer(GraphStoreContract):
    @pytest.fixture
    def graph(self, neo4j_container):
        from kgfactory.graph.neo4j_store import Neo4jGraphStore

        c = neo4j_container
        g = Neo4jGraphStore(c.get_connection_url(), c.username, c.password, labels_for=LABELS_FOR)
        g.query("MATCH (n) DETACH DELETE n", read_only=False)  # one server per session: start each test empty
        g.ensure_schema()
        yield g
        g.close()


def test_server_survives_process_and_reattaches(tmp_path):
    """A server left running is re-attached to; data written before a restart is still there (AOF)."""
    from kgfactory.graph.falkordb_server import EmbeddedFalkorDB
    from kgfactory.graph.falkordb_store import FalkorDBGraphStore

    first = EmbeddedFalkorDB(tmp_path / "d")
    sock = first.start()
    g = FalkorDBGraphStore(unix_socket_path=str(sock))
    g.begin_documents([make_document("d1")])
    second = EmbeddedFalkorDB(tmp_path / "d")
    assert second.start() == sock and not second.started_here  # re-attached
    first.stop()
    third = EmbeddedFalkorDB(tmp_path / "d")
    third.start()
    assert third.started_here
    g2 = FalkorDBGraphStore(unix_socket_path=str(third.sock), on_close=third.stop)
    assert g2.get_document("d1")["id"] == "d1"
    g2.close()
    assert not third.sock.exists() or not third._ping()
