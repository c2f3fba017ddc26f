"""GraphStore contract (kgfactory/testing/graph_store.py), run against every adapter: embedded FalkorDB here, and
Neo4j 5 through testcontainers (`integration`; skipped with the reason when no Docker engine answers, as on the CI
machine)."""
from __future__ import annotations

import pytest

from kgfactory.testing.graph_store import LABELS_FOR, GraphStoreContract, make_document, write_document


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

    def test_copy_pages_and_imports_as_stored(self, graph, tmp_path):
        """`kgf migrate`'s methods: a graph copied through them into another store reads back the same."""
        write_document(graph, "d1", ["pa", "cb"], [("pa", "cb")], n_chunks=3)
        write_document(graph, "d2", ["pd"], n_chunks=1)
        assert graph.page_node_ids("Chunk", "", 2) == ["d1_c0", "d1_c1"]
        assert graph.page_node_ids("Chunk", "d1_c1", 10) == ["d1_c2", "d2_c0"]
        [node] = graph.page_nodes("Entity", "ca", 1)
        assert node.id == "cb" and "City" in node.labels and node.props["name"] == "CB"
        assert not any(k.startswith("_") for k in node.props)
        assert sorted(graph.next_links(["d1_c0", "d1_c1", "d1_c2"])) == [("d1_c0", "d1_c1"), ("d1_c1", "d1_c2")]
        [rel] = graph.relations_of(["pa"])
        assert (rel.source_id, rel.target_id, rel.type, rel.props["chunk_ids"]) == ("pa", "cb", "CO_OCCURS", ["d1_c0"])
        with pytest.raises(ValueError):
            graph.page_nodes("KGMeta", "", 10)  # only the labels kgf migrate copies

        from kgfactory.graph.falkordb_server import EmbeddedFalkorDB
        from kgfactory.graph.falkordb_store import FalkorDBGraphStore

        server = EmbeddedFalkorDB(tmp_path / "copy")
        dst = FalkorDBGraphStore(unix_socket_path=str(server.start()), labels_for=LABELS_FOR, on_close=server.stop)
        try:
            dst.ensure_schema()
            for label in ("Document", "Chunk", "Entity"):
                dst.import_nodes(label, graph.page_nodes(label, "", 100))
            cids = graph.page_node_ids("Chunk", "", 100)
            dst.link_next(graph.next_links(cids))
            dst.import_mentions(graph.export_mentions_of_chunks(cids))
            dst.import_relations(graph.relations_of(graph.page_node_ids("Entity", "", 100)))
            dst.set_revision(graph.revision() + 5)
            assert dst.stats() == graph.stats() and dst.revision() == graph.revision() + 5
            assert dst.entity("cb", "default") == graph.entity("cb", "default")
            assert sorted(dst.export_entity_edges(), key=str) == sorted(graph.export_entity_edges(), key=str)
        finally:
            dst.close()


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
    assert g2.get_document("d1").id == "d1"
    g2.close()
    assert not third.sock.exists() or not third._ping()
