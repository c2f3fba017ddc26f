"""Tenant-restricted views for analysts' Cypher on FalkorDB.

Every tenant shares one property graph (a `tenant` property on Document, Chunk and Entity). Rewriting or
filtering an analyst's arbitrary Cypher cannot keep tenant A out of tenant B's data (aggregates,
`MATCH (n)`, path functions all see everything), so analyst Cypher never runs on the shared graph. It runs,
read-only, on a view graph that holds only the caller's nodes and the edges between them.

How a view is built (issue 14, defect 4): the tenant's nodes and edges are read from the shared graph with
ordinary tenant-filtered Cypher reads, and written with UNWIND batches into a graph of a second, private
engine that has no persistence (EmbeddedFalkorDB.for_views). The earlier design, GRAPH.COPY of the whole graph
per tenant per revision, forked the persistent engine; a fork colliding with an automatic AOF rewrite left
FalkorDB deadlocked on its GIL ("Can't fork for module: File exists"), and every copy cost O(graph) and was
itself written to the append-only file. Now nothing here forks, views never touch the append-only file, and a
view is rebuilt lazily: only when its tenant's analysts query it and only if that tenant's data (or data no
write attributed to a tenant, such as an ontology change) moved since it was built (store.tenant_revision).

A rebuild goes into a new graph; queries already running finish on the old one, which is deleted when its
last query ends. What a view still shares with the full graph: label, relationship-type and property-key
names (they come from the ontology and the ingest code, not from tenant data).
"""
from __future__ import annotations

import itertools
import logging
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..derived_view import DerivedView
from ..errors import CypherQueryError, CypherTimeout, GraphStoreError, GraphUnavailableError, ViewBuildError
from . import cypher as Q
from .view_copy import copy_tenant
from .falkordb_store import FalkorDBGraphStore

log = logging.getLogger(__name__)

NODE_BATCH = 500  # nodes carry their text: keep one UNWIND statement to a few MB
EDGE_BATCH = 2000
QUERY_MARGIN_S = 2.0  # the engine stops an analyst query at its timeout; the socket deadline comes this much later


MAX_VIEWS = 64  # views kept in the engine's memory; the least recently used unused ones go first


@dataclass
class _View:
    name: str
    revision: tuple[int, int]
    users: int = 0
    retired: bool = False
    used: float = 0.0


