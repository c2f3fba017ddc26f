"""VectorStore contract, run against every adapter that can run here: Milvus Lite, a Milvus 2.3.5 server
(PyPI `milvus`), and a Milvus container (testcontainers, `integration`, skipped when no Docker engine answers).

Tests that need Milvus 2.5 features (BM25, sparse vectors) carry the `milvus25` marker and skip the 2.3.5 leg."""
from __future__ import annotations

import numpy as np
import pytest

from kgfactory.errors import RetrievalError, VectorStoreError
from kgfactory.ports import VectorStore
from kgfactory.types import Chunk, Entity

DIM = 16


def _unit(i: int) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    v[i % DIM] = 1.0
    v[(i + 1) % DIM] = 0.1
    return v / np.linalg.norm(v)


LEGS = ["milvus-lite", "milvus-server-2.3.5", pytest.param("milvus-container", marks=pytest.mark.integration)]


@pytest.fixture(params=LEGS)
def store(request, tmp_path):
    """A store on the leg's engine. Server legs share one server (and database) for the session: collections are
    created once (3 s each on 2.3.5) and each test starts from empty ones."""
    from kgfactory.vector.milvus_store import CHUNKS, ENTITIES, MilvusVectorStore

    leg = request.param
    if leg == "milvus-lite":
        s = MilvusVectorStore.embedded(tmp_path / "mv")
        s.ensure(DIM)
        yield s
        s.close()
        return
    if leg == "milvus-server-2.3.5" and request.node.get_closest_marker("milvus25"):
        pytest.skip("needs Milvus 2.5 (BM25/sparse); tested with Milvus Lite and the container")
    if leg == "milvus-server-2.3.5":
        uri = request.getfixturevalue("milvus_server").uri
    else:
        uri = request.getfixturevalue("milvus_container").get_connection_url()
    _create_database(uri, "kgf_contract")
    s = MilvusVectorStore(uri, db_name="kgf_contract")
    s.ensure(DIM)
    for name in (CHUNKS, ENTITIES):
        s._call("delete", s.client.delete, name, filter='id != ""')  # via _call: later reads see the delete
    assert s.count("chunks") == 0 and s.count("entities") == 0
    yield s
    s.close()


def _create_database(uri: str, name: str) -> None:
    from pymilvus import MilvusClient

    c = MilvusClient(uri=uri)
    if name not in c.list_databases():
        c.create_database(name)
    c.close()


def _chunks(doc: str, n: int, tenant: str = "default", offset: int = 0):
    return [Chunk(id=f"{doc}_c{i}", doc_id=doc, tenant=tenant, index=i, text="t", start=0, end=1) for i in range(n)]


