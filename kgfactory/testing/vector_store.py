"""The VectorStore contract: what every vector adapter must do, as a pytest suite to subclass (see __init__).

Upserts are idempotent, the nearest neighbour of a stored vector is itself, filters (doc, tenant, tag) are
applied by the store and their values quoted, deletes remove only their rows, exports return only stored ids.
"""
from __future__ import annotations

import numpy as np
import pytest

from ..errors import RetrievalError, VectorStoreError
from ..ports import VectorStore
from ..types import Chunk, Entity

DIM = 16


def unit(i: int) -> np.ndarray:
    """A unit vector near axis i: distinct ids get distinct, comparable vectors."""
    v = np.zeros(DIM, dtype=np.float32)
    v[i % DIM] = 1.0
    v[(i + 1) % DIM] = 0.1
    return v / np.linalg.norm(v)


def make_chunks(doc: str, n: int, tenant: str = "default") -> list[Chunk]:
    return [Chunk(id=f"{doc}_c{i}", doc_id=doc, tenant=tenant, index=i, text="t", start=0, end=1) for i in range(n)]


class VectorStoreContract:
    """Every VectorStore adapter's contract. Subclass it with a `store` fixture and `reopen` (see kgfactory/testing)."""

    @pytest.fixture
    def store(self):
        raise NotImplementedError("a VectorStoreContract subclass provides the `store` fixture: an empty store "
                                  f"holding {DIM}-dimensional vectors")

    def reopen(self, store):
        """A second handle on the data `store` holds (after `store.close()`); the subclass says how."""
        raise NotImplementedError("a VectorStoreContract subclass says how to reopen a store")

    def test_is_a_vector_store(self, store):
        assert isinstance(store, VectorStore)

    def test_upsert_is_idempotent(self, store):
        ch = make_chunks("d1", 3)
        vecs = np.stack([unit(i) for i in range(3)])
        store.upsert_chunks(ch, vecs)
        store.upsert_chunks(ch, vecs)
        assert store.count("chunks") == 3

    def test_nearest_neighbour_is_itself(self, store):
        ch = make_chunks("d1", 5)
        vecs = np.stack([unit(i) for i in range(5)])
        store.upsert_chunks(ch, vecs)
        hits = store.search_chunks(vecs[3], 2)
        assert hits[0][0] == "d1_c3"
        assert hits[0][1] == pytest.approx(1.0, abs=1e-4)
        assert hits[0][1] >= hits[1][1]

    def test_filters_by_doc_tenant_and_tag(self, store):
        store.upsert_chunks(make_chunks("a", 2), np.stack([unit(0), unit(1)]), {"a": ["red"]})
        store.upsert_chunks(make_chunks("b", 2, tenant="t2"), np.stack([unit(0), unit(1)]), {"b": ["blue"]})
        assert {h[0] for h in store.search_chunks(unit(0), 10, {"doc_id": "b"})} == {"b_c0", "b_c1"}
        assert {h[0] for h in store.search_chunks(unit(0), 10, {"tenant": "default"})} == {"a_c0", "a_c1"}
        assert {h[0] for h in store.search_chunks(unit(0), 10, {"tag": "blue"})} == {"b_c0", "b_c1"}
        assert store.search_chunks(unit(0), 10, {"tag": "green"}) == []

    def test_unknown_filter_field_is_refused(self, store):
        with pytest.raises(RetrievalError, match="unknown filter"):
            store.search_chunks(unit(0), 3, {"colour": "red"})

    def test_filter_values_are_quoted_not_injected(self, store):
        store.upsert_chunks(make_chunks("a", 1), np.stack([unit(0)]))
        assert store.search_chunks(unit(0), 3, {"doc_id": 'a" or doc_id != "'}) == []

    def test_delete_document_removes_only_its_chunks(self, store):
        store.upsert_chunks(make_chunks("a", 3), np.stack([unit(i) for i in range(3)]))
        store.upsert_chunks(make_chunks("b", 2), np.stack([unit(i) for i in range(2)]))
        assert store.delete_document("a") == 3
        assert store.count("chunks") == 2
        assert store.chunk_ids_for_document("a") == []
        assert sorted(store.chunk_ids_for_document("b")) == ["b_c0", "b_c1"]

    def test_entities_upsert_search_delete(self, store):
        ents = [Entity(id=f"e{i}", name=f"n{i}", label="Person") for i in range(4)]
        store.upsert_entities(ents, np.stack([unit(i) for i in range(4)]))
        assert store.search_entities(unit(2), 1)[0][0] == "e2"
        assert store.existing_entity_ids(["e1", "e2", "nope"]) == {"e1", "e2"}
        assert store.delete_entities(["e2", "e3"]) == 2
        assert store.count("entities") == 2
        assert store.existing_entity_ids(["e1", "e2"]) == {"e1"}

    def test_get_vectors_returns_only_stored_ids(self, store):
        store.upsert_chunks(make_chunks("a", 3, tenant="t1"), np.stack([unit(i) for i in range(3)]))
        store.upsert_entities([Entity(id="e1", name="n", label="Person", tenant="t2")], np.stack([unit(5)]))
        ids, vecs, tenants = store.get_vectors("chunks", ["a_c2", "nope", "a_c0"])
        assert sorted(ids) == ["a_c0", "a_c2"] and tenants == ["t1", "t1"]
        for i, v in zip(ids, vecs):
            np.testing.assert_allclose(v, unit(int(i[-1])), atol=1e-6)
        ids, vecs, tenants = store.get_vectors("entities", ["e1"])
        assert ids == ["e1"] and tenants == ["t2"] and vecs.shape == (1, DIM)
        assert store.get_vectors("chunks", [])[0] == []

    def test_mismatched_lengths_are_refused(self, store):
        with pytest.raises(VectorStoreError, match="2 chunks but 1 vectors"):
            store.upsert_chunks(make_chunks("a", 2), np.stack([unit(0)]))

    def test_refresh_keeps_results_and_sees_new_rows(self, store):
        store.upsert_chunks(make_chunks("a", 3), np.stack([unit(i) for i in range(3)]))
        store.refresh()
        store.upsert_chunks(make_chunks("b", 1), np.stack([unit(7)]))
        store.refresh()
        assert store.search_chunks(unit(7), 1)[0][0] == "b_c0"
        assert store.count("chunks") == 4

    def test_reopen_keeps_data_and_checks_dimension(self, store):
        store.upsert_chunks(make_chunks("a", 2), np.stack([unit(0), unit(1)]))
        store.close()
        s = self.reopen(store)
        s.ensure(DIM)
        assert s.count("chunks") == 2
        with pytest.raises(VectorStoreError, match="holds 16-dim vectors"):
            s.ensure(DIM + 1)
        s.close()
