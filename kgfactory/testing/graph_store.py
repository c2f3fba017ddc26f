"""The GraphStore contract: what every graph adapter must do, as a pytest suite to subclass (see __init__).

The retriever, the pipeline and the views rely on these behaviours: documents and their chunks in order, entities
with their class's superclass labels, re-writes as merges, deletes that keep what other documents still say,
delta reads that agree with the full exports, read-only queries that refuse writes.
"""
from __future__ import annotations

import pytest

from ..errors import GraphStoreError
from ..ports import GraphStore
from ..types import Chunk, Document, Entity, IngestRun, Mention, Relation


def LABELS_FOR(c: str) -> list[str]:
    """The class -> labels map a store under test must be built with (a City is also a Location)."""
    return {"City": ["City", "Location"]}.get(c, [c])


def make_document(i: str, source: str | None = None, tenant: str = "default") -> Document:
    """A small document with metadata (the suite checks it round-trips)."""
    return Document(id=i, source=source or f"/src/{i}", title=f"T{i}", mime="text/plain", text="x" * 20, tenant=tenant,
                    metadata={"k": [1, 2]})


def make_chunks(doc: str, n: int) -> list[Chunk]:
    return [Chunk(id=f"{doc}_c{k}", doc_id=doc, index=k, text="x", start=k, end=k + 1) for k in range(n)]


def write_document(g: GraphStore, doc_id: str, entity_ids: list[str], rel_pairs: tuple | list = (),
                   n_chunks: int = 2) -> None:
    """Write a complete document as the pipeline does: ids starting with c are Cities, the rest Persons."""
    d = make_document(doc_id)
    ch = make_chunks(doc_id, n_chunks)
    g.begin_documents([d])
    g.write_chunks(ch)
    ents = [Entity(id=e, name=e.upper(), label="City" if e.startswith("c") else "Person") for e in entity_ids]
    mentions = [Mention(chunk_id=ch[0].id, entity_id=e) for e in entity_ids]
    rels = [Relation(source_id=a, target_id=b, type="CO_OCCURS", chunk_ids=[ch[0].id]) for a, b in rel_pairs]
    g.write_extraction(ents, mentions, rels)
    g.complete_documents([{"id": doc_id, "chunks": n_chunks, "entities": len(ents), "run_id": "r"}])


