"""Analysts' read-only Cypher on Neo4j (the CypherViews port), with tenant isolation that holds.

Every query runs in a READ transaction (session default_access_mode=READ, execute_read), so Neo4j itself refuses a
write that got past cypher_guard, with the transaction timeout set to the analyst timeout and the rows capped.

Where it runs decides what it can see, and the edition decides where it may run (`isolation_for`):
- a key scoped to all tenants (tenant `*`, see api/keys.py) runs on the shared database: it may see everything;
- Enterprise Edition or Aura (`dbms.components()` says "enterprise"): the tenant's nodes and the edges between them
  are copied into a database of its own (`kgfview-<hash of tenant>`), rebuilt when the tenant's revision moves, and
  the query runs there, so `MATCH (n) RETURN count(n)` counts the caller's nodes only. The kgfactory Neo4j user
  then needs the right to create databases;
- Community Edition has one database and no way to confine a query to part of it: a key of one tenant is refused
  (TenantScopeError, HTTP 403) with a message saying what would work.
"""
from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass
from typing import Any, Iterable

from ..errors import (CypherQueryError, CypherTimeout, GraphStoreError, GraphUnavailableError, TenantScopeError,
                      ViewBuildError)
from ..types import ALL_TENANTS
from . import cypher as Q
from .view_copy import copy_tenant

log = logging.getLogger(__name__)

NODE_BATCH = 1000
EDGE_BATCH = 2000


def edition_of(components: Iterable[dict[str, Any]]) -> str:
    """'enterprise', 'community' or 'unknown' from the rows of `CALL dbms.components()` (Aura says enterprise)."""
    for row in components:
        if str(row.get("name", "")).lower().startswith("neo4j kernel"):
            ed = str(row.get("edition") or "").lower()
            return ed if ed in ("enterprise", "community") else "unknown"
    return "unknown"


@dataclass(frozen=True)
class Isolation:
    """Where a tenant's analyst Cypher runs: `shared` (the graph's database) or `database` (its own copy)."""

    mode: str
    database: str


def view_database(tenant: str) -> str:
    """A Neo4j database name for the tenant's copy: names are case-insensitive and allow no '_', so a hash of
    the (case-sensitive) tenant id rather than the id itself."""
    return "kgfview-" + hashlib.sha256(tenant.encode()).hexdigest()[:16]


def isolation_for(edition: str, tenant: str, shared_database: str) -> Isolation:
    """The decision, as a pure function: all-tenant keys read the shared database; one tenant's key reads its own
    database on Enterprise/Aura and is refused elsewhere (TenantScopeError says why and what to do)."""
    if tenant == ALL_TENANTS:
        return Isolation("shared", shared_database)
    if edition == "enterprise":
        return Isolation("database", view_database(tenant))
    raise TenantScopeError(
        f"analyst Cypher on Neo4j {edition.capitalize()} Edition cannot be confined to one tenant (one database "
        f"holds every tenant), and this key is scoped to tenant {tenant!r}. Use a key scoped to all tenants "
        f"(`kgf keys create --tenant '*' --role analyst`, for operators who may read every tenant), or run Neo4j "
        f"Enterprise Edition or Aura, where each tenant's Cypher runs in a database of its own; SPARQL "
        f"(/sparql) and the entity and schema routes stay tenant-scoped on every edition")