class TestVectorStoreContract:
    def test_is_a_vector_store(self, store):
        assert isinstance(store, VectorStore)

    def test_upsert_is_idempotent(self, store):
        ch = _chunks("d1", 3)
        vecs = np.stack([_unit(i) for i in range(3)])
        store.upsert_chunks(ch, vecs)
        store.upsert_chunks(ch, vecs)
        assert store.count("chunks") == 3

    def test_nearest_neighbour_is_itself(self, store):
        ch = _chunks("d1", 5)
        vecs = np.stack([_unit(i) for i in range(5)])
        store.upsert_chunks(ch, vecs)
        hits = store.search_chunks(vecs[3], 2)
        assert hits[0][0] == "d1_c3"
        assert hits[0][1] == pytest.approx(1.0, abs=1e-4)
        assert hits[0][1] >= hits[1][1]

    def test_filters_by_doc_tenant_and_tag(self, store):
        store.upsert_chunks(_chunks("a", 2), np.stack([_unit(0), _unit(1)]), {"a": ["red"]})
        store.upsert_chunks(_chunks("b", 2, tenant="t2"), np.stack([_unit(0), _unit(1)]), {"b": ["blue"]})
        assert {h[0] for h in store.search_chunks(_unit(0), 10, {"doc_id": "b"})} == {"b_c0", "b_c1"}
        assert {h[0] for h in store.search_chunks(_unit(0), 10, {"tenant": "default"})} == {"a_c0", "a_c1"}
        assert {h[0] for h in store.search_chunks(_unit(0), 10, {"tag": "blue"})} == {"b_c0", "b_c1"}
        assert store.search_chunks(_unit(0), 10, {"tag": "green"}) == []

    def test_unknown_filter_field_is_refused(self, store):
        with pytest.raises(RetrievalError, match="unknown filter"):
            store.search_chunks(_unit(0), 3, {"colour": "red"})

    def test_filter_values_are_quoted_not_injected(self, store):
        store.upsert_chunks(_chunks("a", 1), np.stack([_unit(0)]))
        assert store.search_chunks(_unit(0), 3, {"doc_id": 'a" or doc_id != "'}) == []

    def test_delete_document_removes_only_its_chunks(self, store):
        store.upsert_chunks(_chunks("a", 3), np.stack([_unit(i) for i in range(3)]))
        store.upsert_chunks(_chunks("b", 2), np.stack([_unit(i) for i in range(2)]))
        assert store.delete_document("a") == 3
        assert store.count("chunks") == 2
        assert store.chunk_ids_for_document("a") == []
        assert sorted(store.chunk_ids_for_document("b")) == ["b_c0", "b_c1"]

    def test_entities_upsert_search_delete(self, store):
        ents = [Entity(id=f"e{i}", name=f"n{i}", label="Person") for i in range(4)]
        store.upsert_entities(ents, np.stack([_unit(i) for i in range(4)]))
        assert store.search_entities(_unit(2), 1)[0][0] == "e2"
        assert store.existing_entity_ids(["e1", "e2", "nope"]) == {"e1", "e2"}
        assert store.delete_entities(["e2", "e3"]) == 2
        assert store.count("entities") == 2
        assert store.existing_entity_ids(["e1", "e2"]) == {"e1"}

    def test_get_vectors_returns_only_stored_ids(self, store):
        store.upsert_chunks(_chunks("a", 3, tenant="t1"), np.stack([_unit(i) for i in range(3)]))
        store.upsert_entities([Entity(id="e1", name="n", label="Person", tenant="t2")], np.stack([_unit(5)]))
        ids, vecs, tenants = store.get_vectors("chunks", ["a_c2", "nope", "a_c0"])
        assert sorted(ids) == ["a_c0", "a_c2"] and tenants == ["t1", "t1"]
        for i, v in zip(ids, vecs):
            np.testing.assert_allclose(v, _unit(int(i[-1])), atol=1e-6)
        ids, vecs, tenants = store.get_vectors("entities", ["e1"])
        assert ids == ["e1"] and tenants == ["t2"] and vecs.shape == (1, DIM)
        assert store.get_vectors("chunks", [])[0] == []

    def test_mismatched_lengths_are_refused(self, store):
        with pytest.raises(VectorStoreError, match="2 chunks but 1 vectors"):
            store.upsert_chunks(_chunks("a", 2), np.stack([_unit(0)]))

    def test_refresh_keeps_results_and_sees_new_rows(self, store):
        store.upsert_chunks(_chunks("a", 3), np.stack([_unit(i) for i in range(3)]))
        store.refresh()
        store.upsert_chunks(_chunks("b", 1), np.stack([_unit(7)]))
        store.refresh()
        assert store.search_chunks(_unit(7), 1)[0][0] == "b_c0"
        assert store.count("chunks") == 4

    def test_reopen_keeps_data_and_checks_dimension(self, store):
        from kgfactory.vector.milvus_store import MilvusVectorStore

        store.upsert_chunks(_chunks("a", 2), np.stack([_unit(0), _unit(1)]))
        store.close()
        s = MilvusVectorStore(store.uri, token=store.token, db_name=store.db_name)
        s.ensure(DIM)
        assert s.count("chunks") == 2
        with pytest.raises(VectorStoreError, match="holds 16-dim vectors"):
            s.ensure(DIM + 1)
        s.close()