class FalkorDBTenantViews:
    """run(cypher, params, tenant, timeout_ms, max_rows) on the tenant's view, read-only."""

    def __init__(self, store: FalkorDBGraphStore, data_dir: Path, call_timeout_s: float = 60.0, max_timeout_ms: int = 5000,
                 engine=None, legacy_prefix: str | None = None):
        self.store = store
        self.legacy_prefix = legacy_prefix  # views an older version kept in the shared engine: deleted once
        self.data_dir = Path(data_dir)
        self.call_timeout_s = call_timeout_s
        self.max_timeout_ms = max_timeout_ms
        self._engine = engine  # started on first use (EmbeddedFalkorDB.for_views)
        self._build_db = self._query_db = None
        self._slots: dict[str, DerivedView[tuple[int, int], _View]] = {}  # per tenant; a slot may hold no view
        self._guard = threading.RLock()  # re-entrant: a slot's swap evicts other slots under it
        self._gen = itertools.count(1)
        self.builds = 0  # views built by this process (tests, metrics)
        self._closed = False

    # -- the private engine ------------------------------------------------------------------------
    def _dbs(self):
        with self._guard:
            if self._closed:
                raise GraphUnavailableError("the analysts' view engine is closed")
            if self._build_db is None:
                from .falkordb_server import EmbeddedFalkorDB
                from .falkordb_store import connect

                if self._engine is None:
                    self._engine = EmbeddedFalkorDB.for_views(self.data_dir)
                try:
                    sock = str(self._engine.start())
                except GraphStoreError as e:
                    raise GraphUnavailableError(f"the analysts' view engine did not start: {e}") from e
                self._build_db = connect(sock, call_timeout_s=self.call_timeout_s)
                self._query_db = connect(sock, call_timeout_s=self.max_timeout_ms / 1000 + QUERY_MARGIN_S)
                self._drop_legacy()
            return self._build_db, self._query_db

    def _drop_legacy(self) -> None:
        """Older versions kept views (GRAPH.COPY copies) in the shared, persistent engine: delete them."""
        if not self.legacy_prefix:
            return
        try:
            for name in self.store.list_graphs():
                if name.startswith(self.legacy_prefix):
                    self.store.delete_graph(name)
                    log.info("deleted %s, a tenant view an older version kept in the shared graph engine", name)
        except Exception as e:
            log.warning("could not delete the old tenant views in the shared graph engine: %s", e)

    def engine_pid(self) -> int | None:
        return self._engine.pid() if self._engine is not None else None

    def _restart_if_dead(self, reap_wait: float = 0.0) -> None:
        """The views engine died (killed, crashed): forget it and its views; the next query starts a new one."""
        with self._guard:
            proc = getattr(self._engine, "proc", None)
            if proc is None:
                return
            if proc.poll() is None:
                # a killed engine takes a moment to go (its thread pools unwind): wait briefly for it; one that
                # is still there is stuck or slow, not dead, and is left alone (the caller gets its 503)
                try:
                    proc.wait(timeout=reap_wait)
                except subprocess.TimeoutExpired:
                    return
            log.warning("the analysts' view engine (pid %s) exited with code %s; starting a new one on the next "
                        "query", proc.pid, proc.returncode)
            self._disconnect()
            self._forget_views()
            self._engine.stop()

    def _disconnect(self) -> None:
        for db in (self._build_db, self._query_db):
            try:
                if db is not None:
                    db.connection.close()
            except Exception as e:
                log.debug("closing the views engine connection: %s", e)
        self._build_db = self._query_db = None

    def close(self) -> None:
        with self._guard:
            self._closed = True
            self._disconnect()
            self._forget_views()
            if self._engine is not None:
                self._engine.stop()  # no persistence: its graphs go with it

    # -- views ---------------------------------------------------------------------------------------
    def view_name(self, tenant: str, generation: int = 0) -> str:
        return f"view_{Q.check_name(_safe(tenant))}_{generation}"

    @property
    def _views(self) -> dict[str, _View]:
        """The views held now, by tenant."""
        with self._guard:
            return {t: v for t, slot in self._slots.items() if (v := slot.peek()) is not None}

    def _forget_views(self) -> None:
        with self._guard:
            for slot in self._slots.values():
                slot.drop()

    def _acquire(self, tenant: str) -> _View:
        """The tenant's view at the store's current revision (built if needed), counted as in use. One build per
        tenant at a time; a second caller finds the first one's view (derived_view.DerivedView)."""
        rev = self.store.tenant_revision(tenant)
        with self._guard:
            slot = self._slots.get(tenant)
            if slot is None:
                slot = self._slots[tenant] = DerivedView(
                    lambda key, old: self._build_view(tenant, key), guard=self._guard, take=self._use,
                    replaced=lambda old, new: self._replaced(tenant, old))
        return slot.get(rev)

    def _build_view(self, tenant: str, rev: tuple[int, int]) -> tuple[_View, tuple[int, int]]:
        new = _View(self.view_name(tenant, next(self._gen)), rev)
        self._build(new.name, tenant)
        return new, rev

    def _replaced(self, tenant: str, old: _View | None) -> Callable[[], None] | None:
        """Under the guard, after the tenant's new view went in: retire the old one and the least recently used
        beyond MAX_VIEWS; those no query uses any more are deleted once the guard is released."""
        gone = [old] if old is not None else []
        held = self._views
        if len(held) > MAX_VIEWS:
            lru = sorted((v.used, t) for t, v in held.items() if t != tenant)
            for _, t in lru[:len(held) - MAX_VIEWS]:
                v = self._slots[t].drop()
                if v is not None:
                    gone.append(v)
        drop = []
        for v in gone:
            v.retired = True
            if v.users == 0:
                drop.append(v.name)
        if not drop:
            return None

        def delete() -> None:
            for name in drop:
                self._delete(name)
        return delete

    @staticmethod
    def _use(view: _View) -> _View:
        view.users += 1
        view.used = time.monotonic()
        return view

    def _release(self, view: _View) -> None:
        with self._guard:
            view.users -= 1
            drop = view.retired and view.users == 0
        if drop:
            self._delete(view.name)

    def _build(self, name: str, tenant: str) -> None:
        """Copy the tenant's nodes and the edges between them into graph `name` of the views engine."""
        build_db, _ = self._dbs()
        g = build_db.select_graph(name)
        try:
            for stmt in Q.DIALECTS["falkordb"]["indexes"]:  # also creates the graph, so an empty view exists
                g.query(stmt)
            nodes, edges = copy_tenant(self.store, tenant, lambda stmt, rows: g.query(stmt, {"rows": rows}),
                                       node_batch=NODE_BATCH, edge_batch=EDGE_BATCH)
        except Exception as e:
            self._delete(name)
            from .falkordb_store import wrap

            err = wrap(e, "", self.call_timeout_s)
            if isinstance(err, GraphUnavailableError):
                # a refused or reset connection (not a missed deadline) is what a killed engine leaves
                self._restart_if_dead(reap_wait=0.0 if err.timed_out else 1.0)
                raise err from e
            raise ViewBuildError(f"could not build the tenant view for {tenant!r}: {e}") from e
        self.builds += 1
        log.info("built Cypher view %s for tenant %r: %d nodes, %d edges", name, tenant, nodes, edges)

    def _delete(self, name: str) -> None:
        db = self._build_db
        if db is None:
            return
        try:
            db.select_graph(name).delete()
        except Exception as e:
            log.debug("dropping view %s: %s", name, e)

    def run(self, cypher: str, params: dict[str, Any] | None, tenant: str, timeout_ms: int,
            max_rows: int) -> tuple[list[str], list[list[Any]], bool]:
        """(columns, rows, truncated). Raises CypherQueryError for a query the engine refused (or a write),
        CypherTimeout past `timeout_ms`, ViewBuildError when the view could not be built, GraphUnavailableError
        when an engine does not answer within its deadline."""
        if Q.is_write(cypher):
            raise CypherQueryError("write clauses are not allowed in a read-only query")
        view = self._acquire(tenant)
        try:
            _, query_db = self._dbs()
            res = query_db.select_graph(view.name).ro_query(cypher, params or {}, timeout=int(timeout_ms))
        except GraphStoreError:
            raise
        except Exception as e:
            from .falkordb_store import wrap

            deadline = self.max_timeout_ms / 1000 + QUERY_MARGIN_S
            err = wrap(e, "", deadline, "KGF_CYPHER_TIMEOUT_MS plus a margin")
            if isinstance(err, GraphUnavailableError):
                # the engine answers PING while a query runs: then the query is slow (FalkorDB does not stop
                # every query at its timeout, e.g. a huge range() is built first), not the engine stuck
                if err.timed_out and self._engine is not None and self._engine.ping():
                    raise CypherTimeout(f"query timed out after {timeout_ms} ms (no result within "
                                        f"{deadline:g} s)") from e
                # a refused or reset connection (not a missed deadline) is what a killed engine leaves
                self._restart_if_dead(reap_wait=0.0 if err.timed_out else 1.0)
                raise err from e
            msg = str(e)
            if "timed out" in msg.lower():  # the engine's own words for its query timeout: read here, once
                raise CypherTimeout(f"query timed out after {timeout_ms} ms") from e
            raise CypherQueryError(f"query failed: {msg}") from e
        finally:
            self._release(view)
        from .falkordb_store import _plain

        cols = [h[1] if isinstance(h, (list, tuple)) else h for h in (res.header or [])]
        rows = res.result_set or []
        truncated = len(rows) > max_rows
        return cols, [[_plain(v) for v in row] for row in rows[:max_rows]], truncated

    def drop(self, tenant: str) -> None:
        with self._guard:
            slot = self._slots.get(tenant)
            view = slot.drop() if slot is not None else None
            if view is None:
                return
            view.retired = True
            drop = view.users == 0
        if drop:
            self._delete(view.name)


def _safe(tenant: str) -> str:
    """Graph names come from tenant ids: keep them identifier-like (tenants are validated upstream)."""
    import hashlib
    import re

    if re.fullmatch(r"[A-Za-z0-9_]{1,48}", tenant):
        return "t_" + tenant
    return "h_" + hashlib.sha256(tenant.encode()).hexdigest()[:16]