class GraphStoreContract:
    """Every GraphStore adapter's contract. Subclass it with a `graph` fixture (see kgfactory/testing)."""

    @pytest.fixture
    def graph(self):
        raise NotImplementedError("a GraphStoreContract subclass provides the `graph` fixture: an empty store")

    def test_is_a_graph_store(self, graph):
        assert isinstance(graph, GraphStore)

    def test_ensure_schema_is_idempotent(self, graph):
        graph.ensure_schema()
        graph.ensure_schema()

    def test_document_lifecycle_status(self, graph):
        graph.begin_documents([make_document("d1")])
        assert graph.get_document("d1").status == "pending"
        graph.complete_documents([{"id": "d1", "chunks": 0, "entities": 0, "run_id": "r"}])
        d = graph.get_document("d1")
        assert d.status == "complete" and d.metadata == {"k": [1, 2]}
        assert graph.get_document("nope") is None

    def test_chunks_hang_off_their_document_in_order(self, graph):
        write_document(graph, "d1", [], n_chunks=3)
        assert sorted(graph.chunk_ids("d1")) == ["d1_c0", "d1_c1", "d1_c2"]
        s = graph.stats()
        assert s["HAS_CHUNK"] == 3 and s["NEXT"] == 2

    def test_entities_get_class_and_superclass_labels(self, graph):
        write_document(graph, "d1", ["cparis", "pmarie"])
        rows = graph.query("MATCH (e:Location) RETURN e.name AS name, labels(e) AS labels")
        assert rows == [{"name": "CPARIS", "labels": ["Entity", "City", "Location"]}]

    def test_rewrite_is_a_merge(self, graph):
        write_document(graph, "d1", ["pa", "pb"], [("pa", "pb")])
        before = graph.stats()
        write_document(graph, "d1", ["pa", "pb"], [("pa", "pb")])
        assert graph.stats() == before

    def test_shared_relation_survives_one_supporting_delete(self, graph):
        write_document(graph, "d1", ["pa", "pb"], [("pa", "pb")])
        write_document(graph, "d2", ["pa", "pb"], [("pa", "pb")])
        w = graph.query("MATCH (:Entity {id:'pa'})-[r:CO_OCCURS]->(:Entity {id:'pb'}) RETURN r.weight AS w")
        assert w == [{"w": 2}]
        assert graph.delete_document("d1") == []  # both entities still mentioned by d2
        w = graph.query("MATCH (:Entity {id:'pa'})-[r:CO_OCCURS]->(:Entity {id:'pb'}) RETURN r.weight AS w")
        assert w == [{"w": 1}]
        assert sorted(graph.delete_document("d2")) == ["pa", "pb"]
        assert graph.stats() == {"Document": 0, "Chunk": 0, "Entity": 0}

    def test_delete_keeps_entities_other_documents_mention(self, graph):
        write_document(graph, "d1", ["pa", "pb"], [("pa", "pb")])
        write_document(graph, "d2", ["pb", "pc"], [("pb", "pc")])
        assert graph.delete_document("d1") == ["pa"]
        s = graph.stats()
        assert s["Entity"] == 2 and s["CO_OCCURS"] == 1 and s["Document"] == 1

    def test_delta_reads_are_the_exports_restricted(self, graph):
        """The retriever's incremental refresh reads these; they must agree with the full exports row for row."""
        write_document(graph, "d1", ["pa", "pb"], [("pa", "pb")])
        write_document(graph, "d2", ["pb", "pc", "cx"], [("pb", "pc"), ("pc", "cx")], n_chunks=3)
        write_document(graph, "d3", ["pd", "pe"], [("pd", "pe")])
        graph.begin_documents([make_document("d4")])  # pending: not a chunk anyone may retrieve yet
        graph.write_chunks(make_chunks("d4", 1))

        def key(rows, *fields):
            return sorted(tuple(str(getattr(r, f)) for f in fields) for r in rows)

        chunks = [r for r in graph.export_chunks() if r.doc_id in ("d2", "d4")]
        assert key(graph.export_chunks_of_documents(["d2", "d4", "nope"]), "id", "doc_id", "tenant") == \
            key(chunks, "id", "doc_id", "tenant") and len(chunks) == 3
        cids = ["d2_c0", "d2_c1", "d1_c0"]
        assert key(graph.export_mentions_of_chunks(cids), "chunk_id", "entity_id", "count") == \
            key([m for m in graph.export_mentions() if m.chunk_id in cids], "chunk_id", "entity_id", "count")
        ents = graph.export_entities_by_id(["pb", "cx", "gone"])
        assert key(ents, "id", "name", "label") == \
            key([e for e in graph.export_entities() if e.id in ("pb", "cx")], "id", "name", "label")
        want = [e for e in graph.export_entity_edges() if {e.source_id, e.target_id} & {"pb", "pc"}]
        got = graph.export_edges_of_entities(["pb", "pc"])
        assert len(got) == len(want) == 3  # pa-pb, pb-pc (both ends asked for: once), pc-cx
        assert key(got, "source_id", "target_id", "type", "weight") == key(want, "source_id", "target_id", "type", "weight")

    def test_documents_by_source_and_tenant(self, graph):
        graph.begin_documents([make_document("d1", "/same"), make_document("d2", "/same", tenant="other")])
        assert [d.id for d in graph.documents_by_source("/same", "default")] == ["d1"]
        assert [d.id for d in graph.list_documents(tenant="other")] == ["d2"]
        assert [d.id for d in graph.list_documents(status="pending")] == ["d1", "d2"]

    def test_runs_are_recorded(self, graph):
        graph.record_run(IngestRun(id="run1", documents_added=3))
        assert graph.list_runs()[0].documents_added == 3

    def test_read_only_query_refuses_writes(self, graph):
        for q in ("CREATE (n:X)", "MATCH (n) DETACH DELETE n", "MATCH (n) SET n.x = 1", "merge (n:X {id:1})"):
            with pytest.raises(GraphStoreError, match="write clauses"):
                graph.query(q)
        assert graph.query("MATCH (n) WHERE n.name = 'CREATE' RETURN count(n) AS n") == [{"n": 0}]

    def test_labels_and_types_must_be_identifiers(self, graph):
        with pytest.raises(GraphStoreError, match="not a plain identifier"):
            graph.write_extraction([], [], [Relation(source_id="a", target_id="b", type="X]->() DELETE n //")])

    # -- typed rows, and the named methods the ontology, migration and analyst code call instead of raw Cypher --
    def test_reads_return_typed_rows(self, graph):
        from kgfactory import rows as R

        write_document(graph, "d1", ["pa", "cb"], [("pa", "cb")], n_chunks=2)
        assert isinstance(graph.get_document("d1"), R.DocumentRow)
        assert all(isinstance(r, R.ChunkRef) for r in graph.export_chunks())
        assert {type(r) for r in graph.export_entities()} == {R.EntityRow}
        assert {type(r) for r in graph.export_mentions()} == {R.MentionRow}
        assert {type(r) for r in graph.export_entity_edges()} == {R.EdgeRow}
        got = graph.get_chunks(["d1_c0"])
        assert [(c.id, c.doc_id, c.index, c.title, c.tenant) for c in got] == [("d1_c0", "d1", 0, "Td1", "default")]
        links = {r.id: (r.prev_id, r.next_id) for r in graph.neighbour_chunks(["d1_c0", "d1_c1"])}
        assert links == {"d1_c0": (None, "d1_c1"), "d1_c1": ("d1_c0", None)}
        assert sorted((r.chunk_id, r.id, r.label) for r in graph.chunk_entities(["d1_c0"])) == \
            [("d1_c0", "cb", "City"), ("d1_c0", "pa", "Person")]
        assert isinstance(graph.list_runs(), list)

    def test_analyst_reads_stay_in_their_tenant(self, graph):
        from kgfactory import rows as R

        write_document(graph, "d1", ["pa", "cb"], [("pa", "cb")])
        e = graph.entity("cb", "default")
        assert isinstance(e, R.EntityRecord) and e.label == "City" and "Location" in e.labels
        assert graph.entity("cb", "other") is None
        [n] = graph.entity_neighbours("cb", "default")
        assert isinstance(n, R.Neighbour) and (n.id, n.type, n.outgoing) == ("pa", "CO_OCCURS", False)
        assert [(m.chunk_id, m.doc_id) for m in graph.entity_mentions("pa", "default")] == [("d1_c0", "d1")]
        assert graph.entity_neighbours("cb", "other") == [] and graph.entity_mentions("pa", "other") == []

    def test_semantic_reads(self, graph):
        from kgfactory import rows as R

        write_document(graph, "d1", ["pa", "cb"], [("pa", "cb")])
        graph.write_extraction([], [], [Relation(source_id="pa", target_id="cb", type="livesIn", chunk_ids=["d1_c0"])])
        texts = graph.export_chunk_texts()
        assert sorted((c.id, c.index, c.text, c.tenant) for c in texts) == \
            [("d1_c0", 0, "x", "default"), ("d1_c1", 1, "x", "default")]
        ents = {e.id: e for e in graph.export_entity_classes()}
        assert isinstance(ents["cb"], R.EntityClassRow) and sorted(ents["cb"].labels) == ["City", "Entity", "Location"]
        [r] = graph.export_typed_relations()  # CO_OCCURS is not a typed relation
        assert (r.source_id, r.type, r.target_id, r.chunk_ids, r.source_class, r.target_class) == \
            ("pa", "livesIn", "cb", ["d1_c0"], "Person", "City")

    def test_ontology_change_writes(self, graph):
        write_document(graph, "d1", ["pa", "cb"], [("pa", "cb")])
        graph.write_extraction([], [], [Relation(source_id="pa", target_id="cb", type="livesIn", chunk_ids=["d1_c0"])])
        rev = graph.revision()
        graph.relabel_entities(["cb"], ["City", "Location"], ["Place"], "Place")
        e = graph.entity("cb", "default")
        assert e.label == "Place" and sorted(e.labels) == ["Entity", "Place"]
        graph.relabel_entities(["pa"], [], ["Human"], "Human")  # no labels to remove
        assert sorted(graph.entity("pa", "default").labels) == ["Entity", "Human", "Person"]
        graph.delete_relations("livesIn", [("pa", "cb")])
        assert graph.export_typed_relations() == [] and graph.stats()["CO_OCCURS"] == 1
        t_rev, all_rev = graph.tenant_revision("default")
        graph.bump_revision()
        assert graph.revision() == rev + 1 and graph.tenant_revision("default") == (t_rev, all_rev + 1)
        with pytest.raises(GraphStoreError, match="not a plain identifier"):
            graph.delete_relations("x]->() DELETE n //", [("pa", "cb")])

    def test_graph_config_round_trip(self, graph):
        assert graph.graph_config() == ({}, {})
        graph.write_graph_config({"ontology_version": "1", "_classLabel": "Class"}, {"kgf": "urn:x#"})
        graph.write_graph_config({"ontology_version": "2"}, {"ex": "urn:y#"})  # config merges, prefixes replace
        cfg, pre = graph.graph_config()
        assert cfg["ontology_version"] == "2" and cfg["_classLabel"] == "Class"
        assert {k: v for k, v in pre.items() if not k.startswith("_")} == {"ex": "urn:y#"}

    def test_analyst_query_errors_are_typed(self, graph):
        from kgfactory.errors import CypherQueryError, GraphUnavailableError

        with pytest.raises(CypherQueryError) as bad:
            graph.query("MATCH (n RETURN n")  # the engine refuses it: the query's fault, not the store's
        assert not isinstance(bad.value, GraphUnavailableError)
        with pytest.raises(CypherQueryError, match="write clauses"):
            graph.query("CREATE (n:X)")

    def test_explorer_reads_stay_in_their_tenant(self, graph):
        from kgfactory import rows as R

        write_document(graph, "d1", ["pa", "cb", "pc"], [("pa", "cb"), ("cb", "pc")])
        graph.write_extraction([], [], [Relation(source_id="pa", target_id="cb", type="livesIn", chunk_ids=["d1_c0"])])
        d = make_document("d9", tenant="other")
        graph.begin_documents([d])
        graph.write_chunks([Chunk(id="d9_c0", doc_id="d9", tenant="other", index=0, text="x", start=0, end=1)])
        graph.write_extraction([Entity(id="px", name="PX", label="Person", tenant="other")],
                               [Mention(chunk_id="d9_c0", entity_id="px")],
                               [Relation(source_id="px", target_id="cb", type="livesIn", chunk_ids=["d9_c0"])])
        graph.complete_documents([{"id": "d9", "chunks": 1, "entities": 1, "run_id": "r"}])
        [rel] = graph.entity_relations("cb", "default")  # CO_OCCURS and the other tenant's edge left out
        assert isinstance(rel, R.EntityRelation)
        assert (rel.type, rel.outgoing, rel.id, rel.label, rel.chunk_ids) == ("livesIn", False, "pa", "Person", ["d1_c0"])
        assert graph.entity_relations("cb", "other") == []
        edges = graph.neighbourhood_edges(["cb"], "default")
        assert {type(e) for e in edges} == {R.NeighbourhoodEdge}
        assert sorted((e.source_id, e.target_id, e.type) for e in edges) == \
            [("cb", "pc", "CO_OCCURS"), ("pa", "cb", "CO_OCCURS"), ("pa", "cb", "livesIn")]
        assert {e.other_id for e in edges} == {"pa", "pc"} and {e.from_id for e in edges} == {"cb"}
        only = graph.neighbourhood_edges(["cb"], "default", types=["livesIn"])
        assert [(e.source_id, e.type) for e in only] == [("pa", "livesIn")]
        assert graph.neighbourhood_edges(["cb"], "default", classes=["Location"]) == []  # pa and pc are Persons
        assert len(graph.neighbourhood_edges(["cb"], "default", limit=1)) == 1
        assert graph.neighbourhood_edges(["cb"], "other") == []
        assert graph.neighbourhood_edges(["cb"], "default", types=["x') DETACH DELETE n //"]) == []  # a value
        assert graph.chunk_documents(["d1_c0", "d9_c0", "nope"], "default") == {"d1_c0": "d1"}
        assert graph.class_counts("default") == {"City": 1, "Person": 2}
        assert graph.class_counts("other") == {"Person": 1}
