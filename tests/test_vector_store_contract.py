"""VectorStore contract (kgfactory/testing/vector_store.py), run against every adapter that can run here: Milvus
Lite, a Milvus 2.3.5 server (PyPI `milvus`), and a Milvus container (testcontainers, `integration`, skipped when no
Docker engine answers).

Tests that need Milvus 2.5 features (BM25, sparse vectors) carry the `milvus25` marker and skip the 2.3.5 leg."""
from __future__ import annotations

import pytest

from kgfactory.testing.vector_store import DIM, VectorStoreContract


class _Milvus(VectorStoreContract):
    def reopen(self, store):
        from kgfactory.vector.milvus_store import MilvusVectorStore

        return MilvusVectorStore(store.uri, token=store.token, db_name=store.db_name)


class TestMilvusLite(_Milvus):
    @pytest.fixture
    def store(self, tmp_path):
        from kgfactory.vector.milvus_store import MilvusVectorStore

        s = MilvusVectorStore.embedded(tmp_path / "mv")
        s.ensure(DIM)
        yield s
        s.close()


class TestMilvusServer235(_Milvus):
    @pytest.fixture
    def store(self, request):
        if request.node.get_closest_marker("milvus25"):
            pytest.skip("needs Milvus 2.5 (BM25/sparse); tested with Milvus Lite and the container")
        yield from _server_store(request.getfixturevalue("milvus_server").uri)


@pytest.mark.integration
class TestMilvusContainer(_Milvus):
    @pytest.fixture
    def store(self, milvus_container):
        yield from _server_store(milvus_container.get_connection_url())


def _server_store(uri: str):
    """A store on a server shared for the session (and database): collections are created once (3 s each on
    2.3.5) and each test starts from empty ones."""
    from kgfactory.vector.milvus_store import CHUNKS, ENTITIES, MilvusVectorStore

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
