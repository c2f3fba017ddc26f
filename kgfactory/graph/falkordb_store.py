"""FalkorDB adapter for the GraphStore port (the embedded default, or a FalkorDB server by socket/host)."""
from __future__ import annotations

import logging
from typing import Any, Iterable

from ..errors import GraphStoreError
from . import cypher as Q
from .cypher_store import CHUNK_NS, DOC_NS, ENTITY_NS, CypherGraphStore, _doc, check_params  # noqa: F401  (re-exported)

log = logging.getLogger(__name__)


class FalkorDBGraphStore(CypherGraphStore):
    """Talks to FalkorDB with the `falkordb` client. `labels_for(cls)` gives a class plus its superclasses.
    The port's methods are shared with Neo4j in cypher_store.py; this file holds what is FalkorDB's own."""

    dialect = "falkordb"

    def __init__(self, graph_name: str = "kgf", unix_socket_path: str | None = None, host: str = "localhost",
                 port: int = 6379, labels_for=None, on_close=None):
        try:
            from falkordb import FalkorDB

            self._db = FalkorDB(unix_socket_path=unix_socket_path) if unix_socket_path else FalkorDB(host=host, port=port)
            self._g = self._db.select_graph(graph_name)
        except Exception as e:
            raise GraphStoreError(f"cannot connect to FalkorDB ({unix_socket_path or f'{host}:{port}'}): {e}") from e
        super().__init__(labels_for)
        self._on_close = on_close

    # -- plumbing ---------------------------------------------------------------------------------
    def _run(self, cypher: str, params: dict[str, Any] | None = None, read_only: bool = False):
        check_params(params, "FalkorDB", nul=True)  # bad input is GraphInputError, never 'query failed'
        try:
            if read_only:
                return self._g.ro_query(cypher, params or {})
            return self._g.query(cypher, params or {})
        except Exception as e:
            raise GraphStoreError(f"FalkorDB query failed: {e}") from e

    def _rows(self, cypher: str, params: dict[str, Any] | None = None, read_only: bool = True) -> list[dict[str, Any]]:
        try:
            res = self._run(cypher, params, read_only=read_only)
        except GraphStoreError as e:
            if read_only and "empty key" in str(e):
                return []  # FalkorDB creates a graph on its first write; before that it is simply empty
            raise
        names = [h[1] if isinstance(h, (list, tuple)) else h for h in (res.header or [])]
        return [dict(zip(names, [_plain(v) for v in row])) for row in res.result_set]

    def ensure_schema(self, entity_labels: Iterable[str] = ()) -> None:
        for stmt in Q.DIALECTS[self.dialect]["indexes"]:
            try:
                self._g.query(stmt)
            except Exception as e:  # already exists
                if "already" not in str(e).lower():
                    raise GraphStoreError(f"creating index failed ({stmt}): {e}") from e

    def close(self) -> None:
        try:
            self._db.connection.close()
        except Exception as e:
            log.debug("closing FalkorDB connection: %s", e)
        if self._on_close:
            self._on_close()


def _plain(v: Any) -> Any:
    """FalkorDB nodes/edges -> plain dicts so callers never see vendor types."""
    props = getattr(v, "properties", None)
    if isinstance(props, dict):
        out = dict(props)
        labels = getattr(v, "labels", None)
        if labels is not None:
            out["_labels"] = list(labels)
        rel = getattr(v, "relation", None)
        if rel is not None:
            out["_type"] = rel
        return out
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v

