"""Neo4j 5 adapter for the GraphStore port, with the official `neo4j` driver.

The port's methods and their Cypher are shared with FalkorDB (cypher_store.py, cypher.py); this file holds what
is Neo4j's own: connecting and checking the server at start, constraints and indexes from cypher.DIALECTS,
writes as managed transactions (the driver retries them on transient errors for KGF_NEO4J_MAX_RETRY_S; every
write statement is a MERGE or an idempotent SET, so a retried batch cannot double anything), reads in read
transactions, and driver errors turned into ConfigError (a setting to fix) or GraphStoreError.
"""
from __future__ import annotations

import logging
import re
from typing import Any, Iterable

from ..errors import ConfigError, CypherQueryError, CypherTimeout, GraphStoreError
from . import cypher as Q
from .cypher_store import CypherGraphStore, check_params

log = logging.getLogger(__name__)

MIN_MAJOR = 5  # IF NOT EXISTS schema DDL, REQUIRE ... IS UNIQUE, full-text on LIST<STRING>
SCHEMES = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")  # Bolt only (the HTTP driver is a preview)


def check_version(agent: str, uri: str = "") -> tuple[int, int]:
    """'Neo4j/5.26.0' -> (5, 26); a server older than Neo4j 5 is a startup error naming the setting."""
    m = re.match(r"Neo4j/(\d+)\.(\d+)", agent or "")
    if not m:
        raise ConfigError(f"KGF_NEO4J_URI={uri!r} answered as {agent!r}, not a Neo4j server")
    major, minor = int(m.group(1)), int(m.group(2))
    if major < MIN_MAJOR:
        raise ConfigError(f"KGF_NEO4J_URI={uri!r} is {agent}; kgfactory needs Neo4j {MIN_MAJOR}.x or later")
    return major, minor


def classify(e: BaseException) -> str:
    """What kind of failure a driver error is: 'auth', 'database', 'unavailable', 'transient' or 'error'.

    'unavailable' and 'transient' are what a managed transaction retries; when they still surface, the
    retry budget is spent and the caller's run is left resumable (documents stay 'pending')."""
    from neo4j import exceptions as nx

    if isinstance(e, (nx.AuthError, nx.Forbidden)):
        return "auth"
    code = getattr(e, "code", None) or ""
    if code.startswith("Neo.ClientError.Database.DatabaseNotFound"):
        return "database"
    if isinstance(e, (nx.ServiceUnavailable, nx.SessionExpired, nx.DatabaseUnavailable)):
        return "unavailable"
    if isinstance(e, nx.TransientError) or (isinstance(e, nx.Neo4jError) and e.is_retryable()):
        return "transient"
    return "error"


def wrap_error(e: BaseException, uri: str, database: str, user: str = "") -> Exception:
    """A kgfactory error for a driver error: settings problems name the setting, the rest say what failed."""
    kind = classify(e)
    if kind == "auth":
        return ConfigError(f"Neo4j at {uri!r} refused user {user!r}: check KGF_NEO4J_USER / KGF_NEO4J_PASSWORD ({e})")
    if kind == "database":
        return ConfigError(f"Neo4j at {uri!r} has no database {database!r}: check KGF_NEO4J_DATABASE")
    if kind == "unavailable":
        return GraphStoreError(f"Neo4j at {uri!r} is unavailable ({e}); check KGF_NEO4J_URI and that the server is up. "
                               "An interrupted ingest is resumable: run it again")
    if kind == "transient":
        return GraphStoreError(f"Neo4j kept failing with a transient error after retries ({e}); run it again")
    code = getattr(e, "code", None) or ""
    if code.startswith("Neo.ClientError.Transaction.TransactionTimedOut"):  # also ...ClientConfiguration
        return CypherTimeout(f"Neo4j query timed out: {e}")
    if code.startswith("Neo.ClientError.Statement."):  # syntax, types, a missing function: the query's fault
        return CypherQueryError(f"Neo4j query failed: {e}")
    return GraphStoreError(f"Neo4j query failed: {e}")


