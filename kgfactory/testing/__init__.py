"""Contract test suites for kgfactory's ports, importable by any adapter's tests (haystack's `testing/` pattern).

A new adapter gets the whole suite by subclassing a contract class and giving it the fixture the suite uses;
pytest collects every inherited test under the subclass's name:

    import pytest
    from kgfactory.testing.vector_store import DIM, VectorStoreContract

    class TestMyVectorStore(VectorStoreContract):
        @pytest.fixture
        def store(self, tmp_path):          # an empty store holding DIM-dimensional vectors
            s = MyVectorStore(tmp_path / "mv")
            s.ensure(DIM)
            yield s
            s.close()

        def reopen(self, store):            # a second handle on the same data (the reopen test)
            return MyVectorStore(store.path)

- `graph_store.GraphStoreContract`: fixture `graph`, an empty store with its schema ensured, built with
  `labels_for=LABELS_FOR` (the suite checks that an entity carries its class's superclass labels).
- `vector_store.VectorStoreContract`: fixture `store` and method `reopen(store)`.

Fixtures are per test unless the adapter's server is costly: then share one server and empty it in the fixture.
These modules need pytest (the `test` extra); `import kgfactory` never imports them.
"""
from __future__ import annotations

try:
    import pytest  # noqa: F401
except ImportError as e:  # pragma: no cover - exercised in a subprocess by tests/test_testing_package.py
    raise ImportError("kgfactory.testing holds pytest suites and needs pytest: pip install 'kgfactory[test]'") from e