class Neo4jTenantViews:
    """CypherViews for KGF_GRAPH_BACKEND=neo4j, on the graph store's driver."""

    def __init__(self, store: Any, max_timeout_ms: int):
        self.store = store
        self.max_timeout_ms = max_timeout_ms
        self._edition: str | None = None
        self._built: dict[str, tuple[int, int]] = {}  # tenant -> revision its database was copied at
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self.builds = 0

    def edition(self) -> str:
        if self._edition is None:
            self._edition = edition_of(self.store._rows(Q.NEO4J_COMPONENTS))
            log.info("Neo4j edition for analyst Cypher: %s", self._edition)
        return self._edition

    def run(self, cypher: str, params: dict[str, Any] | None, tenant: str, timeout_ms: int,
            max_rows: int) -> tuple[list[str], list[list[Any]], bool]:
        """(columns, rows, truncated): CypherQueryError for a write or a query Neo4j refused, CypherTimeout past
        the timeout, TenantScopeError where the edition cannot isolate the tenant, GraphUnavailableError /
        ViewBuildError when Neo4j is at fault."""
        if Q.is_write(cypher):
            raise CypherQueryError("write clauses are not allowed in a read-only query")
        iso = isolation_for(self.edition(), tenant, self.store.database)
        if iso.mode == "database":
            self._ensure_copy(tenant, iso.database)
        return self._read(iso.database, cypher, params or {}, timeout_ms, max_rows)

    def _read(self, database: str, cypher: str, params: dict[str, Any], timeout_ms: int,
              max_rows: int) -> tuple[list[str], list[list[Any]], bool]:
        from neo4j import READ_ACCESS, unit_of_work

        from .neo4j_store import _plain

        @unit_of_work(timeout=timeout_ms / 1000)
        def work(tx: Any) -> tuple[list[str], list[list[Any]], bool]:
            res = tx.run(cypher, params)
            cols, rows = list(res.keys()), list[list[Any]]()
            for rec in res:
                if len(rows) >= max_rows:
                    return cols, rows, True
                rows.append([_plain(v) for v in rec.values()])
            return cols, rows, False

        try:
            with self.store.driver.session(database=database, default_access_mode=READ_ACCESS) as s:
                result: tuple[list[str], list[list[Any]], bool] = s.execute_read(work)
                return result
        except Exception as e:
            raise _wrap(e, self.store, database) from e

    def _ensure_copy(self, tenant: str, database: str) -> None:
        """The tenant's database at the store's current revision for it (one build per tenant at a time)."""
        rev = self.store.tenant_revision(tenant)
        with self._guard:
            lock = self._locks.setdefault(tenant, threading.Lock())
        with lock:
            if self._built.get(tenant) == rev:
                return
            try:
                self._copy(tenant, database)
            except Exception as e:
                self._built.pop(tenant, None)
                err = _wrap(e, self.store, database)
                if isinstance(err, GraphUnavailableError):
                    raise err from e
                raise ViewBuildError(f"could not build the Neo4j database {database!r} for tenant {tenant!r} (the "
                                     f"kgfactory Neo4j user needs the right to create databases): {e}") from e
            self._built[tenant] = rev

    def _copy(self, tenant: str, database: str) -> None:
        driver = self.store.driver
        with driver.session(database="system") as s:
            s.run(Q.NEO4J_VIEW_DB_CREATE, {"name": database}).consume()
        with driver.session(database=database) as s:
            for stmt in Q.DIALECTS["neo4j"]["indexes"]:
                s.run(stmt).consume()

            def write(stmt: str, rows: list[dict]) -> None:
                s.execute_write(lambda tx: tx.run(stmt, {"rows": rows}).consume())

            nodes, edges = copy_tenant(self.store, tenant, write, node_batch=NODE_BATCH, edge_batch=EDGE_BATCH)
        self.builds += 1
        log.info("built Neo4j database %s for tenant %r: %d nodes, %d edges", database, tenant, nodes, edges)

    def drop(self, tenant: str) -> None:
        """Forget the tenant's copy (dropped on Enterprise); the next query builds it again."""
        self._built.pop(tenant, None)
        if tenant == ALL_TENANTS or self._edition != "enterprise":
            return
        try:
            with self.store.driver.session(database="system") as s:
                s.run(Q.NEO4J_VIEW_DB_DROP, {"name": view_database(tenant)}).consume()
        except Exception as e:
            log.warning("could not drop the Neo4j database of tenant %r: %s", tenant, e)

    def close(self) -> None:
        """Nothing of its own to close: the driver is the graph store's."""
        self._built.clear()


def _wrap(e: BaseException, store: Any, database: str) -> Exception:
    """A driver error as the CypherViews port's errors: the query's fault 400/408, Neo4j's 503."""
    from .neo4j_store import classify, wrap_error

    if isinstance(e, (GraphStoreError, TenantScopeError)):
        return e
    code = getattr(e, "code", None) or ""
    if code.startswith("Neo.ClientError.Transaction.TransactionTimedOut"):
        return CypherTimeout(f"Neo4j query timed out: {e}")
    # a write in the READ transaction (Statement.AccessMode), a syntax or type error, a procedure it may not call
    if code.startswith(("Neo.ClientError.Statement.", "Neo.ClientError.Procedure.",
                        "Neo.ClientError.Security.Forbidden")):
        return CypherQueryError(f"Neo4j refused the query: {e}")
    if classify(e) in ("unavailable", "transient"):
        return GraphUnavailableError(f"Neo4j did not answer the analyst query: {e}")
    err = wrap_error(e, store.uri, database, store.user)
    return err if isinstance(err, GraphStoreError) else GraphUnavailableError(str(err))
