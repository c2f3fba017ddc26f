"""FalkorDB adapter for the GraphStore port (the embedded default, or a FalkorDB server by socket/host)."""
from __future__ import annotations

import logging
from typing import Any, Iterable

from ..errors import GraphStoreError, GraphUnavailableError
from . import cypher as Q
from .cypher_base import CHANGE_RETENTION
from .cypher_store import CHUNK_NS, DOC_NS, ENTITY_NS, CypherGraphStore, _doc, check_params  # noqa: F401  (re-exported)

log = logging.getLogger(__name__)


class FalkorDBGraphStore(CypherGraphStore):
    """Talks to FalkorDB with the `falkordb` client. `labels_for(cls)` gives a class plus its superclasses.
    The port's methods are shared with Neo4j in cypher_store.py; this file holds what is FalkorDB's own."""

    dialect = "falkordb"

    def __init__(self, graph_name: str = "kgf", unix_socket_path: str | None = None, host: str = "localhost",
                 port: int = 6379, labels_for=None, on_close=None, call_timeout_s: float | None = 60.0,
                 change_retention: int = CHANGE_RETENTION, password: str | None = None):
        self.call_timeout_s = call_timeout_s
        try:
            self._db = connect(unix_socket_path, host, port, call_timeout_s, password=password)
            self._g = self._db.select_graph(graph_name)
        except Exception as e:
            raise GraphStoreError(f"cannot connect to FalkorDB ({unix_socket_path or f'{host}:{port}'}): {e}") from e
        super().__init__(labels_for, change_retention)
        self._on_close = on_close

    # -- plumbing ---------------------------------------------------------------------------------
    def _run(self, cypher: str, params: dict[str, Any] | None = None, read_only: bool = False):
        check_params(params, "FalkorDB", nul=True)  # bad input is GraphInputError, never 'query failed'
        try:
            if read_only:
                return self._g.ro_query(cypher, params or {})
            return self._g.query(cypher, params or {})
        except Exception as e:
            raise wrap(e, "FalkorDB query failed", self.call_timeout_s) from e

    def _rows(self, cypher: str, params: dict[str, Any] | None = None, read_only: bool = True) -> list[dict[str, Any]]:
        try:
            res = self._run(cypher, params, read_only=read_only)
        except GraphStoreError as e:
            if read_only and "empty key" in str(e):
                return []  # FalkorDB creates a graph on its first write; before that it is simply empty
            raise
        names = [h[1] if isinstance(h, (list, tuple)) else h for h in (res.header or [])]
        return [dict(zip(names, [_plain(v) for v in row])) for row in res.result_set]

    # -- graphs of this engine (the tenant views delete the ones an older version kept here) ------------------
    def list_graphs(self) -> list[str]:
        """Names of every graph in this store's engine (not only this store's own graph)."""
        try:
            return [str(g) for g in self._db.list_graphs()]
        except Exception as e:
            raise wrap(e, "listing graphs failed", self.call_timeout_s) from e

    def delete_graph(self, name: str) -> None:
        """Delete another graph of this engine by name; never this store's own graph."""
        if name == self._g.name:
            raise GraphStoreError(f"refusing to delete the store's own graph {name!r}")
        try:
            self._db.select_graph(name).delete()
        except Exception as e:
            raise wrap(e, f"deleting graph {name!r} failed", self.call_timeout_s) from e

    def ensure_schema(self, entity_labels: Iterable[str] = ()) -> None:
        for stmt in Q.DIALECTS[self.dialect]["indexes"]:
            try:
                self._g.query(stmt)
            except Exception as e:  # already exists
                if "already" not in str(e).lower():
                    raise wrap(e, f"creating index failed ({stmt})", self.call_timeout_s) from e

    def close(self) -> None:
        try:
            self._db.connection.close()
        except Exception as e:
            log.debug("closing FalkorDB connection: %s", e)
        if self._on_close:
            self._on_close()


def connect(unix_socket_path: str | None, host: str = "localhost", port: int = 6379,
            call_timeout_s: float | None = 60.0, password: str | None = None):
    """A FalkorDB client whose every call has a deadline, and which never retries on its own.

    Why: without a socket timeout a stuck engine hung every caller forever (issue 14: a deadlocked engine
    took /readyz, the API and SIGTERM down with it). redis-py's default retry would resend a write that
    timed out (applying it twice) and multiply the wait; a timed-out connection is closed, not reused."""
    from falkordb import FalkorDB
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    kw: dict[str, Any] = {"socket_timeout": call_timeout_s, "retry": Retry(NoBackoff(), 0),
                          "socket_connect_timeout": min(call_timeout_s, 5.0) if call_timeout_s else 5.0}
    if unix_socket_path:
        return FalkorDB(unix_socket_path=unix_socket_path, **kw)
    return FalkorDB(host=host, port=port, password=password, **kw)


def wrap(e: Exception, what: str, call_timeout_s: float | None,
         setting: str = "KGF_GRAPH_CALL_TIMEOUT_S") -> GraphStoreError:
    """Vendor error -> GraphUnavailableError (no answer in time, connection refused or lost) or GraphStoreError."""
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError, TimeoutError as RedisTimeoutError
    except ImportError:  # pragma: no cover - redis comes with falkordb
        return GraphStoreError(f"{what}: {e}")
    if isinstance(e, RedisTimeoutError):
        return GraphUnavailableError(f"the graph engine did not answer within {call_timeout_s or 5.0:g} s "
                                     f"({setting}): {e}", timed_out=True)
    if isinstance(e, (RedisConnectionError, OSError)):
        return GraphUnavailableError(f"the graph engine is not reachable: {e}")
    if isinstance(e, GraphStoreError):
        return e
    return GraphStoreError(f"{what}: {e}")


def _plain(v: Any) -> Any:
    """FalkorDB values -> plain Python, so callers never see vendor types. A node is its properties plus `_id`
    (the engine's id, as text), `_labels`; an edge its properties plus `_id`, `_type`, `_start` and `_end` (the
    `_id`s of its end nodes); a path {"_nodes": [...], "_relationships": [...]}. Analysts' Cypher rows use these
    keys to draw a graph (the shape is the same on Neo4j, see neo4j_store._plain)."""
    from falkordb import Path

    if isinstance(v, Path):
        return {"_nodes": [_plain(n) for n in v.nodes()], "_relationships": [_plain(e) for e in v.edges()]}
    props = getattr(v, "properties", None)
    if isinstance(props, dict):
        out = {k: _plain(x) for k, x in props.items()}
        if getattr(v, "id", None) is not None:
            out["_id"] = str(v.id)
        labels = getattr(v, "labels", None)
        if labels is not None:
            out["_labels"] = list(labels)
        rel = getattr(v, "relation", None)
        if rel is not None:
            out["_type"] = rel
            out["_start"], out["_end"] = _node_id(v.src_node), _node_id(v.dest_node)
        return out
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


def _node_id(n: Any) -> str | None:
    """An edge's end as the client gives it: a node id, or a Node."""
    n = getattr(n, "id", n)
    return None if n is None else str(n)