class Neo4jGraphStore(CypherGraphStore):
    """Talks to a Neo4j 5 server (standalone, cluster or Aura) by URI, database and auth from settings."""

    dialect = "neo4j"

    def __init__(self, uri: str, user: str, password: str, database: str = "neo4j", labels_for=None,
                 max_retry_s: float = 30.0, connect_timeout_s: float = 10.0):
        super().__init__(labels_for)
        if not uri:
            raise ConfigError("KGF_NEO4J_URI is empty (KGF_GRAPH_BACKEND=neo4j needs e.g. bolt://localhost:7687)")
        if not password:
            raise ConfigError("KGF_NEO4J_PASSWORD is empty (KGF_GRAPH_BACKEND=neo4j has no default password)")
        if "://" not in uri or uri.split("://", 1)[0] not in SCHEMES:
            raise ConfigError(f"KGF_NEO4J_URI={uri!r} must start with one of {', '.join(s + '://' for s in SCHEMES)}")
        from neo4j import GraphDatabase

        self.uri, self.user, self.database = uri, user, database
        try:
            self._driver = GraphDatabase.driver(uri, auth=(user, password), max_transaction_retry_time=max_retry_s,
                                                connection_timeout=connect_timeout_s)
        except Exception as e:  # a malformed URI fails here
            raise ConfigError(f"KGF_NEO4J_URI={uri!r} is not a usable Neo4j URI: {e}") from e
        try:
            self._driver.verify_connectivity()
            self.server_version = check_version(self._driver.get_server_info().agent, uri)
            self._rows("RETURN 1 AS ok")  # the database exists and this user may read it
        except ConfigError:
            self._driver.close()
            raise
        except Exception as e:
            self._driver.close()
            err = wrap_error(e, uri, database, user)
            if isinstance(err, GraphStoreError):  # at start an unreachable server is a settings problem
                err = ConfigError(f"cannot reach Neo4j at {uri!r}: check KGF_NEO4J_URI and that the server is up ({e})")
            raise err from e

    @property
    def driver(self) -> Any:
        """The Neo4j driver, for the analysts' read-only sessions and per-tenant databases (graph/neo4j_views.py)."""
        return self._driver

    @classmethod
    def from_settings(cls, settings, labels_for=None) -> "Neo4jGraphStore":
        return cls(settings.neo4j_uri, settings.neo4j_user, settings.neo4j_password, settings.neo4j_database,
                   labels_for=labels_for, max_retry_s=settings.neo4j_max_retry_s)

    # -- plumbing ---------------------------------------------------------------------------------
    def _run(self, cypher: str, params: dict[str, Any] | None = None, read_only: bool = False) -> list[dict[str, Any]]:
        def work(tx):
            res = tx.run(cypher, params or {})
            return [{k: _plain(v) for k, v in rec.items()} for rec in res]

        check_params(params, "Neo4j", nul=False)  # Neo4j stores NUL; no engine can encode a lone surrogate
        try:
            with self._driver.session(database=self.database) as s:
                return s.execute_read(work) if read_only else s.execute_write(work)
        except Exception as e:
            raise wrap_error(e, self.uri, self.database, self.user) from e

    def _rows(self, cypher: str, params: dict[str, Any] | None = None, read_only: bool = True) -> list[dict[str, Any]]:
        return self._run(cypher, params, read_only=read_only)

    def ensure_schema(self, entity_labels: Iterable[str] = ()) -> None:
        """Constraints and indexes, idempotent (IF NOT EXISTS); schema DDL runs in auto-commit transactions."""
        try:
            with self._driver.session(database=self.database) as s:
                for stmt in Q.DIALECTS[self.dialect]["indexes"]:
                    s.run(stmt).consume()
        except Exception as e:
            raise wrap_error(e, self.uri, self.database, self.user) from e

    def close(self) -> None:
        try:
            self._driver.close()
        except Exception as e:  # closing must not mask the real error
            log.debug("closing Neo4j driver: %s", e)


def _plain(v: Any) -> Any:
    """Driver values -> plain Python: a node is its properties plus `_id` (the element id), `_labels`; a
    relationship its properties plus `_id`, `_type`, `_start` and `_end` (its end nodes' element ids); a path
    {"_nodes": [...], "_relationships": [...]}; temporals ISO strings. The same shape as falkordb_store._plain."""
    from neo4j.graph import Node, Path, Relationship

    if isinstance(v, Node):
        return {**{k: _plain(x) for k, x in v.items()}, "_id": v.element_id, "_labels": sorted(v.labels)}
    if isinstance(v, Relationship):
        start, end = v.start_node, v.end_node
        return {**{k: _plain(x) for k, x in v.items()}, "_id": v.element_id, "_type": v.type,
                "_start": None if start is None else start.element_id, "_end": None if end is None else end.element_id}
    if isinstance(v, Path):
        return {"_nodes": [_plain(n) for n in v.nodes], "_relationships": [_plain(r) for r in v.relationships]}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if hasattr(v, "iso_format"):
        return v.iso_format()
    return v
